# -*- test-case-name: tests.test_h2 -*-
"""
The stream side of an HTTP/2 connection (RFC 9113), under
L{txclws._h2.connection.HTTP2Connection}: what its streams call (send
window, DATA, headers, resets, acknowledgements: L{StreamConnection}), the
transport's pause and resume of our writes, and the bookkeeping of streams,
floods and timers.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Protocol, cast

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError, StreamClosedError
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.logger import Logger
from zope.interface import implementer

from txclws._h2.limits import Flood, FloodCounter, FrameSizeGuard, HTTP2Limits
from txclws._h2.stream import OutboundStream

if TYPE_CHECKING:
    from txclws._core.accept import ServerSettings
    from txclws._core.origin import OriginCheck
    from txclws._resource import IWebSocketResource

#: The connection's log lines keep the namespace they have always had.
_log = Logger(namespace="txclws._h2.connection")


class HTTP2Owner(Protocol):
    """
    What a stream's session and its acceptance need from the factory that
    serves its route (a L{txclws._factory.WebSocketFactory}).
    """

    reactor: IReactorTime
    maxHeadSize: int
    handshakeTimeout: float
    closeTimeout: float

    @property
    def clients(self) -> Collection[object]: ...

    @property
    def settings(self) -> ServerSettings: ...


class HTTP2Site(Protocol):
    """
    What the connection needs from its site (a L{txclws.web.WebSocketSite}):
    the default factory, the route of a path, and what pages need.
    """

    wsFactory: Any

    def route(self, path: str) -> tuple[IWebSocketResource, OriginCheck, Any] | None:
        """
        The resource, origin policy and factory at C{path}, or C{None}.
        """

    def requestFactory(self, channel: Any, queued: bool) -> Any: ...

    def log(self, request: Any) -> None: ...


@implementer(IPushProducer)
class StreamMultiplexer(TwistedProtocol):
    """
    The streams of one HTTP/2 connection and the writes they make; see
    L{txclws._h2.connection.HTTP2Connection} for the connection itself.

    @ivar streams: the open streams by id: L{txclws._h2.stream.WebSocketStream}s
        and L{txclws._h2.pages.PageStream}s (and refusals still being sent).
    @ivar streamsOpened: how many requests this connection has carried.
    @ivar websocketsOpened: how many of them were WebSockets.
    @ivar host: the peer's address; C{port} its port.
    @ivar isTLS: whether the connection is TLS.
    """

    host = ""
    port = 0
    isTLS = False
    negotiatedProtocol = b"h2"

    def __init__(self, site: HTTP2Site, limits: HTTP2Limits | None = None) -> None:
        self._site = site
        self._limits = limits if limits is not None else HTTP2Limits()
        factory = site.wsFactory
        self.reactor: IReactorTime = factory.reactor
        self.streams: dict[int, OutboundStream] = {}
        self.streamsOpened = self.websocketsOpened = 0
        self._floods = FloodCounter(self._limits)
        self._frameSizes = FrameSizeGuard(self._limits.maxFrameSize)
        self._h2 = H2Connection(
            H2Configuration(client_side=False, header_encoding=None)
        )
        self._dispatching = False
        self._transportPaused = False
        self._closing = False
        self._idleTimer: IDelayedCall | None = None
        self._lingering: dict[int, IDelayedCall] = {}

    # -- IPushProducer: the transport's verdict on our writes --------------

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: stop sending DATA (the streams
        buffer it, and pause their sessions), and stop reading, so that
        the peer's frames cannot make us write without bound.
        """
        self._transportPaused = True
        if self.transport is not None:
            cast(IPushProducer, self.transport).pauseProducing()

    def resumeProducing(self) -> None:
        """
        The transport's buffer has emptied.
        """
        self._transportPaused = False
        if self.transport is not None and not self._closing:
            cast(IPushProducer, self.transport).resumeProducing()
        self._flushStreams(list(self.streams))

    def stopProducing(self) -> None:
        """
        The transport is going;
        L{connectionLost <txclws._h2.connection.HTTP2Connection.connectionLost>}
        follows.
        """

    # -- StreamConnection: what the streams call ---------------------------

    def sendWindow(self, streamID: int) -> int:
        """
        See L{txclws._h2.stream.StreamConnection.sendWindow}.
        """
        if self._transportPaused or self._closing:
            return 0
        try:
            window = self._h2.local_flow_control_window(streamID)
        except StreamClosedError:
            return 0
        return min(window, self._h2.max_outbound_frame_size)

    def sendData(self, streamID: int, data: bytes, end: bool) -> None:
        """
        See L{txclws._h2.stream.StreamConnection.sendData}.
        """
        self._h2.send_data(streamID, data, end_stream=end)
        self._flushTransport()

    def sendHeaders(
        self, streamID: int, headers: list[tuple[bytes, bytes]], end: bool
    ) -> None:
        """
        Send a response's header fields on C{streamID}.
        """
        if self._closing:
            return
        self._h2.send_headers(streamID, headers, end_stream=end)
        if end:
            self.streamDone(streamID)
        self._flushTransport()

    def resetStream(self, streamID: int, errorCode: int) -> None:
        """
        See L{txclws._h2.stream.StreamConnection.resetStream}.
        """
        self._forget(streamID)
        if self._closing:
            return
        try:
            self._h2.reset_stream(streamID, errorCode)
        except (ProtocolError, StreamClosedError):
            return  # already closed: nothing to reset
        self._flushTransport()

    def acknowledge(self, streamID: int, size: int) -> None:
        """
        See L{txclws._h2.stream.StreamConnection.acknowledge}.
        """
        if size and not self._closing:
            self._h2.acknowledge_received_data(size, streamID)
            self._flushTransport()

    def streamDone(self, streamID: int) -> None:
        """
        We ended C{streamID}: once the peer has too, it is closed; if the
        peer does not end it within the close timeout, reset it (RFC 9113
        8.1 lets a server stop a request it has answered with NO_ERROR).
        """
        stream = self._h2.streams.get(streamID)
        if stream is None or stream.closed:
            self._forget(streamID)
            return
        if streamID not in self._lingering:
            self._lingering[streamID] = self.reactor.callLater(
                self._site.wsFactory.closeTimeout, self._lingered, streamID
            )

    def getPeer(self) -> IAddress:
        """
        The transport's peer.
        """
        assert self.transport is not None
        return self.transport.getPeer()

    def getHost(self) -> IAddress:
        """
        The transport's local address.
        """
        assert self.transport is not None
        return self.transport.getHost()

    # -- helpers -----------------------------------------------------------

    def _flooded(self, kind: Flood) -> bool:
        if not self._floods.count(kind, self.reactor.seconds()):
            return False
        _log.info("http2 {peer}: {kind} flood", peer=self._peer(), kind=kind.value)
        self._goAway(ErrorCodes.ENHANCE_YOUR_CALM, f"{kind.value} flood")
        return True

    def _goAway(self, code: int, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        try:
            self._h2.close_connection(error_code=code)
        except ProtocolError:
            pass  # h2 already closed it, with its own GOAWAY
        self._flushTransport(force=True)
        assert self.transport is not None
        _log.info("http2 {peer} goaway: {reason}", peer=self._peer(), reason=reason)
        self.transport.loseConnection()

    def _flushStreams(self, streamIDs: list[int]) -> None:
        for streamID in streamIDs:
            stream = self.streams.get(streamID)
            if stream is not None:
                stream.flush()

    def _flushTransport(self, force: bool = False) -> None:
        if self._dispatching and not force:
            return  # dataReceived writes once its events are handled
        data = self._h2.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    def _forget(self, streamID: int) -> OutboundStream | None:
        timer = self._lingering.pop(streamID, None)
        if timer is not None and timer.active():
            timer.cancel()
        stream = self.streams.pop(streamID, None)
        if not self.streams and not self._closing:
            self._startIdleTimer(self._limits.idleTimeout)
        return stream

    def _forgetIfClosed(self, streamID: int) -> None:
        stream = self._h2.streams.get(streamID)
        if stream is None or stream.closed:
            self._forget(streamID)

    def _lingered(self, streamID: int) -> None:
        self._lingering.pop(streamID, None)
        self.resetStream(streamID, ErrorCodes.NO_ERROR)

    def _startIdleTimer(self, seconds: float) -> None:
        self._cancelIdleTimer()
        self._idleTimer = self.reactor.callLater(seconds, self._idleTimedOut)

    def _cancelIdleTimer(self) -> None:
        if self._idleTimer is not None and self._idleTimer.active():
            self._idleTimer.cancel()
        self._idleTimer = None

    def _idleTimedOut(self) -> None:
        self._idleTimer = None
        self._goAway(ErrorCodes.NO_ERROR, "idle")

    def _peer(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host or "unix"

    def __repr__(self) -> str:
        return f"<HTTP2Connection {self._peer()} streams={len(self.streams)}>"
