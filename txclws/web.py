# -*- test-case-name: tests.test_web -*-
"""
Serving txclws resources inside a C{twisted.web} site, on the same port as
its pages.

    root = Resource()
    root.putChild(b"", File("index.html"))
    root.putChild(b"echo", WebSocketUpgradeResource(EchoResource(), anyOrigin))
    reactor.listenTCP(8080, Site(root))

A request for the mounted path is checked as an opening handshake; a good
one is handed, with its connection, to a L{WebSocketServerProtocol}; a plain
HTTP request gets C{426 Upgrade Required}, any other refusal its usual status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from txclws._core.errors import HandshakeError
from txclws._core.handshake import (
    _REASONS,
    HandshakeRequest,
    RequestHeaders,
    checkUpgrade,
)
from txclws._core.origin import OriginCheck
from txclws._factory import ResourceRegistry, WebSocketFactory
from txclws._resource import IWebSocketResource

if TYPE_CHECKING:
    from txclws._protocol import WebSocketServerProtocol

__all__ = ["WebSocketUpgradeResource", "handshakeRequestFrom", "mountWebSocket"]

_log = Logger()


class WebSocketUpgradeResource(Resource):
    """
    A C{twisted.web} resource that upgrades requests to WebSocket and serves
    one txclws resource over them.

    @ivar resource: the L{IWebSocketResource} served.
    @ivar originCheck: its origin policy.
    @ivar factory: the L{WebSocketFactory} whose limits (and client count)
        apply.
    """

    isLeaf = True

    def __init__(
        self,
        resource: IWebSocketResource,
        originCheck: OriginCheck,
        factory: WebSocketFactory | None = None,
    ) -> None:
        """
        @param factory: the limits to apply; a factory with the defaults and
            an empty registry when L{None}.  Several upgrade resources may
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

    def render(self, request: Request) -> bytes | int:
        """
        Check the upgrade and hand the connection over, or refuse it.
        """
        try:
            if not isinstance(request.channel, HTTPChannel):
                # RFC 8441 (WebSocket over HTTP/2) is not supported.
                raise HandshakeError(400, "WebSocket needs an HTTP/1.1 connection")
            handshake = checkUpgrade(
                handshakeRequestFrom(request), self.factory.protocol76Support
            )
        except HandshakeError as error:
            return _refuse(request, error)
        protocol = cast(
            "WebSocketServerProtocol",
            self.factory.buildProtocol(request.getClientAddress()),
        )
        leftover = _takeOver(request.channel, protocol)
        protocol.acceptUpgrade(handshake, self.resource, self.originCheck, leftover)
        return NOT_DONE_YET


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
    protocol.makeConnection(transport)  # type: ignore[no-untyped-call]  # mypy#16651
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
    if not path.startswith("/") or "?" in path or "#" in path:
        raise ValueError(f"resource path must be an absolute path: {path!r}")
    *parents, last = path[1:].encode("utf-8").split(b"/")
    parent = root
    for segment in parents:
        child = parent.children.get(segment)
        if child is None:
            child = Resource()
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


def _refuse(request: Request, error: HandshakeError) -> bytes:
    peer = request.getClientAddress()
    _log.info(
        "refused {peer}: {status} {reason}",
        peer=f"{getattr(peer, 'host', peer)}:{getattr(peer, 'port', 0)}",
        status=error.status,
        reason=error.reason,
    )
    # twisted.web knows no phrase for 426 or 431.
    phrase = _REASONS.get(error.status)
    request.setResponseCode(error.status, phrase.encode() if phrase else None)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    for name, value in error.headers:
        request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
    return (error.reason + "\n").encode("utf-8")
