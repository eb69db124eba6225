# -*- test-case-name: tests.test_h2,tests.test_h2ops,tests.test_h2perf -*-
"""
One HTTP/2 connection (RFC 9113) on the C{h2} library: WebSockets as
extended CONNECT streams (RFC 8441) and C{twisted.web} pages, multiplexed.

The front door (L{txclws._protocol.WebSocketServerProtocol}) reads the
connection preface's first line like any request head, within the
factory's C{handshakeTimeout} and C{maxHeadSize}, and hands a connection
that negotiated C{h2} by ALPN (or, with C{h2c}, a cleartext one that opens
with the preface) to L{HTTP2Connection}.

Each extended CONNECT is admitted as an HTTP/1.1 upgrade is (the client's
address behind trusted proxies, the handshake cap, refusals counted:
L{txclws._admission}), decided by the same acceptance
(L{txclws._core.accept.acceptExtendedConnect}), and served by a
plain L{WebSocketSession} over a L{WebSocketStream}; each other request
goes to the site's C{requestFactory} over a L{PageStream}.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

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
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings
from twisted.internet.interfaces import IConsumer, ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from txclws._admission import admitPeer, countRefusal
from txclws._core.accept import MAX_HEADERS, Refused, acceptExtendedConnect
from txclws._core.connect import checkExtendedConnect, isExtendedConnect
from txclws._core.errors import HandshakeError
from txclws._h2.limits import Flood
from txclws._h2.multiplex import HTTP2Site, StreamMultiplexer
from txclws._h2.pages import PageStream
from txclws._h2.stream import OutboundStream, WebSocketStream
from txclws._session.session import WebSocketSession
from txclws._session.stream import peerOf

if TYPE_CHECKING:
    from txclws._resource import IWebSocketResource
    from txclws._session.base import SessionOwner

__all__ = ["HTTP2Connection", "HTTP2Site"]

_log = Logger()

#: h2's default window, which a connection starts with (RFC 9113 6.9.2).
_DEFAULT_WINDOW = 65535


class HTTP2Connection(StreamMultiplexer):
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
                SettingCodes.MAX_FRAME_SIZE: limits.maxFrameSize,
                SettingCodes.MAX_HEADER_LIST_SIZE: maxHead,
            },
        )
        # RFC 9113 10.5.1: the header list is bounded by what we advertise.
        h2.decoder.max_header_list_size = maxHead
        # The frame size we advertise, accepted at once: h2 applies it when
        # the peer acknowledges our SETTINGS, but checks the frames that
        # arrive in the same read as that acknowledgement against the old
        # value (a GOAWAY for a peer that did nothing wrong).
        h2.max_inbound_frame_size = limits.maxFrameSize
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
        overlong = self._frameSizes.feed(data)
        if overlong is not None:
            self._goAway(ErrorCodes.FRAME_SIZE_ERROR, f"frame of {overlong} bytes")
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
            self._refuseWebSocket(
                streamID, Refused.fromError(error), self._site.wsFactory
            )
            return
        route = self._site.route(handshake.request.path)
        factory = route[2] if route is not None else self._site.wsFactory
        session = WebSocketSession()
        session.host, session.port = self.host, self.port
        session.describeRequest(handshake)
        # The client's address (behind trusted proxies) and the handshake
        # cap, decided where the front door's are (issue 17).
        capped = admitPeer(factory, session, handshake)
        if capped is not None:
            self._refuseWebSocket(streamID, capped, factory, session._peer())
            return

        def choose(resource: IWebSocketResource, offered: Sequence[str]) -> str | None:
            try:
                return resource.selectSubprotocol(session, offered)
            except Exception:
                _log.failure(
                    "resource {resource} failed in selectSubprotocol for {peer}",
                    resource=handshake.request.path,
                    peer=session._peer(),
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
            self._refuseWebSocket(streamID, verdict, factory, session._peer())
            return
        stream = WebSocketStream(self, streamID, session)
        self.streams[streamID] = stream
        self.websocketsOpened += 1
        headers = [(b":status", b"200")] + [
            (n.encode("latin-1"), v.encode("latin-1")) for n, v in verdict.headers
        ]
        self._h2.send_headers(streamID, headers)
        session.openSession(cast("SessionOwner", factory), stream, verdict.accepted)

    def _refuseWebSocket(
        self, streamID: int, refusal: Refused, factory: object, peer: str | None = None
    ) -> None:
        """
        Refuse a WebSocket's CONNECT on its stream alone, counted in the
        metrics of C{factory} as on every entry point.

        @param peer: the client's address in the log line, once known
            (behind trusted proxies); the connection's by default.
        """
        countRefusal(factory, refusal)
        self._refuse(streamID, refusal, peer)

    def _refuse(self, streamID: int, refusal: Refused, peer: str | None = None) -> None:
        _log.info(
            "refused {peer} stream {stream}: {status} {reason}",
            peer=peer or self._peer(),
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
