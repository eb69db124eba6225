"""
The Twisted client (L{txclws.connectWebSocket}): against the txclws server
in-process over 127.0.0.1 (messages, deflate, close codes both ways,
refusals, TLS, an HTTP CONNECT proxy), and over an in-memory transport
with a fake clock where the timing is the point (the client's close rule,
handshake and close timeouts, keepalive pings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.web.server import Site
from twisted.web.static import Data
from zope.interface.verify import verifyObject

from tests.conftest import WAIT, RecordingResource
from tests.test_protocol import SocketTransport
from tests.test_tls import makeCertificate
from txclws import (
    DeflateOffer,
    HandshakeFailed,
    IWebSocketClient,
    PerMessageDeflate,
    WebSocketClientProtocol,
    anyOrigin,
    connectWebSocket,
    connectWebSocketEndpoint,
)
from txclws._client.owner import ClientOwner
from txclws._core.clienthandshake import ClientOpening, ClientSettings, WebSocketURL
from txclws._core.handshake import acceptKey
from txclws._readsize import MAX_READ_SIZE, MAX_SEND_SIZE
from txclws._session.dispatch import KEEPALIVE_PAYLOAD


def url(port: int, path: str = "/echo", scheme: str = "ws") -> str:
    """
    The URL of C{path} on the test server.
    """
    return f"{scheme}://127.0.0.1:{port}{path}"


async def opened(port: int, resource: Any, **options: Any) -> Any:
    """
    Connect to the echo server; the open connection.
    """
    options.setdefault("handshakeTimeout", WAIT)
    return await connectWebSocket(reactor, url(port), resource, **options)


@pytest.fixture
def mine() -> RecordingResource:
    """
    The client's own resource: it records, and echoes nothing.
    """
    return RecordingResource(echo=False)


class TestAgainstTxclws:
    """
    The client against the txclws server, in-process.
    """

    @pytest_twisted.ensureDeferred
    async def test_echo(self, echoServer: Any, mine: RecordingResource) -> None:
        """
        Text, binary, empty and fragmented messages go and come back; the
        client is an L{IWebSocketClient} its resource was given first.
        """
        port, _, server = echoServer
        client = await opened(port, mine)
        assert verifyObject(IWebSocketClient, client)
        assert mine.named("clientConnected") == [client]
        client.writeText("héllo ✓")
        client.writeBinary(b"\x00\xff", frameSize=1)
        client.writeText("")
        client.writeText("x" * 70000, frameSize=1000)
        texts = await mine.waitFor("receivedText", 3)
        assert texts == ["héllo ✓", "", "x" * 70000]
        assert mine.named("receivedBinary") == [b"\x00\xff"]
        assert server.named("receivedBinary") == [b"\x00\xff"]
        assert client.resourceName == "/echo"
        assert client.responseHeaders["upgrade"].lower() == "websocket"

    @pytest.mark.parametrize(
        "offer, policy",
        [
            (DeflateOffer(), PerMessageDeflate()),
            (
                DeflateOffer(
                    clientNoContextTakeover=True, serverNoContextTakeover=True
                ),
                PerMessageDeflate(),
            ),
            (
                DeflateOffer(serverMaxWindowBits=9),
                PerMessageDeflate(clientMaxWindowBits=9),
            ),
        ],
        ids=["takeover", "no-takeover", "windows-9"],
    )
    @pytest_twisted.ensureDeferred
    async def test_deflate(
        self, server: Any, mine: RecordingResource, offer: Any, policy: Any
    ) -> None:
        """
        permessage-deflate, with and without context takeover and with
        small windows: compressed messages both ways, the same message
        several times (context reuse).
        """
        port, factory = server
        factory.deflate = policy
        echo = RecordingResource()
        factory.registerResource("/echo", echo, anyOrigin)
        client = await opened(port, mine, deflate=offer)
        assert (
            "permessage-deflate" in client.responseHeaders["sec-websocket-extensions"]
        )
        message = "compress me " * 100
        for _ in range(3):
            client.writeText(message)
        assert await mine.waitFor("receivedText", 3) == [message] * 3

    @pytest_twisted.ensureDeferred
    async def test_subprotocol(self, echoServer: Any, mine: RecordingResource) -> None:
        """
        The server's choice among the offered subprotocols.
        """
        port, _, server = echoServer
        server.respond["selectSubprotocol"] = lambda client, offered: offered[1]
        client = await opened(port, mine, subprotocols=["a", "b"])
        assert client.subprotocol == "b"

    @pytest_twisted.ensureDeferred
    async def test_clientCloses(self, echoServer: Any, mine: RecordingResource) -> None:
        """
        Our close code reaches the server, which echoes it and closes TCP.
        """
        port, _, server = echoServer
        client = await opened(port, mine)
        client.close(4001, "done")
        await mine.waitFor("clientDisconnected")
        (serverSide,) = server.named("clientDisconnected")
        assert (serverSide.closeCode, serverSide.closeReason) == (4001, "done")
        assert client.closeCode == 4001

    @pytest_twisted.ensureDeferred
    async def test_serverCloses(self, echoServer: Any, mine: RecordingResource) -> None:
        """
        The server's close code and reason reach the client.
        """
        port, _, server = echoServer
        client = await opened(port, mine)
        (serverSide,) = await server.waitFor("clientConnected")
        serverSide.close(4002, "server done")
        await mine.waitFor("clientDisconnected")
        assert (client.closeCode, client.closeReason) == (4002, "server done")

    @pytest_twisted.ensureDeferred
    async def test_refused(self, echoServer: Any, mine: RecordingResource) -> None:
        """
        A 404 (no resource at the path) is a HandshakeFailed that carries
        the status, the headers and the body.
        """
        port, _, _ = echoServer
        with pytest.raises(HandshakeFailed) as caught:
            await connectWebSocket(reactor, url(port, "/nowhere"), mine)
        failure = caught.value
        assert failure.status == 404
        assert "content-type" in failure.headers
        assert b"/nowhere" in failure.body
        assert mine.events == []

    @pytest_twisted.ensureDeferred
    async def test_refusedOrigin(self, server: Any, mine: RecordingResource) -> None:
        """
        A 403 for an origin the server does not allow.
        """
        port, factory = server
        factory.registerResource(
            "/echo", RecordingResource(), lambda origin: origin == "https://ok"
        )
        with pytest.raises(HandshakeFailed) as caught:
            await opened(port, mine, origin="https://evil")
        assert caught.value.status == 403
        client = await opened(port, mine, origin="https://ok")
        client.close()

    @pytest_twisted.ensureDeferred
    async def test_connectionRefused(self, mine: RecordingResource) -> None:
        """
        No server: the endpoint's own error.
        """
        listening = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        port = listening.getHost().port
        await listening.stopListening()
        with pytest.raises(ConnectionRefusedError):
            await opened(port, mine)

    @pytest_twisted.ensureDeferred
    async def test_endpoint(self, echoServer: Any, mine: RecordingResource) -> None:
        """
        The endpoint form: any client endpoint, the URL for Host and path.
        """
        port, _, _ = echoServer
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        client = await connectWebSocketEndpoint(
            reactor, endpoint, "ws://elsewhere.example/echo", mine
        )
        client.writeText("via endpoint")
        assert await mine.waitFor("receivedText") == ["via endpoint"]

    @pytest_twisted.ensureDeferred
    async def test_pausesWhileDeferredPends(
        self, echoServer: Any, mine: RecordingResource
    ) -> None:
        """
        The server's rule holds for the client's resource: while a
        callback's Deferred pends, the next message waits.
        """
        port, _, _ = echoServer
        gate: Deferred[None] = Deferred()
        mine.respond["receivedText"] = lambda client, message: (
            gate if message == "first" else None
        )
        client = await opened(port, mine)
        client.writeText("first")
        client.writeText("second")
        await mine.waitFor("receivedText", 1)
        await deferLater(0.2)
        assert mine.named("receivedText") == ["first"]
        gate.callback(None)
        assert await mine.waitFor("receivedText", 2) == ["first", "second"]


def deferLater(seconds: float) -> Deferred[None]:
    """
    A Deferred firing after C{seconds}.
    """
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class TestTLS:
    """
    wss://: the server's certificate is verified by default.
    """

    @pytest.fixture
    def tlsServer(self, echoServer: Any, tmp_path: Path) -> Any:
        """
        The echo server's factory also on a TLS port with a self-signed
        certificate for 127.0.0.1: yields C{(port, certificate)}.
        """
        _, factory, _ = echoServer
        certPath, keyPath = makeCertificate(tmp_path)
        pem = certPath.read_bytes() + keyPath.read_bytes()
        options = PrivateCertificate.loadPEM(pem).options()
        listening = reactor.listenSSL(0, factory, options, interface="127.0.0.1")
        yield listening.getHost().port, Certificate.loadPEM(certPath.read_bytes())
        listening.stopListening()

    @pytest_twisted.ensureDeferred
    async def test_untrusted(self, tlsServer: Any, mine: RecordingResource) -> None:
        """
        A self-signed certificate is refused: the connection never opens.
        """
        port, _ = tlsServer
        with pytest.raises(Exception) as caught:
            await connectWebSocket(reactor, url(port, scheme="wss"), mine)
        assert not isinstance(caught.value, AssertionError)
        assert mine.events == []

    @pytest_twisted.ensureDeferred
    async def test_trusted(self, tlsServer: Any, mine: RecordingResource) -> None:
        """
        With the certificate trusted (tlsOptions), wss:// works, checked
        for 127.0.0.1.
        """
        port, certificate = tlsServer
        options = optionsForClientTLS("127.0.0.1", trustRoot=certificate)
        client = await connectWebSocket(
            reactor, url(port, scheme="wss"), mine, tlsOptions=options
        )
        client.writeText("secret")
        assert await mine.waitFor("receivedText") == ["secret"]

    @pytest_twisted.ensureDeferred
    async def test_throughProxy(
        self, tlsServer: Any, connectProxy: Any, mine: RecordingResource
    ) -> None:
        """
        wss:// through a CONNECT proxy: TLS starts inside the tunnel.
        """
        port, certificate = tlsServer
        proxyPort, tunnels = connectProxy
        options = optionsForClientTLS("127.0.0.1", trustRoot=certificate)
        client = await connectWebSocket(
            reactor,
            url(port, scheme="wss"),
            mine,
            tlsOptions=options,
            proxy=f"http://127.0.0.1:{proxyPort}",
        )
        client.writeText("tunnelled")
        assert await mine.waitFor("receivedText") == ["tunnelled"]
        assert tunnels == [f"127.0.0.1:{port}"]


class _Tunnel(Protocol):
    """
    A tiny HTTP CONNECT proxy: reads the CONNECT, connects, relays.
    """

    def __init__(self, tunnels: list[str]) -> None:
        self._tunnels = tunnels
        self._buffer = b""
        self._peer: Protocol | None = None

    def dataReceived(self, data: bytes) -> None:
        if self._peer is not None:
            self._peer.transport.write(data)  # type: ignore[union-attr]
            return
        self._buffer += data
        if b"\r\n\r\n" not in self._buffer:
            return
        line = self._buffer.split(b"\r\n", 1)[0].decode()
        method, target, _ = line.split(" ")
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or host != "127.0.0.1":
            self.transport.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")  # type: ignore[union-attr]
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self._tunnels.append(target)
        self.transport.pauseProducing()  # type: ignore[union-attr]
        endpoint = TCP4ClientEndpoint(reactor, host, int(port))
        relay = _Relay(self)
        endpoint.connect(Factory.forProtocol(lambda: relay)).addCallback(self._up)

    def _up(self, relay: Protocol) -> None:
        self._peer = relay
        self.transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")  # type: ignore[union-attr]
        self.transport.resumeProducing()  # type: ignore[union-attr]

    def connectionLost(self, reason: Any = None) -> None:
        if self._peer is not None and self._peer.transport is not None:
            self._peer.transport.loseConnection()


class _Relay(Protocol):
    def __init__(self, tunnel: _Tunnel) -> None:
        self._tunnel = tunnel

    def dataReceived(self, data: bytes) -> None:
        self._tunnel.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Any = None) -> None:
        self._tunnel.transport.loseConnection()  # type: ignore[union-attr]


@pytest.fixture
def connectProxy() -> Any:
    """
    A CONNECT proxy on 127.0.0.1 that tunnels to 127.0.0.1 only: yields
    C{(port, targets tunnelled to)}.
    """
    tunnels: list[str] = []
    listening = reactor.listenTCP(
        0, Factory.forProtocol(lambda: _Tunnel(tunnels)), interface="127.0.0.1"
    )
    yield listening.getHost().port, tunnels
    listening.stopListening()


class TestProxy:
    """
    proxy="http://host:port": the connection goes through HTTP CONNECT.
    """

    @pytest_twisted.ensureDeferred
    async def test_tunnel(
        self, echoServer: Any, connectProxy: Any, mine: RecordingResource
    ) -> None:
        """
        ws:// through the proxy: it is asked for the server's authority.
        """
        port, _, _ = echoServer
        proxyPort, tunnels = connectProxy
        client = await opened(port, mine, proxy=f"http://127.0.0.1:{proxyPort}")
        client.writeText("proxied")
        assert await mine.waitFor("receivedText") == ["proxied"]
        assert tunnels == [f"127.0.0.1:{port}"]

    @pytest_twisted.ensureDeferred
    async def test_refused(self, connectProxy: Any, mine: RecordingResource) -> None:
        """
        A proxy's refusal is a HandshakeFailed with its status.
        """
        proxyPort, _ = connectProxy
        with pytest.raises(HandshakeFailed) as caught:
            await connectWebSocket(
                reactor,
                "ws://localhost:1/",
                mine,
                proxy=f"http://127.0.0.1:{proxyPort}",
            )
        assert caught.value.status == 403

    def test_badProxy(self, mine: RecordingResource) -> None:
        """
        Only an http://host:port proxy is understood.
        """
        with pytest.raises(ValueError):
            connectWebSocket(reactor, "ws://h/", mine, proxy="socks5://h:1")

    @pytest_twisted.ensureDeferred
    async def test_notWebSocket(self, mine: RecordingResource) -> None:
        """
        A plain web server's 200 is a HandshakeFailed with its body.
        """
        page = Data(b"just a page", "text/plain")
        page.isLeaf = True
        listening = reactor.listenTCP(0, Site(page), interface="127.0.0.1")
        try:
            with pytest.raises(HandshakeFailed) as caught:
                await connectWebSocket(
                    reactor, url(listening.getHost().port, "/"), mine
                )
        finally:
            await listening.stopListening()
        assert caught.value.status == 200
        assert caught.value.body == b"just a page"


# -- over an in-memory transport, with a fake clock -------------------------


KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPTED = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
    + acceptKey(KEY).encode()
    + b"\r\n\r\n"
)


def memoryClient(
    resource: Any,
    clock: MemoryReactorClock,
    pingInterval: float | None = None,
    transport: StringTransport | None = None,
) -> tuple[WebSocketClientProtocol, StringTransport, Deferred[Any]]:
    """
    A client protocol on a L{StringTransport} (or C{transport}), every mask
    key zero (so our frames read as their payload), its handshake sent.
    """
    opening = ClientOpening(
        WebSocketURL.parse("ws://h/x"), ClientSettings(), KEY, lambda: bytes(4)
    )
    done: Deferred[Any] = Deferred()
    owner = ClientOwner(clock, closeTimeout=5, pingInterval=pingInterval)
    protocol = WebSocketClientProtocol(opening, resource, owner, done)
    if transport is None:
        transport = StringTransport()
    protocol.makeConnection(transport)
    assert transport.value().startswith(b"GET /x HTTP/1.1\r\n")
    transport.clear()
    return protocol, transport, done


class TestClientRules:
    """
    What the client does differently: RFC 6455 7.1.1, the server closes
    the TCP connection first; the client waits for it, bounded.
    """

    def test_waitsForServerToClose(self, mine: RecordingResource) -> None:
        """
        After the server's close frame and our echo, the client does not
        close TCP; after closeTimeout, it drops the connection.
        """
        clock = MemoryReactorClock()
        protocol, transport, _done = memoryClient(mine, clock)
        protocol.dataReceived(ACCEPTED + bytes.fromhex("880203e8"))
        # Our echo: a masked close 1000 (zero key).
        assert transport.value() == bytes.fromhex("88820000000003e8")
        assert not transport.disconnecting
        clock.advance(4.9)
        assert not transport.disconnecting
        clock.advance(0.2)
        assert transport.disconnecting

    def test_serverClosesInTime(self, mine: RecordingResource) -> None:
        """
        When the server closes TCP in time, the timer is gone and the
        resource is told once.
        """
        clock = MemoryReactorClock()
        protocol, transport, _done = memoryClient(mine, clock)
        protocol.dataReceived(ACCEPTED)
        protocol.close(1000)
        assert transport.value() == bytes.fromhex("88820000000003e8")
        protocol.dataReceived(bytes.fromhex("880203e8"))
        assert not transport.disconnecting
        protocol.connectionLost()
        assert clock.getDelayedCalls() == []
        assert mine.named("clientDisconnected") == [protocol]
        assert protocol.closeCode == 1000

    def test_maskedServerFrameFails(self, mine: RecordingResource) -> None:
        """
        A masked frame from the server fails the connection with 1002.
        """
        clock = MemoryReactorClock()
        protocol, transport, _done = memoryClient(mine, clock)
        protocol.dataReceived(ACCEPTED + bytes.fromhex("818537fa213d7f9f4d5158"))
        assert transport.value() == (
            # FIN + close, MASK + 24, the zero key, 1002 and the reason.
            bytes.fromhex("88980000000003ea") + b"server frame is masked"
        )
        assert protocol.closeCode == 1002
        assert mine.named("receivedText") == []

    def test_handshakeTimeout(self, mine: RecordingResource) -> None:
        """
        A server that never answers: HandshakeFailed once the attempt's
        timer says so, and the connection is dropped.
        """
        clock = MemoryReactorClock()
        protocol, transport, done = memoryClient(mine, clock)
        failures: list[Any] = []
        done.addErrback(failures.append)
        protocol.handshakeTimedOut()
        assert failures[0].check(HandshakeFailed)
        assert "timed out" in str(failures[0].value)
        assert transport.disconnecting or transport.disconnected

    def test_framesAfterTheHead(self, mine: RecordingResource) -> None:
        """
        Frames in the same read as the 101 reach the resource, after
        clientConnected and after the Deferred fires.
        """
        clock = MemoryReactorClock()
        protocol, _transport, done = memoryClient(mine, clock)
        order: list[str] = []
        done.addCallback(lambda client: order.append("fired"))
        mine.respond["receivedText"] = lambda client, message: order.append(message)
        protocol.dataReceived(ACCEPTED + b"\x81\x02hi")
        assert [name for name, _, _ in mine.events] == [
            "clientConnected",
            "receivedText",
        ]
        assert order == ["fired", "hi"]

    def test_keepalive(self, mine: RecordingResource) -> None:
        """
        pingInterval: a quiet server is pinged (masked), its pong is not
        the resource's, and a server that stops answering is dropped.
        """
        clock = MemoryReactorClock()
        protocol, transport, _done = memoryClient(mine, clock, pingInterval=10)
        protocol.dataReceived(ACCEPTED)
        clock.advance(12.5)
        ping = bytes((0x89, 0x80 | len(KEEPALIVE_PAYLOAD))) + bytes(4)
        assert transport.value() == ping + KEEPALIVE_PAYLOAD
        protocol.dataReceived(bytes((0x8A, len(KEEPALIVE_PAYLOAD))) + KEEPALIVE_PAYLOAD)
        assert mine.named("receivedPong") == []
        transport.clear()
        clock.advance(12.5)
        assert transport.value().startswith(ping)
        clock.advance(12.5)
        assert transport.disconnecting or transport.disconnected
        protocol.connectionLost()
        assert clock.getDelayedCalls() == []

    def test_largeFrameResizesReads(self, mine: RecordingResource) -> None:
        """
        Over a TCP transport, the client reads the rest of a large frame at
        once and sends up to L{MAX_SEND_SIZE} at a time from then on, as
        the server's front door does; once the frame is in, the read size
        is back and the message is delivered whole.
        """
        clock = MemoryReactorClock()
        protocol, transport, _done = memoryClient(
            mine, clock, transport=SocketTransport()
        )
        protocol.dataReceived(ACCEPTED)
        assert isinstance(transport, SocketTransport)
        default = transport.bufferSize
        payload = bytes(range(256)) * 8192  # 2 MiB
        frame = b"\x82\x7f" + len(payload).to_bytes(8, "big") + payload
        protocol.dataReceived(frame[:default])
        assert (transport.bufferSize, transport.SEND_LIMIT) == (
            MAX_READ_SIZE,
            MAX_SEND_SIZE,
        )
        protocol.dataReceived(frame[default:])
        assert transport.bufferSize == default
        assert mine.named("receivedBinary") == [payload]

    def test_cancel(self, mine: RecordingResource) -> None:
        """
        Cancelling the Deferred of connectWebSocketEndpoint before it is
        open abandons the attempt.
        """

        class Endpoint:
            def connect(self, factory: Any) -> Deferred[Any]:
                self.protocol = factory.buildProtocol(None)
                self.transport = StringTransport()
                self.protocol.makeConnection(self.transport)
                d: Deferred[Any] = Deferred()
                d.callback(self.protocol)
                return d

        clock = MemoryReactorClock()
        endpoint = Endpoint()
        attempt = connectWebSocketEndpoint(clock, endpoint, "ws://h/", mine)  # type: ignore[arg-type]
        failures: list[Any] = []
        attempt.addErrback(failures.append)
        attempt.cancel()
        assert failures and failures[0].check(Exception)
        assert endpoint.transport.disconnecting or endpoint.transport.disconnected
        assert clock.getDelayedCalls() == []
        assert mine.events == []
