"""
C{stdssl:} as a full peer of C{ssl:} for the daemon (issue 16): served by
C{twistd clws --workers N} (a C{SO_REUSEPORT} socket each, each worker
building its context from the description), with C{ssl:}'s
C{extraCertChain=}, C{dhParameters=} and C{sslmethod=}, and
C{getPeerCertificate()} giving pyOpenSSL's C{X509} as on C{ssl:}.
"""

from __future__ import annotations

import datetime
import ipaddress
import select
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from OpenSSL.crypto import X509
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from tests._daemon import WAIT, runTwistd
from tests._rawsocket import RawClient, clientFrame, closePayload
from tests.test_workers import reach, startPool, workerPids
from txclws._ports import readPort
from txclws._tls import StdlibSSLServerEndpoint, serverContext
from txclws._workers import BALANCED_REUSEPORT

#: RFC 7919's ffdhe2048 group (A.1), as C{openssl genpkey -genparam
#: -algorithm DH -pkeyopt dh_param:ffdhe2048} writes it: public, and 2048
#: bits, which the standard library's security level (2) accepts.
FFDHE2048 = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""

#: A TLS 1.2 cipher suite with DHE key exchange (RFC 5288), RSA-signed.
DHE_SUITE = "DHE-RSA-AES128-GCM-SHA256"


@dataclass(frozen=True)
class Chain:
    """
    PEM files of a root CA, an intermediate CA it signed, a C{localhost}
    server certificate the intermediate signed (RSA, for the DHE suites)
    and its key, and a client certificate the root signed, with its key.
    """

    root: Path
    intermediate: Path
    leaf: Path
    leafKey: Path
    client: Path
    clientKey: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[str, rsa.RSAPrivateKey] | None,
    ca: bool,
) -> x509.Certificate:
    """
    A certificate of C{subject} for C{key}, signed by C{issuer} (a name and
    its key), or self-signed; a CA's, or a C{localhost} server's.
    """
    issuerName, issuerKey = issuer or (subject, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuerName))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
    return builder.sign(issuerKey, hashes.SHA256())


def _write(path: Path, *items: x509.Certificate | rsa.RSAPrivateKey) -> Path:
    pem = b""
    for item in items:
        if isinstance(item, x509.Certificate):
            pem += item.public_bytes(serialization.Encoding.PEM)
        else:
            pem += item.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    path.write_bytes(pem)
    return path


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """
    The certificates of L{Chain}, written once for the module.
    """
    directory = tmp_path_factory.mktemp("chain")
    keys = [rsa.generate_private_key(65537, 2048) for _ in range(4)]
    rootKey, middleKey, leafKey, clientKey = keys
    root = _issue("Test Root", rootKey, None, True)
    middle = _issue("Test Intermediate", middleKey, ("Test Root", rootKey), True)
    leaf = _issue("localhost", leafKey, ("Test Intermediate", middleKey), False)
    client = _issue("test client", clientKey, ("Test Root", rootKey), False)
    return Chain(
        _write(directory / "root.pem", root),
        _write(directory / "intermediate.pem", middle),
        _write(directory / "leaf.pem", leaf),
        _write(directory / "leaf.key", leafKey),
        _write(directory / "client.pem", client),
        _write(directory / "client.key", clientKey),
    )


@pytest.fixture(scope="module")
def dhFile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """
    L{FFDHE2048} in a file.
    """
    path = tmp_path_factory.mktemp("dh") / "dh.pem"
    path.write_bytes(FFDHE2048)
    return path


def description(chain: Chain, extra: str = "") -> str:
    """
    A C{stdssl:} description on 127.0.0.1, a free port, serving the leaf
    of C{chain} (and, by C{extra}, whatever options).
    """
    return (
        f"stdssl:0:interface=127.0.0.1:privateKey={chain.leafKey}"
        f":certKey={chain.leaf}{extra}"
    )


# -- --workers -------------------------------------------------------------


