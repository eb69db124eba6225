"""
L{txclws.web}: WebSocket resources inside a C{twisted.web} site, sharing
its port with the site's pages.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import deferLater
from twisted.internet.testing import (
    EventLoggingObserver,
    MemoryReactorClock,
    StringTransport,
)
from twisted.internet.threads import deferToThread
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests._daemon import connect as wsConnect
from txclws import (
    IWebSocketClient,
    WebSocketFactory,
    WebSocketResource,
    WebSocketServerProtocol,
    anyOrigin,
)
from txclws._core.frames import Opcode, serializeFrame
from txclws.demo import EchoResource
from txclws.testing import MASK, InMemoryServer
from txclws.web import WebSocketSite, WebSocketUpgradeResource, mountWebSocket

HANDSHAKE = (
    b"GET /echo HTTP/1.1\r\n"
    b"Host: localhost\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


class Page(Resource):
    """
    A page of the app, next to its WebSocket.
    """

    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def render_GET(self, request: Any) -> bytes:
        return self.body


class Recording(WebSocketResource):
    """
    Echoes, and records connections and disconnections.
    """

    def __init__(self) -> None:
        self.connected: list[IWebSocketClient] = []
        self.disconnected: list[IWebSocketClient] = []

    def clientConnected(self, client: IWebSocketClient) -> None:
        self.connected.append(client)

    def clientDisconnected(self, client: IWebSocketClient) -> None:
        self.disconnected.append(client)

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        client.writeText(message)


class Slow(WebSocketResource):
    """
    Answers each text message 1 second later, on C{clock}.
    """

    def __init__(self, clock: MemoryReactorClock) -> None:
        self.clock = clock

    def receivedText(self, client: IWebSocketClient, message: str) -> Deferred[None]:
        return deferLater(self.clock, 1, client.writeText, message)


class AppSite:
    """
    A site with a page at C{/} and a WebSocket resource at C{/echo}, on a
    fake clock.
    """

    def __init__(self, resource: Any = None, **limits: Any) -> None:
        self.clock = MemoryReactorClock()
        self.factory = WebSocketFactory(reactor=self.clock, **limits)
        self.resource = resource if resource is not None else Recording()
        self.root = Resource()
        self.root.putChild(b"", Page(b"<p>the app</p>"))
        self.upgrade = WebSocketUpgradeResource(self.resource, anyOrigin, self.factory)
        self.root.putChild(b"echo", self.upgrade)
        self.site = Site(self.root, reactor=self.clock)
        self.server = InMemoryServer(self.site, clock=self.clock)

    def raw(self, data: bytes) -> StringTransport:
        """
        Send C{data} on a new connection to the site, in one read.
        """
        return rawRequest(self.site, data)


def rawRequest(site: Site, data: bytes) -> StringTransport:
    """
    Send C{data} on a new connection to C{site}, in one read.

    @return: the connection's transport, holding the answer.
    """
    peer = IPv4Address("TCP", "127.0.0.1", 40000)
    channel = site.buildProtocol(peer)
    transport = StringTransport(peerAddress=peer)
    channel.makeConnection(transport)
    channel.dataReceived(data)
    return transport


@pytest.fixture
def site() -> AppSite:
    """
    A fresh L{AppSite}.
    """
    return AppSite()


def maskedText(text: str) -> bytes:
    """
    A client's text frame, masked with L{MASK}.
    """
    return serializeFrame(Opcode.TEXT, text.encode(), mask=MASK)


def test_upgradeAndEcho(site: AppSite) -> None:
    """
    An upgrade request to the mounted path is answered 101 and served by
    the txclws resource, which sees the path and query string.
    """
    client = site.server.connect("/echo?room=1")
    client.sendText("through the site")
    assert client.readMessages() == ["through the site"]
    (seen,) = site.resource.connected
    assert (seen.resourceName, seen.queryString) == ("/echo", "room=1")
    assert site.factory.clients == {seen}


def test_pagesStillServed(site: AppSite) -> None:
    """
    The site's pages are served as before, next to the WebSocket.
    """
    site.server.connect("/echo")
    transport = site.raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.value().endswith(b"<p>the app</p>")


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", b"426 Upgrade Required"),
        (HANDSHAKE.replace(b"GET", b"POST"), b"405 Method Not Allowed"),
        (HANDSHAKE.replace(b"HTTP/1.1", b"HTTP/1.0"), b"400 Bad Request"),
        (HANDSHAKE.replace(b"Sec-WebSocket-Key", b"X-Nothing"), b"400 Bad Request"),
        (HANDSHAKE.replace(b"Version: 13", b"Version: 99"), b"426 Upgrade Required"),
    ],
)
def test_refusedByTheSite(site: AppSite, request_: bytes, status: bytes) -> None:
    """
    A request that is not a good upgrade is answered by the site at once,
    with the status and a reason, and never reaches the resource.
    """
    transport = site.raw(request_)
    response = transport.value()
    assert response.split(b"\r\n")[0].endswith(b" " + status)
    assert b"Content-Type: text/plain; charset=utf-8" in response
    assert site.resource.connected == []


def test_plainRequestSaysUpgrade(site: AppSite) -> None:
    """
    The 426 for a plain request names the upgrade and versions to use.
    """
    response = site.raw(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n").value()
    assert b"\r\nUpgrade: websocket\r\n" in response
    assert b"\r\nSec-Websocket-Version: 13, 8, 7\r\n" in response


def test_refusalLogged(site: AppSite) -> None:
    """
    A refusal is logged with the peer, status and reason.
    """
    observer = EventLoggingObserver()
    globalLogPublisher.addObserver(observer)
    try:
        site.raw(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        globalLogPublisher.removeObserver(observer)
    refused = [e for e in observer if e["log_format"].startswith("refused")]
    assert [(e["peer"], e["status"]) for e in refused] == [("127.0.0.1:40000", 426)]


def test_originRefused() -> None:
    """
    The upgrade resource's origin policy applies: another origin gets 403.
    """
    site = AppSite()
    site.upgrade.originCheck = lambda origin: origin == "https://app.example"
    refused = site.server.connect("/echo", origin="https://evil", requireAccept=False)
    assert (refused.status, refused.disconnected) == (403, True)
    site.server.connect("/echo", origin="https://app.example")


def test_maxClientsShared() -> None:
    """
    Upgrade resources sharing a factory share its C{maxClients}.
    """
    site = AppSite(maxClients=1)
    site.root.putChild(
        b"other", WebSocketUpgradeResource(EchoResource(), anyOrigin, site.factory)
    )
    first = site.server.connect("/echo")
    refused = site.server.connect("/other", requireAccept=False)
    assert refused.status == 503
    first.sendClose()
    site.server.connect("/other")


def test_bytesAfterHeadInSameRead(site: AppSite) -> None:
    """
    Frames that arrive in the same read as the request head are not lost:
    the HTTP channel has them buffered, and hands them over.
    """
    transport = site.raw(HANDSHAKE + maskedText("early") + maskedText("bird"))
    response = transport.value()
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert response.endswith(b"\x81\x05early\x81\x04bird")


def test_backPressureAfterHandOver() -> None:
    """
    When the handed-over bytes keep a slow resource busy with events queued
    past C{maxQueuedBytes} (0 here), the transport stays paused until the
    resource catches up.
    """
    site = AppSite(maxQueuedBytes=0)
    site.upgrade.resource = Slow(site.clock)
    transport = site.raw(HANDSHAKE + maskedText("one") + maskedText("two"))
    assert transport.producerState == "paused"
    site.clock.advance(1)
    site.clock.advance(1)
    assert transport.value().endswith(b"\x81\x03one\x81\x03two")
    assert transport.producerState == "producing"


def test_handOver(site: AppSite) -> None:
    """
    After the upgrade the HTTP channel is out of the way: the WebSocket
    protocol, not the channel, is the transport's producer, and the
    channel's idle timeout does not drop the WebSocket client.
    """
    client = site.server.connect("/echo")
    assert isinstance(client.transport.producer, WebSocketServerProtocol)
    client.advance(24 * 3600)
    assert not client.disconnected
    client.sendText("still here")
    assert client.readMessages() == ["still here"]


def test_disconnectReachesResource(site: AppSite) -> None:
    """
    When the connection goes, the resource is told, and the factory forgets
    the client.
    """
    client = site.server.connect("/echo")
    client.disconnect()
    assert site.resource.disconnected == site.resource.connected
    assert site.factory.clients == set()


def test_mountWebSocket() -> None:
    """
    L{mountWebSocket} mounts at a nested path, making or reusing the
    resources on the way, and refuses a path that is not absolute.
    """
    root = Resource()
    factory = WebSocketFactory(reactor=MemoryReactorClock())
    mountWebSocket(root, "/rooms/a", Recording(), anyOrigin, factory)
    mountWebSocket(root, "/rooms/b", EchoResource(), anyOrigin, factory)
    assert sorted(root.children[b"rooms"].children) == [b"a", b"b"]
    server = InMemoryServer(Site(root), clock=factory.reactor)  # type: ignore[arg-type]
    client = server.connect("/rooms/b")
    client.sendText("nested")
    assert client.readMessages() == ["nested"]
    with pytest.raises(ValueError):
        mountWebSocket(root, "rooms", EchoResource(), anyOrigin, factory)


def test_notAResource() -> None:
    """
    Only an L{IWebSocketResource} can be served.
    """
    with pytest.raises(TypeError):
        WebSocketUpgradeResource(object(), anyOrigin)  # type: ignore[arg-type]


@pytest_twisted.inlineCallbacks
def test_realConnection() -> Any:
    """
    Over a real socket, a site serves its page and a C{websockets} client
    echoes through the upgrade resource on the same port.
    """
    root = Resource()
    root.putChild(b"", Page(b"page"))
    root.putChild(b"echo", WebSocketUpgradeResource(EchoResource(), anyOrigin))
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    number = port.getHost().port

    def talk() -> list[Any]:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{number}/") as response:
            page = response.read()
        with wsConnect(f"ws://127.0.0.1:{number}/echo") as client:
            client.send("real")
            text = client.recv(10)
            client.send(b"\x00" * 100000)
            data = client.recv(10)
        return [page, text, len(data)]

    try:
        result = yield deferToThread(talk)
    finally:
        yield port.stopListening()
    assert result == [b"page", "real", 100000]


def test_cohostExample() -> None:
    """
    C{examples/cohost.py} serves its page, its JSON API and its WebSockets
    on one site.
    """
    path = Path(__file__).parent.parent / "examples" / "cohost.py"
    spec = importlib.util.spec_from_file_location("cohost", path)
    assert spec is not None and spec.loader is not None
    cohost = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cohost)
    server = InMemoryServer(cohost.makeSite(), clock=MemoryReactorClock())
    ticks = server.connect("/ticks", origin="http://localhost:8080")
    assert json.loads(ticks.readMessage())["time"]
    ticks.disconnect()
    echo = server.connect("/echo", origin="http://127.0.0.1:8080")
    echo.sendText("co-hosted")
    assert echo.readMessages() == ["co-hosted"]
    foreign = server.connect("/echo", origin="https://elsewhere", requireAccept=False)
    assert foreign.status == 403
    site = server.factory
    page = rawRequest(site, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # type: ignore[arg-type]
    assert b"/ticks" in page.value()
    api = rawRequest(site, b"GET /api/time HTTP/1.1\r\nHost: x\r\n\r\n")  # type: ignore[arg-type]
    assert b'{"time": "' in api.value()


# -- exact routing through a plain Site -------------------------------------


def test_noPrefixRouting(site: AppSite) -> None:
    """
    Routing is exact, as on the direct path: an upgrade for a path below
    the mounted one (C{/echo/anything}) is 404, not served by C{/echo}.
    """
    transport = site.raw(HANDSHAKE.replace(b"GET /echo ", b"GET /echo/anything "))
    assert transport.value().startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert site.resource.connected == []


def test_nestedMountsServedByTheirOwn() -> None:
    """
    With C{/rooms} and C{/rooms/main} both mounted, C{/rooms/main} is served
    by its own resource, not by C{/rooms}.
    """
    clock = MemoryReactorClock()
    factory = WebSocketFactory(reactor=clock)
    root = Resource()
    rooms, main = Recording(), Recording()
    mountWebSocket(root, "/rooms", rooms, anyOrigin, factory)
    mountWebSocket(root, "/rooms/main", main, anyOrigin, factory)
    server = InMemoryServer(Site(root), clock=clock)  # type: ignore[arg-type]
    server.connect("/rooms/main")
    assert (len(rooms.connected), len(main.connected)) == (0, 1)


def test_mountNodeIs404() -> None:
    """
    A node that L{mountWebSocket} made on the way (C{/rooms} when only
    C{/rooms/main} is mounted) answers 404 in plain text, as the direct
    path does, not 405 with an HTML page.
    """
    root = Resource()
    factory = WebSocketFactory(reactor=MemoryReactorClock())
    mountWebSocket(root, "/rooms/main", Recording(), anyOrigin, factory)
    for data in (
        HANDSHAKE.replace(b"/echo", b"/rooms"),
        b"GET /rooms HTTP/1.1\r\n\r\n",
    ):
        response = rawRequest(Site(root), data).value()
        assert response.startswith(b"HTTP/1.1 404 Not Found\r\n"), response
        assert b"text/plain" in response


def test_oversizedHeadAfterTheFact() -> None:
    """
    Through a plain Site (which reads the head itself), a head over the
    factory's C{maxHeadSize} is still refused with 431 before any upgrade.
    """
    site = AppSite(maxHeadSize=1000)
    big = HANDSHAKE.replace(b"\r\n\r\n", b"\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
    assert (
        site.raw(big)
        .value()
        .startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    )
    assert site.resource.connected == []


# -- WebSocketSite: the front door first ------------------------------------


class FrontSite:
    """
    A L{WebSocketSite} with a page at C{/} and an echo at C{/echo}, on a
    fake clock.
    """

    def __init__(self, **limits: Any) -> None:
        self.clock = MemoryReactorClock()
        self.factory = WebSocketFactory(reactor=self.clock, **limits)
        self.resource = Recording()
        self.root = Resource()
        self.root.putChild(b"", Page(b"<p>the app</p>"))
        mountWebSocket(self.root, "/echo", self.resource, anyOrigin, self.factory)
        self.site = WebSocketSite(self.root, self.factory, reactor=self.clock)
        self.server = InMemoryServer(self.site, clock=self.clock)  # type: ignore[arg-type]

    def connection(self) -> tuple[Any, StringTransport]:
        """
        A new connection to the site, nothing sent yet.
        """
        peer = IPv4Address("TCP", "127.0.0.1", 40000)
        protocol = self.site.buildProtocol(peer)
        assert protocol is not None
        transport = StringTransport(peerAddress=peer)
        protocol.makeConnection(transport)
        return protocol, transport


def test_siteUpgradesThroughTheFrontDoor() -> None:
    """
    A L{WebSocketSite} accepts an upgrade for a mounted path itself: the
    client is a L{WebSocketServerProtocol} of the resource's factory.
    """
    front = FrontSite()
    client = front.server.connect("/echo?x=1")
    client.sendText("front door")
    assert client.readMessages() == ["front door"]
    (seen,) = front.resource.connected
    assert isinstance(seen, WebSocketServerProtocol)
    assert (seen.resourceName, seen.queryString) == ("/echo", "x=1")
    assert front.factory.clients == {seen}


def test_siteHandsPagesToHTTP() -> None:
    """
    Every other request goes, with the bytes read so far, to the site's own
    HTTP channel: pages are served, a request body sent with its head
    arrives, and later bytes and the connection's end reach the channel.
    """
    front = FrontSite()
    protocol, transport = front.connection()
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.value().endswith(b"<p>the app</p>")
    transport.clear()
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # kept alive
    assert transport.value().endswith(b"<p>the app</p>")
    channel = protocol._http
    lost: list[object] = []
    channel.connectionLost = lost.append
    protocol.connectionLost(Failure(ConnectionDone()))
    assert len(lost) == 1
    assert front.resource.connected == []


def test_siteBoundsTheHead() -> None:
    """
    The factory's head rules apply to every request through a
    L{WebSocketSite}, pages included: a head trickled past
    C{handshakeTimeout} is answered 408 and dropped, an oversized one 431,
    too many header lines 431, and an obs-fold line 400.
    """
    front = FrontSite(handshakeTimeout=5.0, maxHeadSize=1000)
    protocol, transport = front.connection()
    for byte in b"GET / HT":
        protocol.dataReceived(bytes((byte,)))
        front.clock.advance(0.5)
    front.clock.advance(2)
    assert transport.value().startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert transport.disconnecting
    cases = [
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 2000 + b"\r\n\r\n", b" 431 "),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 150 + b"\r\n", b" 431 "),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", b" 400 "),
    ]
    for data, status in cases:
        protocol, transport = front.connection()
        protocol.dataReceived(data)
        assert status in transport.value().split(b"\r\n")[0], data[:40]


def test_siteRoutesExactly() -> None:
    """
    Through a L{WebSocketSite}, C{/echo/anything} is not C{/echo}: the
    request goes to the HTTP channel, which answers 404.
    """
    front = FrontSite()
    protocol, transport = front.connection()
    protocol.dataReceived(HANDSHAKE.replace(b"GET /echo ", b"GET /echo/x "))
    assert transport.value().startswith(b"HTTP/1.1 404 ")
    assert front.resource.connected == []


def test_siteFactoryRegistry() -> None:
    """
    A L{WebSocketSite} also serves the resources of its factory's registry.
    """
    front = FrontSite()
    other = Recording()
    front.factory.registerResource("/registered", other, anyOrigin)
    front.server.connect("/registered")
    assert len(other.connected) == 1


def test_siteALPN() -> None:
    """
    A L{WebSocketSite} offers HTTP/2 then HTTP/1.1 by ALPN (the h2 library
    is installed for the tests), and only HTTP/1.1 with C{http2=False}.
    """
    assert WebSocketSite(Resource()).acceptableProtocols() == [b"h2", b"http/1.1"]
    plain = WebSocketSite(Resource(), http2=False)
    assert plain.acceptableProtocols() == [b"http/1.1"]


def test_daemonTreeBehindWebSocketSite() -> None:
    """
    The daemon's tree (from C{tap.makeService}, unchanged) served by a
    L{WebSocketSite} with the daemon's factory, which is the one-line change
    C{tap.py} needs: the demo page goes to HTTP, C{/echo} upgrades through
    the front door and is a client of the daemon's factory.
    """
    from tests.test_tap import parse, siteOf
    from txclws.tap import makeService

    service = makeService(parse("--port", "tcp:0"))
    root = siteOf(service).resource
    (factory,) = {
        child.factory
        for child in service
        if isinstance(getattr(child, "factory", None), WebSocketFactory)
    }
    clock = MemoryReactorClock()
    factory.reactor = clock
    site = WebSocketSite(root, factory, reactor=clock)
    page = rawRequest(site, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").value()
    assert page.startswith(b"HTTP/1.1 200 OK\r\n")
    client = InMemoryServer(site, clock=clock).connect(  # type: ignore[arg-type]
        "/echo", origin="http://localhost"
    )
    client.sendText("daemon")
    assert client.readMessages() == ["daemon"]
    assert len(factory.clients) == 1
