# -*- test-case-name: tests.test_protocol -*-
"""
The front door for TCP, TLS and UNIX connections: L{WebSocketServerProtocol}
reads the request head with the factory's limits and timers, has it accepted
or refused by L{txclws._core.accept}, and then serves the client as a
L{WebSocketSession} over a L{TransportStream}.

Configured with an HTTP fallback (as L{txclws.web.WebSocketSite} does), it
hands every request that is not a WebSocket upgrade for a path it can
resolve, with the bytes read so far, to a C{twisted.web} C{HTTPChannel}.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

from twisted.internet.interfaces import (
    IHandshakeListener,
    IProtocol,
    ISSLTransport,
    ITransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.tcp import Connection
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws._admission import admitPeer, countRefusal
from txclws._core.accept import (
    MAX_HEADERS,
    Refused,
    acceptHandshake,
    bodySize,
    checkRequest,
)
from txclws._core.errors import HandshakeError
from txclws._core.handshake import ClientHandshake
from txclws._core.origin import OriginCheck
from txclws._core.request import (
    HandshakeRequest,
    RequestHeadReader,
    parseRequestHead,
)
from txclws._frontdoor import FrontDoorOwner, FrontDoorState, Route
from txclws._readsize import LARGE_READ, resizeReads
from txclws._resource import IWebSocketResource
from txclws._sendnow import turnEndSender
from txclws._session.session import WebSocketSession
from txclws._session.stream import TransportStream, abortTransport, peerOf

__all__ = ["FrontDoorOwner", "FrontDoorState", "WebSocketServerProtocol"]

_log = Logger()


_S = FrontDoorState

#: The HTTP/2 connection preface's first line (RFC 9113 3.4), which the
#: head reader reads as a request head.
HTTP2_PREFACE_HEAD = b"PRI * HTTP/2.0"


def _upgrading(request: HandshakeRequest) -> bool:
    """
    Whether C{request} asks for a WebSocket upgrade: such a request for a
    path we do not route is refused (404) as on the direct path, never
    handed to HTTP, whose answer would differ (issue 11, exact routing).
    """
    return "websocket" in [t.lower() for t in request.headers.tokens("Upgrade")]


@implementer(IHandshakeListener)
class WebSocketServerProtocol(Protocol, WebSocketSession):
    """
    One client connection; once open, also the L{IWebSocketClient} its
    resource sees (it is its own session).

    Every phase before the session is bounded: the TLS handshake and the
    request head by C{handshakeTimeout} (L{FrontDoorState.AWAITING_TLS} is
    aborted, since no answer can reach a peer before TLS is up), and a
    refusal's close by C{closeTimeout} and one more reactor turn (a peer
    that does not read the answer is aborted).

    @ivar httpFallback: builds the C{HTTPChannel} that takes over requests
        we do not route, or C{None} (the direct factory: they are refused).
    @ivar routeLookup: finds the route of a path; the factory's registry by
        default.
    """

    owner: FrontDoorOwner
    httpFallback: Callable[[], IProtocol] | None = None
    #: Builds the HTTP/2 connection that takes over a connection opening
    #: with the HTTP/2 preface (RFC 9113 3.4), or returns C{None} when
    #: HTTP/2 is not served on that transport; C{None}: never.
    http2Takeover: Callable[[ITransport], IProtocol | None] | None = None
    routeLookup: Callable[[str], Route | None] | None = None
    #: C{dataReceived} takes a C{bytearray} as well as C{bytes}: the
    #: stdssl: layer (L{txclws._tls}) then hands over a large read's
    #: plaintext as the buffer it was decrypted into, not copied again.
    takesBytearray = True

    _state = _S.READING_HEAD
    _headReader: RequestHeadReader | None = None
    _handshake: ClientHandshake | None = None
    _body = b""
    _http: IProtocol | None = None
    #: The transport's own read size while we raised it for a large frame
    #: (see L{txclws._readsize.chooseReadSize}), else 0.
    _defaultReadSize = 0

    def connectionMade(self) -> None:
        """
        Start reading the request head, within the handshake timeout.
        """
        assert self.transport is not None
        # Factory.buildProtocol set factory: a WebSocketFactory.
        self.owner = factory = cast(FrontDoorOwner, self.factory)
        self.host, self.port = peerOf(self.transport)
        self._headReader = RequestHeadReader(factory.maxHeadSize)
        if ISSLTransport.providedBy(self.transport):
            # The timeout bounds the TLS handshake too: handshakeCompleted.
            self._state = _S.AWAITING_TLS
        self._timer = factory.reactor.callLater(
            factory.handshakeTimeout, self._handshakeTimedOut
        )
        # Messages are written whole: Nagle's algorithm would only hold a
        # small reply back waiting for an ACK (TLS wrappers pass it down).
        setNoDelay = getattr(self.transport, "setTcpNoDelay", None)
        if setNoDelay is not None:
            setNoDelay(True)

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake has completed (C{IHandshakeListener}): from now
        on, what is written reaches the peer.
        """
        if self._state is _S.AWAITING_TLS:
            self._state = _S.READING_HEAD

    def dataReceived(self, data: bytes) -> None:
        """
        Feed whichever reads now: the session, the head reader, or HTTP.
        """
        try:
            state = self._state
            if state is _S.OPEN:
                if self._inputOpen:  # receiveData, inlined: the hot path
                    transport = self.transport
                    if isinstance(transport, Connection):  # TCP, UNIX
                        if self._receiveNoting(data):
                            turnEndSender(self.owner.reactor).add(transport)
                    else:
                        self._receive(data)
                    if self._defaultReadSize or len(data) >= LARGE_READ:
                        # Read the rest of a large frame at once.
                        self._defaultReadSize = resizeReads(
                            self.transport, self._connection, self._defaultReadSize
                        )
            else:
                # bytes for the head reader and twisted.web (takesBytearray).
                data = bytes(data)
                if state is _S.READING_HEAD:
                    self._receiveHead(data)
                elif state is _S.AWAITING_TLS:
                    # Application data: TLS is up (a wrapper that does not
                    # call handshakeCompleted says so this way).
                    self._state = _S.READING_HEAD
                    self._receiveHead(data)
                elif state is _S.AWAITING_BODY:
                    self._receiveBody(data)
                elif state is _S.HANDED_TO_HTTP:
                    assert self._http is not None
                    self._http.dataReceived(data)
        except Exception:
            self._serverError(Failure())

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Tell whoever owns the connection now.
        """
        state, self._state = self._state, _S.DONE
        self._cancelTimer()
        if state is _S.HANDED_TO_HTTP:
            assert self._http is not None
            self._http.connectionLost(reason)
            return
        self.streamLost()

    # -- the request head ------------------------------------------------

    def _receiveHead(self, data: bytes) -> None:
        assert self._headReader is not None
        try:
            head = self._headReader.feed(data)
            if head is None:
                return
            # Read again: a PROXY header (haproxy:) has changed it by now.
            self.host, self.port = peerOf(cast(ITransport, self.transport))
            leftover = self._headReader.leftover
            self._headReader = None
            if head == HTTP2_PREFACE_HEAD and self._handToHTTP2(leftover):
                return
            request = parseRequestHead(head, MAX_HEADERS)
        except HandshakeError as error:
            self._refuse(Refused.fromError(error))
            return
        route = self._route(request.path)
        if route is None and self.httpFallback is not None and not _upgrading(request):
            self._handToHTTP(data=head + b"\r\n\r\n" + leftover)
            return
        if route is not None:
            # Serve under the limits and client count of the factory the
            # route belongs to (a site's resources may each have one).
            self.owner = route[2]
        checked = checkRequest(request, self.owner.settings)
        if isinstance(checked, Refused):
            self._refuse(checked)
            return
        self.takeOver(checked, leftover)

    def takeOver(
        self,
        handshake: ClientHandshake,
        leftover: bytes = b"",
        route: Callable[[str], Route | None] | None = None,
    ) -> None:
        """
        Accept C{handshake}, whose head was read already (by us, or by a
        C{twisted.web} site: see L{txclws.web}), once its body (hixie-76's
        8 bytes) is here.  Call after C{makeConnection}.

        @param route: the route lookup to use instead of ours.
        """
        self._headReader = None
        if route is not None:
            self.routeLookup = route
        self._handshake = handshake
        self._state = _S.AWAITING_BODY
        self._receiveBody(leftover)

    def _receiveBody(self, data: bytes) -> None:
        handshake = self._handshake
        assert handshake is not None
        self._body += data
        if len(self._body) < bodySize(handshake):
            return  # hixie-76 5.1: wait, still within the handshake timeout
        self._handshake = None
        self._accept(handshake, self._body)

    def _accept(self, handshake: ClientHandshake, body: bytes) -> None:
        assert self.transport is not None
        factory = self.owner
        self.describeRequest(handshake)
        stream = TransportStream(self.transport)
        capped = admitPeer(factory, stream, handshake)
        self.host, self.port = stream.host, stream.port
        if capped is not None:
            self._refuse(capped)
            return
        verdict = acceptHandshake(
            handshake,
            factory.settings,
            self._entry,
            len(factory.clients),
            stream.isTLS,
            self._chooseSubprotocol,
            body,
        )
        if isinstance(verdict, Refused):
            self._refuse(verdict)
            return
        self._cancelTimer()
        self._state = _S.OPEN
        self.openSession(factory, stream, verdict)

    def _route(self, path: str) -> Route | None:
        if self.routeLookup is not None:
            return self.routeLookup(path)
        entry = self.owner.registry.lookup(path)
        return None if entry is None else (entry[0], entry[1], self.owner)

    def _entry(self, path: str) -> tuple[IWebSocketResource, OriginCheck] | None:
        route = self._route(path)
        return None if route is None else (route[0], route[1])

    def _chooseSubprotocol(
        self, resource: IWebSocketResource, offered: Sequence[str]
    ) -> str | None:
        try:
            return resource.selectSubprotocol(self, offered)
        except Exception:
            self._logResourceError(Failure(), resource.selectSubprotocol)
            raise HandshakeError(500, "internal error") from None

    def _handToHTTP(self, data: bytes) -> None:
        """
        Give the connection, with the bytes read so far, to an HTTP channel.
        """
        assert self.httpFallback is not None and self.transport is not None
        self._cancelTimer()
        self._state = _S.HANDED_TO_HTTP
        channel = self._http = self.httpFallback()
        channel.makeConnection(self.transport)
        channel.dataReceived(data)

    def _handToHTTP2(self, leftover: bytes) -> bool:
        """
        Give a connection that opened with the HTTP/2 preface to the HTTP/2
        connection L{http2Takeover} builds for it, if it builds one.
        """
        assert self.transport is not None
        takeover = self.http2Takeover
        channel = takeover(self.transport) if takeover is not None else None
        if channel is None:
            return False
        self._cancelTimer()
        self._state = _S.HANDED_TO_HTTP
        self._http = channel
        channel.makeConnection(self.transport)
        channel.dataReceived(HTTP2_PREFACE_HEAD + b"\r\n\r\n" + leftover)
        return True

    def _refuse(self, refusal: Refused) -> None:
        assert self.transport is not None
        _log.info(
            "refused {peer}: {status} {reason}",
            peer=self._peer(),
            status=refusal.status,
            reason=refusal.reason,
        )
        countRefusal(self.owner, refusal)
        self._state = _S.DONE
        self.transport.write(refusal.response())
        # A peer that does not read would hold the answer, and the
        # connection, for ever: a bounded grace, then an abort.  Started
        # before the close: connectionLost, which cancels it, may run in it.
        self._startCloseTimer(self._refusalTimedOut)
        self.transport.loseConnection()

    def _handshakeTimedOut(self) -> None:
        self._timer = None
        if self._state is _S.AWAITING_TLS:
            # A 408 cannot be written before TLS completes, and a close
            # would wait for that: drop the peer at once.
            _log.info(
                "dropped {peer}: TLS handshake timed out",
                peer=self._peer(),
                cause="tls-timeout",  # issue 17: a field for JSON logs
            )
            self._abort()
            return
        self._refuse(Refused(408, "the request head took too long"))

    def _refusalTimedOut(self) -> None:
        self._timer = None
        _log.info(
            "dropped {peer}: refusal not read in time",
            peer=self._peer(),
            cause="refusal-unread",  # issue 17: a field for JSON logs
        )
        self._abort()

    def _abort(self) -> None:
        if self._state is _S.OPEN:
            super()._abort()
            return
        self._state = _S.DONE
        assert self.transport is not None
        abortTransport(self.transport)

    def __repr__(self) -> str:
        return f"<WebSocketServerProtocol {self._peer()} {self.resourceName or '-'}>"