def closeOnWorker(port: int, root: Path) -> tuple[int, int | None, str]:
    """
    Over TLS trusting C{root} alone (ragged EOFs not suppressed): open
    C{/whoami}, close with 1000, and read on past the server's close.

    @return: the pid of the worker, its close code, and what followed its
        close frame: C{"close_notify"} (the read found the TLS close, and
        C{unwrap} completed), or the exception's name.
    """
    context = ssl.create_default_context(cafile=str(root))
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    client = RawClient.fromSocket(
        context.wrap_socket(
            sock, server_hostname="localhost", suppress_ragged_eofs=False
        )
    )
    try:
        client.handshake("/whoami")
        pid = int(client.readFrame().payload)
        client.send(clientFrame(0x8, closePayload(1000)))
        _, close = client.readUntilClose()
        try:
            if client.unread or client.sock.recv(1) != b"":
                return pid, close.closeCode, "data after the close frame"
            client.sock.unwrap()
            return pid, close.closeCode, "close_notify"
        except (ssl.SSLError, OSError) as error:
            return pid, close.closeCode, type(error).__name__
    finally:
        client.sock.close()


def test_workersServeStdssl(chain: Chain, dhFile: Path) -> None:
    """
    C{twistd clws --workers 2} serves a C{stdssl:} port (with a chain and
    DH parameters) on a socket per worker: clients that trust only the
    root (so the intermediate must come from the server) reach both
    workers and echo; a close ends with 1000, then the server's
    C{close_notify}, on each worker.
    """
    port = description(
        chain, f":extraCertChain={chain.intermediate}:dhParameters={dhFile}"
    )
    daemon = startPool(port)
    try:
        if BALANCED_REUSEPORT:
            assert "for 2 workers, a SO_REUSEPORT socket each" in daemon.log()
        pids = set(workerPids(daemon).values())
        context = ssl.create_default_context(cafile=str(chain.root))
        held = reach(daemon, pids, "wss", ssl=context)
        for pid, client in held.items():
            client.send(f"from {pid}")
            assert client.recv(WAIT) == f"from {pid}"
            client.close()
            assert client.close_code == 1000
        closed: dict[int, tuple[int | None, str]] = {}
        for _ in range(200):  # bounded: connections are spread over both
            pid, code, after = closeOnWorker(daemon.port, chain.root)
            closed[pid] = (code, after)
            if set(closed) == pids:
                break
        assert closed == {pid: (1000, "close_notify") for pid in pids}
    finally:
        daemon.stop()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_workersRefuseBadStdssl(chain: Chain, workers: str) -> None:
    """
    A C{stdssl:} port with an option it cannot use is a usage message
    naming the port and why, with C{--workers} as without, no traceback.
    """
    cases = [
        (f":dhParameters={chain.leaf}", "cannot load DH parameters"),
        (f":extraCertChain={chain.leafKey}", "holds no PEM certificate"),
        (":sslmethod=TLSv1_METHOD", "TLS 1.0 is not served"),
        (":verify=yes", "stdssl: does not know verify"),
    ]
    for extra, message in cases:
        result = runTwistd("--port", description(chain, extra), "--workers", workers)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert "is not usable: " in output and message in output, output
        assert "Traceback" not in output, output


def test_readStdsslPort(chain: Chain) -> None:
    """
    A C{stdssl:} description is read (for the parent to bind, and for each
    worker to wrap its socket) as a stdssl port with the context its
    options made; nothing listens.
    """
    spec = readPort(description(chain, ":backlog=9"))
    assert spec is not None
    assert (spec.kind, spec.address, spec.port, spec.backlog) == (
        "stdssl",
        "127.0.0.1",
        0,
        9,
    )
    assert spec.contextFactory is None
    assert isinstance(spec.sslContext, ssl.SSLContext)
    assert spec.sslContext.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED
    narrowed = readPort(description(chain, ":sslmethod=TLSv1_2_METHOD"))
    assert narrowed is not None and narrowed.sslContext is not None
    assert narrowed.sslContext.maximum_version == ssl.TLSVersion.TLSv1_2


# -- the options -----------------------------------------------------------


@implementer(IHandshakeListener)
class PeerCertificate(Protocol):
    """
    Once TLS is up, writes what C{getPeerCertificate()} gave: its type's
    name and its subject's common name, then closes.
    """

    def handshakeCompleted(self) -> None:
        assert self.transport is not None
        certificate = self.transport.getPeerCertificate()
        common = commonName(certificate) if isinstance(certificate, X509) else "-"
        self.transport.write(f"{type(certificate).__name__} {common}".encode())
        self.transport.loseConnection()


