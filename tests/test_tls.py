"""
wss://: the daemon on an C{ssl:} endpoint, with a throw-away self-signed
certificate, used by a C{websockets} client that trusts just that
certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests._daemon import WAIT, Daemon, connect


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
