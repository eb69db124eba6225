# -*- test-case-name: tests.test_web -*-
"""
Serving txclws resources inside a C{twisted.web} site, on the same port as
its pages::

    root = Resource()
    root.putChild(b"", File("index.html"))
    mountWebSocket(root, "/echo", EchoResource(), anyOrigin, factory)
    reactor.listenTCP(8080, WebSocketSite(root, factory))

L{WebSocketSite} runs the txclws front door first: it reads every request
head with the factory's limits and timers, accepts WebSocket upgrades for
the paths it routes (the factory's registry, and the
L{WebSocketUpgradeResource}s of the site's tree, by exact path) through
L{txclws._core.accept}, and hands every other request, with the bytes read
so far, to the site's own C{HTTPChannel}.  A plain C{Site} also works,
through L{WebSocketUpgradeResource.render} (the same acceptance, exact
routing), but twisted.web then reads the head, without the factory's
C{handshakeTimeout}; its size is checked after the fact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast
from weakref import WeakSet

from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IProtocol,
    IPushProducer,
    ISSLTransport,
    ITransport,
)
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from txclws._core.accept import (
    Refused,
    checkHeadSize,
    checkRequest,
    checkResourcePath,
)
from txclws._core.errors import HandshakeError
from txclws._core.origin import OriginCheck
from txclws._core.request import HandshakeRequest, RequestHeaders
from txclws._core.responses import reasonPhrase
from txclws._factory import WebSocketFactory
from txclws._registry import ResourceRegistry
from txclws._resource import IWebSocketResource

if TYPE_CHECKING:
    from txclws._frontdoor import Route
    from txclws._protocol import WebSocketServerProtocol

__all__ = [
    "WebSocketSite",
    "WebSocketUpgradeResource",
    "handshakeRequestFrom",
    "http2Available",
    "mountWebSocket",
]

_log = Logger()


class WebSocketSite(Site):
    """
    A C{twisted.web} site whose connections go through the txclws front
    door first (see the module docstring).

    @ivar wsFactory: the L{WebSocketFactory} whose head limits and timers
        apply to every request, and whose registry is routed first.
    @since: 0.2.0
    """

    def __init__(
        self,
        root: Resource,
        factory: WebSocketFactory | None = None,
        *,
        http2: bool = True,
        h2c: bool = False,
        **siteKwargs: Any,
    ) -> None:
        """
        @param factory: the limits and resources; a factory with the
            defaults and an empty registry when C{None}.
        @param http2: offer HTTP/2 by ALPN on TLS ports (pages, and
            WebSockets by RFC 8441), when the C{h2} library is installed
            (the extra C{txclws[http2]}).
        @param h2c: serve cleartext HTTP/2 with prior knowledge (RFC 9113
            3.3) on plain ports, for proxies and tests.
        @param siteKwargs: passed to C{Site} (e.g. C{logPath}, C{timeout}).
        """
        super().__init__(root, **siteKwargs)  # type: ignore[no-untyped-call]  # mypy#16653
        self.wsFactory = (
            factory if factory is not None else WebSocketFactory(ResourceRegistry())
        )
        self.http2 = http2 and http2Available()
        self.h2c = h2c and http2Available()
        #: The HTTP/2 connections open now (see L{goAway}).
        self.http2Connections: WeakSet[Any] = WeakSet()

    def buildProtocol(self, addr: IAddress) -> WebSocketServerProtocol | None:  # type: ignore[override]
        """
        The front door, with this site's HTTP channel as its fallback.
        """
        protocol = cast("WebSocketServerProtocol", self.wsFactory.buildProtocol(addr))
        protocol.httpFallback = lambda: cast(IProtocol, Site.buildProtocol(self, addr))
        protocol.routeLookup = self.route
        if self.http2 or self.h2c:
            protocol.http2Takeover = self._http2Takeover
        return protocol

    def _http2Takeover(self, transport: ITransport) -> IProtocol | None:
        """
        The HTTP/2 connection for C{transport}, if it negotiated C{h2} by
        ALPN, or is cleartext and C{h2c} is on; else C{None}.
        """
        if ISSLTransport.providedBy(transport):
            serve = self.http2 and (
                getattr(transport, "negotiatedProtocol", None) == b"h2"
            )
        else:
            serve = self.h2c
        if not serve:
            return None
        from txclws._h2.connection import HTTP2Connection

        connection = HTTP2Connection(self)
        self.http2Connections.add(connection)
        return connection

    def goAway(self) -> None:
        """
        Send C{GOAWAY} on every HTTP/2 connection, and close each once it
        has gone: what a server does on shutdown, once its WebSockets are
        closed (C{closeAllClients}).
        """
        for connection in list(self.http2Connections):
            connection.goAway()

    def route(self, path: str) -> Route | None:
        """
        The route of C{path}: the factory's registry, else the
        L{WebSocketUpgradeResource} at exactly that path in the site's tree
        (static children only), else C{None}.
        """
        factory = self.wsFactory
        entry = factory.registry.lookup(path)
        if entry is not None:
            return entry[0], entry[1], factory
        node: Resource = self.resource
        for segment in path[1:].encode("latin-1").split(b"/"):
            child = node.children.get(segment)
            if child is None:
                return None
            node = child
        if isinstance(node, WebSocketUpgradeResource):
            return node.resource, node.originCheck, node.factory
        return None

    def acceptableProtocols(self) -> list[bytes]:
        """
        The ALPN protocols offered (RFC 7301): C{h2} then C{http/1.1} when
        HTTP/2 is on, else C{http/1.1} only.
        """
        return [b"h2", b"http/1.1"] if self.http2 else [b"http/1.1"]


def http2Available() -> bool:
    """
    Whether the C{h2} library (the extra C{txclws[http2]}) is installed.

    @since: 0.3.0
    """
    try:
        import h2.connection  # noqa: F401
    except ImportError:
        return False
    return True


class WebSocketUpgradeResource(Resource):
    """
    A C{twisted.web} resource that upgrades requests to WebSocket and serves
    one txclws resource over them.

    @ivar resource: the L{IWebSocketResource} served.
    @ivar originCheck: its origin policy.
    @ivar factory: the L{WebSocketFactory} whose limits (and client count)
        apply.
    """

    # Not a leaf: a resource mounted below it (C{/rooms/main} under
    # C{/rooms}) is found by twisted.web's traversal; any other path below
    # it is 404 (see getChild), as on the direct path.
    isLeaf = False

    def __init__(
        self,
        resource: IWebSocketResource,
        originCheck: OriginCheck,
        factory: WebSocketFactory | None = None,
    ) -> None:
        """
        @param factory: the limits to apply; a factory with the defaults and
            an empty registry when C{None}.  Several upgrade resources may
            share one, and so share C{maxClients}.
        """
        super().__init__()  # type: ignore[no-untyped-call]  # mypy#16653
        if not IWebSocketResource.providedBy(resource):
            raise TypeError(f"{resource!r} does not provide IWebSocketResource")
        self.resource = resource
        self.originCheck = originCheck
        self.factory = (
            factory if factory is not None else WebSocketFactory(ResourceRegistry())
        )

    def getChild(self, path: bytes, request: Request) -> Resource:
        """
        Nothing is served below an upgrade resource but what is mounted
        there: routing is exact.
        """
        return _MountNode()

    def render(self, request: Request) -> bytes | int:
        """
        Check the upgrade and hand the connection over, or refuse it.
        """
        try:
            if not isinstance(request.channel, HTTPChannel):
                # RFC 8441 (WebSocket over HTTP/2) is not supported.
                raise HandshakeError(400, "WebSocket needs an HTTP/1.1 connection")
            handshakeRequest = handshakeRequestFrom(request)
            if request.postpath:
                # Exact routing, as the direct path: not a prefix.
                raise HandshakeError(
                    404, f"no WebSocket resource at {handshakeRequest.path}"
                )
            checkHeadSize(
                _headSize(request),
                len(handshakeRequest.headers.raw),
                self.factory.maxHeadSize,
            )
        except HandshakeError as error:
            return _refuse(request, Refused.fromError(error))
        checked = checkRequest(handshakeRequest, self.factory.settings)
        if isinstance(checked, Refused):
            return _refuse(request, checked)
        protocol = cast(
            "WebSocketServerProtocol",
            self.factory.buildProtocol(request.getClientAddress()),
        )
        leftover = _takeOver(request.channel, protocol)
        entry = (self.resource, self.originCheck, self.factory)
        protocol.takeOver(checked, leftover, lambda path: entry)
        return NOT_DONE_YET


class _MountNode(Resource):
    """
    A resource L{mountWebSocket} made on the way to an upgrade resource:
    it serves nothing, and answers 404 as the direct path does.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # mypy#16653

    def getChild(self, path: bytes, request: Request) -> Resource:
        """
        Nothing is below it either.
        """
        return _MountNode()

    def render(self, request: Request) -> bytes:
        """
        404.
        """
        path = request.path.decode("latin-1")
        return _refuse(request, Refused(404, f"no WebSocket resource at {path}"))


