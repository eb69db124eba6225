"""
wss://: the daemon, and a L{WebSocketFactory} in this process, on an
C{ssl:} endpoint with a throw-away self-signed certificate, used by clients
that trust just that certificate; with and without ALPN (RFC 7301), as
browsers always offer it.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IProtocolNegotiationFactory
from twisted.internet.threads import deferToThread
from zope.interface.verify import verifyObject

from tests._daemon import WAIT, Daemon, connect
from tests._debian import findOrInstall
from tests._rawsocket import SAMPLE_KEY, RawClient
from txclws import ResourceRegistry, WebSocketFactory, anyOrigin
from txclws.demo import EchoResource


def makeCertificate(directory: Path) -> tuple[Path, Path]:
    """
    Write a self-signed certificate for C{localhost} and C{127.0.0.1}, and
    its key, as PEM files: what C{openssl req -x509} makes for local use.

    @return: the certificate's path and the key's.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certPath, keyPath = directory / "cert.pem", directory / "key.pem"
    certPath.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyPath.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certPath, keyPath


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """
    A throw-away certificate and key.
    """
    return makeCertificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tlsDaemon(certificate: tuple[Path, Path]) -> Iterator[Daemon]:
    """
    The demo daemon on an C{ssl:} endpoint only.
    """
    cert, key = certificate
    port = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    with Daemon("--port", port) as daemon:
        yield daemon


def trusting(cert: Path) -> ssl.SSLContext:
    """
    A client context that trusts C{cert} alone, checking the host name.
    """
    return ssl.create_default_context(cafile=str(cert))


def test_wssEcho(tlsDaemon: Daemon, certificate: tuple[Path, Path]) -> None:
    """
    Text and binary messages echo over C{wss://}, the certificate checked
    against the host name.
    """
    with connect(tlsDaemon.url("/echo", "wss"), ssl=trusting(certificate[0])) as ws:
        ws.send("secret")
        assert ws.recv(WAIT) == "secret"
        ws.send(b"\x01" * 70000)
        assert ws.recv(WAIT) == b"\x01" * 70000


def test_wssChat(tlsDaemon: Daemon, certificate: tuple[Path, Path]) -> None:
    """
    The chat works over C{wss://} too (two clients, through the site).
    """
    context = trusting(certificate[0])
    with connect(tlsDaemon.url("/chat?name=a", "wss"), ssl=context) as a:
        for _ in ("welcome", "own join"):
            a.recv(WAIT)
        with connect(tlsDaemon.url("/chat?name=b", "wss"), ssl=context) as b:
            assert '"join", "name": "b"' in a.recv(WAIT)
            b.send("over tls")
            assert '"text": "over tls"' in a.recv(WAIT)


def test_httpsPage(tlsDaemon: Daemon, certificate: tuple[Path, Path]) -> None:
    """
    The demo page is served over HTTPS on the same port.
    """
    url = tlsDaemon.url("/", "https")
    with urllib.request.urlopen(url, context=trusting(certificate[0])) as response:
        assert response.status == 200
        assert b"<title>txclws demo</title>" in response.read()


def test_untrustedRefused(tlsDaemon: Daemon) -> None:
    """
    A client that does not trust the self-signed certificate refuses it:
    the test above really checks the certificate.
    """
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(tlsDaemon.url("/echo", "wss"), ssl=ssl.create_default_context())


# -- ALPN (RFC 7301), in this process and in the daemon ----------------------

#: What clients offer over ALPN, and the protocol the server must select:
#: none (no ALPN), HTTP/1.1 alone (curl --http1.1), and what browsers send.
#: When HTTP/2 arrives (issue 14), the server will select h2 from the last.
ALPN_OFFERS = [
    pytest.param(None, None, id="no-alpn"),
    pytest.param(["http/1.1"], "http/1.1", id="http1.1"),
    pytest.param(["h2", "http/1.1"], "http/1.1", id="h2-http1.1"),
]