@pytest_twisted.async_yield_fixture
async def serve(chain: Chain) -> Any:
    """
    A function that listens on a C{stdssl:} description's endpoint (or an
    endpoint) with L{PeerCertificate}, and returns its port; afterwards
    they all stop listening.
    """
    ports: list[Any] = []

    async def listen(how: str | StdlibSSLServerEndpoint) -> int:
        endpoint = serverFromString(reactor, how) if isinstance(how, str) else how
        ports.append(await endpoint.listen(Factory.forProtocol(PeerCertificate)))
        return int(ports[-1].getHost().port)

    yield listen
    for port in ports:
        await port.stopListening()


def commonName(certificate: X509) -> str:
    """
    The common name of a pyOpenSSL certificate's subject.
    """
    subject = certificate.to_cryptography().subject
    return str(subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def openSSLChain(port: int) -> list[str]:
    """
    The subjects (common names) of the certificates the server sent, in
    order, as pyOpenSSL's client reads the Certificate message.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    connection = SSL.Connection(context, sock)
    connection.set_tlsext_host_name(b"localhost")
    connection.set_connect_state()
    deadline = time.monotonic() + WAIT
    try:
        while True:  # the socket has a timeout, so pyOpenSSL's is non-blocking
            try:
                connection.do_handshake()
                break
            except SSL.WantReadError:
                remaining = deadline - time.monotonic()
                assert remaining > 0, "no handshake in time"
                select.select([sock], [], [], remaining)
        return [commonName(c) for c in connection.get_peer_cert_chain() or []]
    finally:
        sock.close()


def stdlibClient(port: int, context: ssl.SSLContext) -> tuple[str, str, str]:
    """
    Connect with C{context}: the version and the cipher suite agreed, and
    what the server wrote.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            version, cipher = tls.version() or "", tls.cipher()[0]
            data = b""
            while chunk := tls.recv(100):
                data += chunk
            return version, cipher, data.decode()


@pytest_twisted.ensureDeferred
async def test_extraCertChain(
    chain: Chain, serve: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """
    C{extraCertChain=} sends the intermediate after the server's own
    certificate, as on C{ssl:}: a client trusting only the root verifies
    it; without the option only the server's certificate is sent.  The
    temporary file the chain was loaded from is gone.
    """
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    withChain = await serve(description(chain, f":extraCertChain={chain.intermediate}"))
    alone = await serve(description(chain))
    assert list(tmp_path.iterdir()) == []
    sent = await deferToThread(openSSLChain, withChain)
    assert sent == ["localhost", "Test Intermediate"]
    assert await deferToThread(openSSLChain, alone) == ["localhost"]
    trustingRoot = ssl.create_default_context(cafile=str(chain.root))
    version, _, _ = await deferToThread(stdlibClient, withChain, trustingRoot)
    assert version == "TLSv1.3"
    with pytest.raises(ssl.SSLCertVerificationError):
        await deferToThread(stdlibClient, alone, trustingRoot)


def dheClient(root: Path) -> ssl.SSLContext:
    """
    A client context trusting C{root}, TLS 1.2 at most, offering only
    L{DHE_SUITE}.
    """
    context = ssl.create_default_context(cafile=str(root))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(DHE_SUITE)
    return context


@pytest_twisted.ensureDeferred
async def test_dhParameters(chain: Chain, dhFile: Path, serve: Any) -> None:
    """
    C{dhParameters=} makes the DHE suites of TLS 1.2 available, as on
    C{ssl:}: a client offering only one gets it; without the option (the
    standard library then has no DH group) the same client is refused.
    """
    extra = f":extraCertChain={chain.intermediate}"
    withDH = await serve(description(chain, f"{extra}:dhParameters={dhFile}"))
    without = await serve(description(chain, extra))
    version, cipher, _ = await deferToThread(
        stdlibClient, withDH, dheClient(chain.root)
    )
    assert (version, cipher) == ("TLSv1.2", DHE_SUITE)
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
        await deferToThread(stdlibClient, without, dheClient(chain.root))


def test_badOptions(
    chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    What C{serverContext} cannot use is a C{ValueError} naming the option
    and why: DH parameters that are not, or are too small (1024 bits,
    under security level 2); a chain file with no certificate, or none at
    all; a method not served.  A key that is not the certificate's is the
    standard library's C{SSLError}, and the combined chain file it was
    loaded with is removed all the same.
    """
    chains = tmp_path / "tmp"
    chains.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(chains))
    with pytest.raises(ssl.SSLError, match="KEY_VALUES_MISMATCH"):
        serverContext(str(chain.leaf), str(chain.clientKey), str(chain.intermediate))
    assert list(chains.iterdir()) == []
    small = tmp_path / "dh1024.pem"
    small.write_bytes(_DH1024)
    key, cert = str(chain.leafKey), str(chain.leaf)
    cases: list[tuple[dict[str, str], str]] = [
        (
            {"dhParameters": cert},
            r"DH parameters: no PEM DH PARAMETERS in it \(NO_START_LINE",
        ),
        (
            {"dhParameters": str(small)},
            r"DH parameters: a group under 2048 bits.*TOO_SMALL",
        ),
        ({"dhParameters": "/nonexistent"}, "No such file"),
        ({"extraCertChain": key}, f"extraCertChain={key} holds no PEM certificate"),
        ({"extraCertChain": "/nonexistent"}, "No such file"),
        ({"sslmethod": "TLSv1_1_METHOD"}, "TLS 1.1 is not served"),
        ({"sslmethod": "DTLS_METHOD"}, "is not one of TLS_METHOD, SSLv23_METHOD"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            serverContext(cert, key, **options)


#: A 1024-bit DH group (RFC 2409's Oakley group 2), which OpenSSL's
#: security level 2 refuses.
_DH1024 = b"""-----BEGIN DH PARAMETERS-----
MIGHAoGBAP//////////yQ/aoiFowjTExmKLgNwc0SkCTgiKZ8x0Agu+pjsTmyJR
Sgh5jjQE3e+VGbPNOkMbMCsKbfJfFDdP4TVtbVHCReSFtXZiXn7G9ExC6aY37WsL
/1y29Aa37e44a/taiZ+lrp8kEXxLH+ZJKGZR7OZTgf//////////AgEC
-----END DH PARAMETERS-----
"""


@pytest_twisted.ensureDeferred
async def test_sslmethod(chain: Chain, serve: Any) -> None:
    """
    C{sslmethod=TLSv1_2_METHOD} serves TLS 1.2 only, as on C{ssl:}: a
    client that wants TLS 1.3 is refused, one that takes 1.2 gets it;
    C{TLS_METHOD} (and no C{sslmethod}) agrees TLS 1.3.
    """
    extra = f":extraCertChain={chain.intermediate}"
    only12 = await serve(description(chain, f"{extra}:sslmethod=TLSv1_2_METHOD"))
    anyVersion = await serve(description(chain, f"{extra}:sslmethod=TLS_METHOD"))
    context = ssl.create_default_context(cafile=str(chain.root))
    assert (await deferToThread(stdlibClient, only12, context))[0] == "TLSv1.2"
    assert (await deferToThread(stdlibClient, anyVersion, context))[0] == "TLSv1.3"
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises(ssl.SSLError):
        await deferToThread(stdlibClient, only12, context)


@pytest_twisted.ensureDeferred
async def test_peerCertificate(chain: Chain, serve: Any) -> None:
    """
    C{getPeerCertificate()} is pyOpenSSL's C{X509}, as on C{ssl:}: with a
    context that asks for a client certificate (the endpoint's, set before
    it listens), the client's, with its subject; C{None} from a client
    that sent none.
    """
    endpoint = serverFromString(reactor, description(chain))
    assert isinstance(endpoint, StdlibSSLServerEndpoint)
    endpoint.context.verify_mode = ssl.CERT_OPTIONAL
    endpoint.context.load_verify_locations(cafile=str(chain.root))
    port = await serve(endpoint)
    # What the server is given is checked here, not the server's chain.
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    assert (await deferToThread(stdlibClient, port, client))[2] == "NoneType -"
    client.load_cert_chain(str(chain.client), str(chain.clientKey))
    _, _, answer = await deferToThread(stdlibClient, port, client)
    assert answer == f"{X509.__name__} test client"