def _headSize(request: Request) -> int:
    """
    The size of C{request}'s head as sent, near enough: its request line
    and header lines, with their line ends.
    """
    size = len(request.method) + len(request.uri) + len(request.clientproto) + 4
    for name, values in request.requestHeaders.getAllRawHeaders():
        size += sum(len(name) + len(value) + 4 for value in values)
    return size


def _takeOver(channel: HTTPChannel, protocol: WebSocketServerProtocol) -> bytes:
    """
    Hand C{channel}'s connection to C{protocol}: the HTTP channel no longer
    reads or writes it, and stops being its transport's producer.

    @return: the bytes the client sent after the request head, which the
        channel had read but not parsed: the start of the WebSocket stream.
    """
    transport = channel.transport
    assert transport is not None
    # The channel keeps bytes that follow the request in two places: what
    # came in the same read as the head is still in LineReceiver's buffer
    # (render runs from inside its loop); later reads were queued in
    # _dataBuffer.  Take both, and empty them so that loop ends.
    leftover = b"".join(channel._dataBuffer) + channel._buffer
    channel._dataBuffer = []
    channel._buffer = b""
    channel.setTimeout(None)
    # The channel's transport is typed ITransport, but the stream transports
    # twisted.web runs on (TCP, TLS, UNIX) are also consumers and producers.
    cast(IConsumer, transport).unregisterProducer()
    channel.dataReceived = protocol.dataReceived  # type: ignore[method-assign]
    channel.connectionLost = protocol.connectionLost  # type: ignore[method-assign]
    # The channel pauses the transport while a request is pending and
    # pipelined bytes pile up; resume it before the WebSocket protocol
    # applies its own back-pressure.
    cast(IPushProducer, transport).resumeProducing()
    Protocol.makeConnection(protocol, transport)
    return leftover