def endpointString(certificate: tuple[Path, Path]) -> str:
    """
    The C{ssl:} endpoint of these tests: on 127.0.0.1, a free port.
    """
    cert, key = certificate
    return f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"


@pytest_twisted.async_yield_fixture
async def factoryTLS(certificate: tuple[Path, Path]) -> Any:
    """
    A L{WebSocketFactory} with an echo resource at C{/echo}, listening on
    an C{ssl:} endpoint string (the library guide's way to serve wss from
    a Twisted application): yields its port.  Afterwards it stops
    listening and drops any client left.
    """
    registry = ResourceRegistry()
    registry.register("/echo", EchoResource(), anyOrigin)
    factory = WebSocketFactory(registry)
    endpoint = serverFromString(reactor, endpointString(certificate))
    listening = await endpoint.listen(factory)
    yield listening.getHost().port
    await listening.stopListening()
    for client in list(factory.clients):
        client._abort()
    if factory.clients:
        gone: Deferred[None] = Deferred()
        factory._whenEmpty.append(gone)
        await gone.addTimeout(WAIT, reactor)


def upgradeOverTLS(
    port: int, cert: Path, offer: list[str] | None
) -> tuple[str | None, str]:
    """
    Open TLS offering C{offer} over ALPN (nothing if L{None}), upgrade to a
    WebSocket at C{/echo} (failing unless answered 101) and echo a message.

    @return: the protocol the server selected, and the message echoed.
    @raise ssl.SSLError: the TLS handshake failed.
    """
    context = trusting(cert)
    if offer is not None:
        context.set_alpn_protocols(offer)
    with RawClient(port) as client:
        client.sock = context.wrap_socket(client.sock, server_hostname="localhost")
        selected = client.sock.selected_alpn_protocol()
        client.handshake()
        return selected, client.echo("over alpn").payload.decode("utf-8")


def test_factoryNegotiatesProtocols() -> None:
    """
    L{WebSocketFactory} provides L{IProtocolNegotiationFactory}, offering
    HTTP/1.1 alone, so that Twisted's ALPN callback has a protocol to
    select.
    """
    factory = WebSocketFactory(ResourceRegistry())
    assert verifyObject(IProtocolNegotiationFactory, factory)
    assert factory.acceptableProtocols() == [b"http/1.1"]


@pytest.mark.parametrize("offer, selected", ALPN_OFFERS)
@pytest_twisted.ensureDeferred
async def test_factoryALPN(
    factoryTLS: int,
    certificate: tuple[Path, Path],
    offer: list[str] | None,
    selected: str | None,
) -> None:
    """
    Whatever a client offers over ALPN, if HTTP/1.1 is among it (or it
    offers nothing), the TLS handshake with a factory on C{ssl:} completes,
    HTTP/1.1 is selected, and the WebSocket upgrade is answered 101.
    Before the factory named its protocols, any offer was refused with an
    C{internal_error} alert.
    """
    result = await deferToThread(upgradeOverTLS, factoryTLS, certificate[0], offer)
    assert result == (selected, "over alpn")


#: The alerts a server may refuse an offer with when it shares no protocol:
#: RFC 7301 3.2's C{no_application_protocol}, or the C{internal_error}
#: that Twisted 26.10 sends (its ALPN callback answers an empty protocol,
#: which pyOpenSSL keeps fatal and OpenSSL 3 reports as an internal error).
NO_OVERLAP_ALERTS = (
    "TLSV1_ALERT_NO_APPLICATION_PROTOCOL",
    "TLSV1_ALERT_INTERNAL_ERROR",
)


