# -*- test-case-name: tests.test_h2 -*-
"""
One HTTP/2 connection (RFC 9113) on the C{h2} library: WebSockets as
extended CONNECT streams (RFC 8441) and C{twisted.web} pages, multiplexed.

The front door (L{txclws._protocol.WebSocketServerProtocol}) reads the
connection preface's first line like any request head, within the
factory's C{handshakeTimeout} and C{maxHeadSize}, and hands a connection
that negotiated C{h2} by ALPN (or, with C{h2c}, a cleartext one that opens
with the preface) to L{HTTP2Connection}.

Each extended CONNECT is decided by the same acceptance as an HTTP/1.1
upgrade (L{txclws._core.accept.acceptExtendedConnect}), and served by a
plain L{WebSocketSession} over a L{WebSocketStream}; each other request
goes to the site's C{requestFactory} over a L{PageStream}.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    PingReceived,
    PriorityUpdated,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    UnknownFrameReceived,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
)
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws._core.accept import MAX_HEADERS, Refused, acceptExtendedConnect
from txclws._core.connect import checkExtendedConnect, isExtendedConnect
from txclws._core.errors import HandshakeError
from txclws._h2.limits import Flood, FloodCounter, HTTP2Limits
from txclws._h2.pages import PageStream
from txclws._h2.stream import OutboundStream, WebSocketStream
from txclws._session.session import WebSocketSession
from txclws._session.stream import peerOf

if TYPE_CHECKING:
    from txclws._core.accept import ServerSettings
    from txclws._core.origin import OriginCheck
    from txclws._resource import IWebSocketResource
    from txclws._session.base import SessionOwner

__all__ = ["HTTP2Connection", "HTTP2Site"]

_log = Logger()

#: h2's default window, which a connection starts with (RFC 9113 6.9.2).
_DEFAULT_WINDOW = 65535


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
class HTTP2Connection(TwistedProtocol):
    """
    One HTTP/2 connection, server side.

    @ivar streams: the open streams by id: L{WebSocketStream}s and
        L{PageStream}s (and refusals still being sent).
    @ivar streamsOpened: how many requests this connection has carried.
    @ivar websocketsOpened: how many of them were WebSockets (for logs,
        tests and the curious).
    @ivar negotiatedProtocol: C{b"h2"} over TLS, C{b"h2c"} in cleartext.
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
        self._h2 = H2Connection(
            H2Configuration(client_side=False, header_encoding=None)
        )
        self._dispatching = False
        self._transportPaused = False
        self._closing = False
        self._idleTimer: IDelayedCall | None = None
        self._lingering: dict[int, IDelayedCall] = {}

    # -- the connection ----------------------------------------------------

    def connectionMade(self) -> None:
        """
        Send our SETTINGS (RFC 8441 section 3: C{ENABLE_CONNECT_PROTOCOL}),
        open the connection's receive window, and watch the transport's
        write buffer.
        """
        transport = self.transport
        assert transport is not None
        self.host, self.port = peerOf(transport)
        self.isTLS = ISSLTransport.providedBy(transport)
        self.negotiatedProtocol = b"h2" if self.isTLS else b"h2c"
        limits = self._limits
        maxHead = self._site.wsFactory.maxHeadSize
        h2 = self._h2
        h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
                SettingCodes.MAX_CONCURRENT_STREAMS: limits.maxConcurrentStreams,
                SettingCodes.INITIAL_WINDOW_SIZE: limits.streamWindow,
                SettingCodes.MAX_HEADER_LIST_SIZE: maxHead,
            },
        )
        # RFC 9113 10.5.1: the header list is bounded by what we advertise.
        h2.decoder.max_header_list_size = maxHead
        h2.initiate_connection()
        if limits.connectionWindow > _DEFAULT_WINDOW:
            h2.increment_flow_control_window(limits.connectionWindow - _DEFAULT_WINDOW)
        cast(IConsumer, transport).registerProducer(self, True)
        self._flushTransport()
        # A connection that sends no request: the head's timeout bounds it.
        self._startIdleTimer(self._site.wsFactory.handshakeTimeout)
        _log.info(
            "http2 {peer} {protocol}",
            peer=self._peer(),
            protocol=self.negotiatedProtocol.decode(),
        )

    def dataReceived(self, data: bytes) -> None:
        """
        Feed the peer's bytes to C{h2}, and act on its events.
        """
        if self._closing:
            return
        try:
            events = self._h2.receive_data(data)
        except ProtocolError as error:
            code = getattr(error, "error_code", ErrorCodes.PROTOCOL_ERROR)
            self._goAway(code, f"protocol error: {error}")
            return
        self._dispatching = True
        try:
            for event in events:
                handler = self._handlers.get(type(event))
                if handler is not None:
                    handler(self, event)
                if self._closing:
                    return
        finally:
            self._dispatching = False
        self._flushTransport()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Every stream is gone with the connection.
        """
        self._closing = True
        self._cancelIdleTimer()
        for timer in self._lingering.values():
            if timer.active():
                timer.cancel()
        self._lingering.clear()
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.streamClosed()
        _log.info(
            "http2 {peer} closed: {streams} streams, {websockets} websockets",
            peer=self._peer(),
            streams=self.streamsOpened,
            websockets=self.websocketsOpened,
        )

    def goAway(self, code: int = ErrorCodes.NO_ERROR) -> None:
        """
        Send C{GOAWAY} and close once it has gone (what a server does once
        its WebSockets are closed on shutdown).
        """
        self._goAway(code, "going away")

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
        The transport is going; L{connectionLost} follows.
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

    # -- events ------------------------------------------------------------

    def _requestReceived(self, event: RequestReceived) -> None:
        streamID = event.stream_id
        assert event.headers is not None and streamID is not None
        self._cancelIdleTimer()
        self.streamsOpened += 1
        raw = cast("list[tuple[bytes, bytes]]", list(event.headers))
        fields = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
        if isExtendedConnect(fields):
            self._openWebSocket(streamID, fields)
        elif any(n == ":method" and v == "CONNECT" for n, v in fields):
            self._refuse(streamID, Refused(405, "CONNECT tunnels are not served"))
        else:
            self.streams[streamID] = PageStream(self, streamID, self._site, raw)

    def _dataReceived(self, event: DataReceived) -> None:
        streamID = event.stream_id
        assert streamID is not None and event.data is not None
        size = event.flow_controlled_length or 0
        if not event.data and not event.stream_ended and self._flooded(Flood.EMPTY):
            return
        stream = self.streams.get(streamID)
        if stream is None:
            # A stream we refused or reset: give the window back.
            self._h2.acknowledge_received_data(size, streamID)
            return
        stream.dataReceived(event.data, size)

    def _streamEnded(self, event: StreamEnded) -> None:
        assert event.stream_id is not None
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.peerEnded()
        self._forgetIfClosed(event.stream_id)

    def _streamReset(self, event: StreamReset) -> None:
        assert event.stream_id is not None
        stream = self._forget(event.stream_id)
        if stream is not None:
            stream.streamClosed()
        # CVE-2023-44487: opening streams and resetting them at once costs
        # the client nothing and the server a request each.
        if event.remote_reset:
            self._flooded(Flood.RESET)

    def _windowUpdated(self, event: WindowUpdated) -> None:
        if event.stream_id:
            self._flushStreams([event.stream_id])
        else:
            self._flushStreams(list(self.streams))

    def _settingsChanged(self, event: RemoteSettingsChanged) -> None:
        if self._flooded(Flood.SETTINGS):
            return
        if SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
            self._flushStreams(list(self.streams))

    def _pingReceived(self, event: PingReceived) -> None:
        self._flooded(Flood.PING)

    def _emptyFrame(self, event: Event) -> None:
        self._flooded(Flood.EMPTY)

    def _terminated(self, event: ConnectionTerminated) -> None:
        # The peer's GOAWAY: it opens no more streams; we close once what
        # we owe has gone.
        self._closing = True
        self._flushTransport(force=True)
        assert self.transport is not None
        self.transport.loseConnection()

    _handlers: dict[type, Callable[[HTTP2Connection, Any], None]] = {
        RequestReceived: _requestReceived,
        DataReceived: _dataReceived,
        StreamEnded: _streamEnded,
        StreamReset: _streamReset,
        WindowUpdated: _windowUpdated,
        RemoteSettingsChanged: _settingsChanged,
        PingReceived: _pingReceived,
        PriorityUpdated: _emptyFrame,
        UnknownFrameReceived: _emptyFrame,
        ConnectionTerminated: _terminated,
    }

    # -- WebSockets (RFC 8441) ---------------------------------------------

    def _openWebSocket(self, streamID: int, fields: Sequence[tuple[str, str]]) -> None:
        try:
            handshake = checkExtendedConnect(fields, MAX_HEADERS)
        except HandshakeError as error:
            self._refuse(streamID, Refused.fromError(error))
            return
        route = self._site.route(handshake.request.path)
        factory = route[2] if route is not None else self._site.wsFactory
        session = WebSocketSession()
        session.host, session.port = self.host, self.port
        session.describeRequest(handshake)

        def choose(resource: IWebSocketResource, offered: Sequence[str]) -> str | None:
            try:
                return resource.selectSubprotocol(session, offered)
            except Exception:
                _log.failure(
                    "resource {resource} failed in selectSubprotocol for {peer}",
                    resource=handshake.request.path,
                    peer=self._peer(),
                )
                raise HandshakeError(500, "internal error") from None

        verdict = acceptExtendedConnect(
            handshake,
            factory.settings,
            lambda path: None if route is None else (route[0], route[1]),
            len(factory.clients),
            choose,
        )
        if isinstance(verdict, Refused):
            self._refuse(streamID, verdict)
            return
        stream = WebSocketStream(self, streamID, session)
        self.streams[streamID] = stream
        self.websocketsOpened += 1
        headers = [(b":status", b"200")] + [
            (n.encode("latin-1"), v.encode("latin-1")) for n, v in verdict.headers
        ]
        self._h2.send_headers(streamID, headers)
        session.openSession(cast("SessionOwner", factory), stream, verdict.accepted)

    def _refuse(self, streamID: int, refusal: Refused) -> None:
        _log.info(
            "refused {peer} stream {stream}: {status} {reason}",
            peer=self._peer(),
            stream=streamID,
            status=refusal.status,
            reason=refusal.reason,
        )
        body = (refusal.reason + "\n").encode("utf-8")
        headers = [
            (b":status", str(refusal.status).encode("ascii")),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
        ] + [
            (n.lower().encode("latin-1"), v.encode("latin-1"))
            for n, v in refusal.headers
        ]
        self._h2.send_headers(streamID, headers)
        stream = self.streams[streamID] = OutboundStream(self, streamID)
        stream.write(body)
        stream.endStream()

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