def mountWebSocket(
    root: Resource,
    path: str,
    resource: IWebSocketResource,
    originCheck: OriginCheck,
    factory: WebSocketFactory | None = None,
) -> WebSocketUpgradeResource:
    """
    Serve C{resource} at C{path} under C{root}, through a
    L{WebSocketUpgradeResource}, making the resources on the way as needed.

    @param path: an absolute path, e.g. C{"/chat"} or C{"/rooms/main"}.
    @param factory: as for L{WebSocketUpgradeResource}.
    @return: the upgrade resource mounted.
    @raise ValueError: C{path} is not an absolute path.
    @since: 0.1.0
    """
    checkResourcePath(path)
    *parents, last = path[1:].encode("utf-8").split(b"/")
    parent = root
    for segment in parents:
        child = parent.children.get(segment)
        if child is None:
            child = _MountNode()
            parent.putChild(segment, child)
        parent = child
    upgrade = WebSocketUpgradeResource(resource, originCheck, factory)
    parent.putChild(last, upgrade)
    return upgrade


def handshakeRequestFrom(request: Request) -> HandshakeRequest:
    """
    The L{HandshakeRequest} that a C{twisted.web} request carries.
    """
    target = request.uri.decode("latin-1")
    path, sep, query = target.partition("?")
    major, _, minor = (
        request.clientproto.decode("ascii").partition("/")[2].partition(".")
    )
    raw = tuple(
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, values in request.requestHeaders.getAllRawHeaders()
        for value in values
    )
    return HandshakeRequest(
        method=request.method.decode("ascii"),
        target=target,
        path=path,
        query=query if sep else None,
        httpVersion=(int(major or 1), int(minor or 0)),
        headers=RequestHeaders(raw),
    )


def _refuse(request: Request, refusal: Refused) -> bytes:
    peer = request.getClientAddress()
    _log.info(
        "refused {peer}: {status} {reason}",
        peer=f"{getattr(peer, 'host', peer)}:{getattr(peer, 'port', 0)}",
        status=refusal.status,
        reason=refusal.reason,
    )
    # twisted.web knows no phrase for 426 or 431.
    phrase = reasonPhrase(refusal.status)
    request.setResponseCode(refusal.status, phrase.encode() if phrase else None)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    for name, value in refusal.headers:
        request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
    return (refusal.reason + "\n").encode("utf-8")
