"""
TLS on the standard library's C{ssl} (L{txclws._tls}, issue 16): the
C{stdssl:} endpoint serving a L{WebSocketFactory} and the daemon, with
what Twisted's C{ssl:} gives them kept: ALPN (RFC 7301), the front door's
TLS handshake bound (C{IHandshakeListener}, C{AWAITING_TLS}),
C{close_notify} on every close (RFC 8446 6.1), large messages, and writes
made before the handshake has completed held until it has.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IHandshakeListener, INegotiated, ISSLTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from tests._daemon import WAIT, Daemon, connect
from tests._h2client import H2Client, maskedFrame
from tests._h2server import Server, accept
from tests._rawsocket import RawClient, clientFrame
from tests._silent_tls_clients import silentClients
from tests.conftest import RecordingResource
from tests.test_closing import ENTRIES, Closer, closeOverTLS, serve, stop, until
from tests.test_tls import ALPN_OFFERS, certificate, trusting, upgradeOverTLS
from txclws import ResourceRegistry, WebSocketFactory, anyOrigin
from txclws._tapvalues import checkPorts, portDescription
from txclws._tls import (
    StdlibSSLServerEndpoint,
    StdlibTLSFactory,
    StdlibTLSProtocol,
    serverContext,
)
from txclws._tls.clienthello import ALPNCheck, offeredProtocols
from txclws.demo import EchoResource

__all__ = ["certificate"]  # the fixture, shared with test_tls

#: The text opcode (RFC 6455 5.2).
TEXT = 0x1


def stdsslString(certificate: tuple[Path, Path], extra: str = "") -> str:
    """
    A C{stdssl:} description on 127.0.0.1, a free port.
    """
    cert, key = certificate
    return f"stdssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}{extra}"


@pytest_twisted.async_yield_fixture
async def stdsslFactory(certificate: tuple[Path, Path]) -> Any:
    """
    A L{WebSocketFactory} (echo at C{/echo}, handshake timeout 1 s) on a
    C{stdssl:} endpoint: yields its port; afterwards it stops listening.
    """
    registry = ResourceRegistry()
    registry.register("/echo", EchoResource(), anyOrigin)
    factory = WebSocketFactory(
        registry, handshakeTimeout=1.0, maxMessageSize=8 << 20, maxFrameSize=8 << 20
    )
    endpoint = serverFromString(reactor, stdsslString(certificate))
    listening = await endpoint.listen(factory)
    yield listening.getHost().port
    await listening.stopListening()
    for client in list(factory.clients):
        client._abort()


def test_endpointParsed(certificate: tuple[Path, Path]) -> None:
    """
    C{stdssl:} is found by C{serverFromString} (the plugin); an option it
    does not know, or no C{privateKey}, is refused with C{ValueError}.
    """
    endpoint = serverFromString(reactor, stdsslString(certificate, ":backlog=7"))
    assert isinstance(endpoint, StdlibSSLServerEndpoint)
    with pytest.raises(ValueError, match="sslmethod"):
        serverFromString(reactor, stdsslString(certificate, ":sslmethod=TLSv1"))
    with pytest.raises(ValueError, match="privateKey"):
        serverFromString(reactor, "stdssl:0")


@pytest.mark.parametrize("offer, selected", ALPN_OFFERS)
@pytest_twisted.ensureDeferred
async def test_factoryALPN(
    stdsslFactory: int,
    certificate: tuple[Path, Path],
    offer: list[str] | None,
    selected: str | None,
) -> None:
    """
    A factory on C{stdssl:} names its protocols for ALPN as on C{ssl:}:
    whatever a client offers with HTTP/1.1 among it, HTTP/1.1 is selected
    and the upgrade is answered 101, the certificate checked.
    """
    result = await deferToThread(upgradeOverTLS, stdsslFactory, certificate[0], offer)
    assert result == (selected, "over alpn")


def echoLarge(port: int, cert: Path, size: int) -> bytes:
    """
    Upgrade over TLS and echo one binary message of C{size} bytes.
    """
    context = trusting(cert)
    with RawClient(port) as client:
        client.sock = context.wrap_socket(client.sock, server_hostname="localhost")
        client.sock.settimeout(WAIT)
        client.handshake()
        client.send(clientFrame(0x2, b"\x07" * size))
        return client.readFrame().payload


@pytest_twisted.ensureDeferred
async def test_largeEcho(stdsslFactory: int, certificate: tuple[Path, Path]) -> None:
    """
    A 3 MiB message echoes whole: read sizes grow while it streams in
    (past the transport's 64 KiB) and the reply is encrypted at once.
    """
    size = 3 << 20
    echoed = await deferToThread(echoLarge, stdsslFactory, certificate[0], size)
    assert echoed == b"\x07" * size


@pytest_twisted.ensureDeferred
async def test_silentClientsDropped(stdsslFactory: int) -> None:
    """
    Clients that never send a ClientHello, or only its first 20 bytes, are
    dropped at the factory's C{handshakeTimeout} (1 s): the front door
    saw a TLS transport (C{AWAITING_TLS}) and aborted it.
    """
    for prefix in (0, 20):
        outcomes = await deferToThread(silentClients, stdsslFactory, 10, prefix, 4.0)
        late = [o for o in outcomes if o[0] is None or not 0.9 <= o[0] <= 2.5]
        assert not late, outcomes
        assert {how for _, how in outcomes} <= {"eof", "reset"}, outcomes


@pytest.mark.parametrize(
    "how, code",
    [("peer", 1000), ("server", 4000), ("failure", 1002)],
    ids=["peer-closes", "server-closes", "server-fails"],
)
@pytest.mark.parametrize("entry", ENTRIES)
@pytest_twisted.ensureDeferred
async def test_closeNotify(
    entry: str, how: str, code: int, certificate: tuple[Path, Path]
) -> None:
    """
    After the WebSocket close handshake, however it started, the server
    closes TLS (C{close_notify}) before TCP, and reads the client's own:
    the client sees a TLS close, not a truncation; through the factory and
    through a L{WebSocketSite}.
    """
    served, listening = await serve(Closer(), entry, stdsslString(certificate))
    try:
        result = await deferToThread(closeOverTLS, served.port, certificate[0], how)
        assert result == (code, "close_notify")
        await until(lambda: not served.factory.clients, 5.0)
    finally:
        await stop(served, listening)


def test_daemonServesStdssl(certificate: tuple[Path, Path]) -> None:
    """
    C{twistd clws --port stdssl:...} serves C{wss://} (echo, text and a
    message larger than a TLS record) and HTTPS pages through its site.
    """
    with Daemon("--port", stdsslString(certificate)) as daemon:
        context = trusting(certificate[0])
        with connect(daemon.url("/echo", "wss"), ssl=context) as ws:
            ws.send("secret")
            assert ws.recv(WAIT) == "secret"
            ws.send(b"\x01" * 70000)
            assert ws.recv(WAIT) == b"\x01" * 70000


@implementer(IHandshakeListener)
class Recorder(Protocol):
    """
    Records what it is given, and writes as soon as it is connected.
    """

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.handshakes = 0

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"early")

    def handshakeCompleted(self) -> None:
        self.handshakes += 1

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)


def pump(server: StringTransport, client: ssl.SSLObject, out: ssl.MemoryBIO) -> None:
    """
    Move the client's pending bytes to the server, once.
    """
    data = out.read()
    if data:
        server.protocol.dataReceived(data)  # type: ignore[attr-defined]


def test_writesBeforeHandshakeHeld(certificate: tuple[Path, Path]) -> None:
    """
    Over a L{StringTransport}: the wrapper is an C{ISSLTransport} and
    C{INegotiated} at once; what the application writes before the
    handshake has completed reaches TCP only after it, encrypted; the
    application hears C{handshakeCompleted} once, and gets the client's
    bytes.
    """
    cert, key = certificate
    factory = StdlibTLSFactory(
        serverContext(str(cert), str(key)), Factory.forProtocol(Recorder)
    )
    tls = factory.buildProtocol(None)
    assert isinstance(tls, StdlibTLSProtocol)
    transport = StringTransport()
    transport.protocol = tls  # type: ignore[attr-defined]
    tls.makeConnection(transport)
    app = tls.wrappedProtocol
    assert isinstance(app, Recorder)
    assert ISSLTransport.providedBy(tls) and INegotiated.providedBy(tls)
    assert transport.value() == b""  # nothing before the ClientHello
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = trusting(cert).wrap_bio(incoming, outgoing, server_hostname="localhost")
    for _ in range(5):  # a bounded number of round trips
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            pump(transport, client, outgoing)
            incoming.write(transport.value())
            transport.clear()
    pump(transport, client, outgoing)
    incoming.write(transport.value())
    assert app.handshakes == 1
    assert client.read(100) == b"early"
    client.write(b"hello")
    pump(transport, client, outgoing)
    assert b"".join(app.received) == b"hello"
    assert tls.negotiatedProtocol is None
    assert tls.getPeerCertificate() is None


def clientHello(offer: list[str] | None) -> bytes:
    """
    The first bytes a standard-library TLS client sends, offering
    C{offer} by ALPN (nothing if L{None}).
    """
    context = ssl.create_default_context()
    if offer is not None:
        context.set_alpn_protocols(offer)
    outgoing = ssl.MemoryBIO()
    client = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(
    "offer", [None, ["http/1.1"], ["h2", "http/1.1"]], ids=["none", "h1", "h2-h1"]
)
def test_offeredProtocols(offer: list[str] | None) -> None:
    """
    L{offeredProtocols} reads the ALPN list of a real ClientHello, in the
    client's order (C{[]} without ALPN), and says C{None} while only part
    of the hello is in, at any cut.
    """
    hello = clientHello(offer)
    expected = [p.encode() for p in offer or []]
    assert offeredProtocols(hello) == expected
    for cut in (1, 5, 9, len(hello) // 2, len(hello) - 1):
        assert offeredProtocols(hello[:cut]) is None
    assert offeredProtocols(b"GET / HTTP/1.1\r\n") == []


def test_alpnCheck() -> None:
    """
    L{ALPNCheck} waits for the whole hello, fed in pieces, then refuses an
    offer with no protocol served and lets through one with a protocol
    served, or none.
    """
    hello = clientHello(["h2"])
    check = ALPNCheck([b"http/1.1"])
    assert check.feed(hello[:50]) is None
    assert check.feed(hello[50:]) is True
    assert ALPNCheck([b"http/1.1"]).feed(clientHello(["h2", "http/1.1"])) is False
    assert ALPNCheck([b"http/1.1"]).feed(clientHello(None)) is False


@pytest_twisted.ensureDeferred
async def test_factoryALPNNoOverlap(
    stdsslFactory: int, certificate: tuple[Path, Path]
) -> None:
    """
    A client offering only C{h2} to a factory (HTTP/1.1 only) gets the
    fatal C{no_application_protocol} alert (RFC 7301 3.2), which the
    standard library's C{ssl} alone would not send; the port keeps
    serving.  (Python's error table has no name for that alert: its
    message says which it is.)
    """
    cert = certificate[0]
    with pytest.raises(ssl.SSLError, match="no application protocol"):
        await deferToThread(upgradeOverTLS, stdsslFactory, cert, ["h2"])
    result = await deferToThread(
        upgradeOverTLS, stdsslFactory, cert, ["h2", "http/1.1"]
    )
    assert result == ("http/1.1", "over alpn")


def test_daemonBacklog() -> None:
    """
    The daemon gives a C{stdssl:} port that sets no backlog its
    C{--backlog}, as it does C{ssl:} ports; one that sets its own keeps it.
    """
    assert portDescription("stdssl:8443:privateKey=k.pem", 511) == (
        "stdssl:8443:privateKey=k.pem:backlog=511"
    )
    assert portDescription("stdssl:8443:privateKey=k.pem:backlog=9", 511) == (
        "stdssl:8443:privateKey=k.pem:backlog=9"
    )


@pytest_twisted.ensureDeferred
async def test_siteHTTP2(certificate: tuple[Path, Path]) -> None:
    """
    A L{WebSocketSite} on C{stdssl:} offers C{h2} first by ALPN: an HTTP/2
    client gets it, the server's SETTINGS allow extended CONNECT (RFC 8441
    3), and a WebSocket over an HTTP/2 stream echoes.
    """
    pytest.importorskip("h2")
    server = Server(RecordingResource())
    listening = await serverFromString(reactor, stdsslString(certificate)).listen(
        server.site
    )

    def run() -> tuple[Any, ...]:
        with H2Client(listening.getHost().port) as client:
            settings = client.settingsAcknowledged()
            streamID = accept(client)
            client.send(streamID, maskedFrame(TEXT, b"over h2"))
            return client.alpn, settings[0x8], client.frames(streamID, 1)

    try:
        alpn, connect, frames = await deferToThread(run)
    finally:
        await listening.stopListening()
        for client in list(server.factory.clients):
            client.abort()
    assert (alpn, connect, frames) == ("h2", 1, [(True, TEXT, b"over h2")])


def clientClosesTLS(port: int, cert: Path) -> str:
    """
    Upgrade over TLS, then close TLS from the client side (C{close_notify}
    first, with no WebSocket close): what the server answers.
    """
    context = trusting(cert)
    with RawClient(port) as client:
        client.sock = context.wrap_socket(client.sock, server_hostname="localhost")
        client.sock.settimeout(WAIT)
        client.handshake()
        plain = client.sock.unwrap()  # completes once the server's arrives
        rest = plain.recv(1)
        return "close_notify, then TCP closed" if rest == b"" else repr(rest)


@pytest_twisted.ensureDeferred
async def test_peerCloseNotifyAnswered(
    stdsslFactory: int, certificate: tuple[Path, Path]
) -> None:
    """
    A client's C{close_notify} is answered with the server's (RFC 8446
    6.1), and then TCP is closed.
    """
    result = await deferToThread(clientClosesTLS, stdsslFactory, certificate[0])
    assert result == "close_notify, then TCP closed"


def test_workersTakeStdssl(certificate: tuple[Path, Path]) -> None:
    """
    C{--workers} shares a C{stdssl:} port as it does an C{ssl:} one (each
    worker wraps its socket in L{StdlibTLSFactory}: served in
    L{tests.test_stdsslworkers}): the daemon's check of the ports takes
    it, with two processes as with one.
    """
    port = stdsslString(certificate)
    for workers in (1, 2):
        assert checkPorts([port], 511, workers) == [f"{port}:backlog=511"]