@pytest_twisted.ensureDeferred
async def test_factoryALPNNoOverlap(
    factoryTLS: int, certificate: tuple[Path, Path]
) -> None:
    """
    A client offering only C{h2} (no protocol in common) is refused by a
    fatal alert during the TLS handshake, as RFC 7301 3.2 says; the port
    keeps serving: the next client, offering C{h2, http/1.1}, gets 101.
    """
    cert = certificate[0]
    with pytest.raises(ssl.SSLError) as refused:
        await deferToThread(upgradeOverTLS, factoryTLS, cert, ["h2"])
    assert refused.value.reason in NO_OVERLAP_ALERTS, refused.value
    result = await deferToThread(upgradeOverTLS, factoryTLS, cert, ["h2", "http/1.1"])
    assert result == ("http/1.1", "over alpn")


def curlUpgrade(port: int) -> subprocess.CompletedProcess[str]:
    """
    Run C{curl --http1.1 -k} with a WebSocket upgrade request on C{/echo}:
    it prints the response head and then waits (C{-N}) until C{--max-time}.
    """
    curl = findOrInstall(("curl", "/usr/bin/curl"), ["curl"])
    return subprocess.run(
        [
            curl,
            "--http1.1",
            "-k",
            "-v",
            "-i",
            "-N",
            "-s",
            "--max-time",
            "3",
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
            f"Sec-WebSocket-Key: {SAMPLE_KEY}",
            f"https://127.0.0.1:{port}/echo",
        ],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )


def assertCurlUpgraded(result: subprocess.CompletedProcess[str]) -> None:
    """
    curl offered HTTP/1.1 over ALPN, the server accepted it, and the
    upgrade was answered 101.
    """
    assert "HTTP/1.1 101 Switching Protocols" in result.stdout, (
        result.stdout,
        result.stderr,
    )
    alpn = [line for line in result.stderr.splitlines() if "ALPN" in line]
    assert any("accepted" in line and "http/1.1" in line for line in alpn), alpn


@pytest_twisted.ensureDeferred
async def test_factoryCurl(factoryTLS: int) -> None:
    """
    C{curl --http1.1} (which offers C{http/1.1} over ALPN) upgrades to a
    WebSocket on a factory's C{ssl:} port: 101.  curl is installed from
    Debian's packages if missing; the test fails, not skips, without it.
    """
    assertCurlUpgraded(await deferToThread(curlUpgrade, factoryTLS))


@pytest.mark.parametrize("offer, selected", ALPN_OFFERS[:2])
def test_daemonALPN(
    tlsDaemon: Daemon,
    certificate: tuple[Path, Path],
    offer: list[str] | None,
    selected: str | None,
) -> None:
    """
    No offer, or HTTP/1.1 alone, complete the TLS handshake with C{twistd
    clws} on an C{ssl:} port, select HTTP/1.1, and upgrade with 101.  (The
    daemon serves HTTP/2 too: from C{h2, http/1.1} it selects C{h2}, see
    C{tests/test_h2.py}.)
    """
    result = upgradeOverTLS(tlsDaemon.port, certificate[0], offer)
    assert result == (selected, "over alpn")


def test_daemonALPNNoOverlap(tlsDaemon: Daemon, certificate: tuple[Path, Path]) -> None:
    """
    C{twistd clws} refuses, in the TLS handshake, an offer that shares no
    protocol with it (it speaks C{h2} and C{http/1.1}), as the factory
    does, and keeps serving.
    """
    cert = certificate[0]
    with pytest.raises(ssl.SSLError) as refused:
        upgradeOverTLS(tlsDaemon.port, cert, ["spdy/3.1"])
    assert refused.value.reason in NO_OVERLAP_ALERTS, refused.value
    assert upgradeOverTLS(tlsDaemon.port, cert, ["spdy/3.1", "http/1.1"]) == (
        "http/1.1",
        "over alpn",
    )


def test_daemonCurl(tlsDaemon: Daemon) -> None:
    """
    C{curl --http1.1} upgrades to a WebSocket on C{twistd clws}'s C{ssl:}
    port: 101.
    """
    assertCurlUpgraded(curlUpgrade(tlsDaemon.port))
