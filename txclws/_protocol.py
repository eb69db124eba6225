# -*- test-case-name: tests.test_protocol -*-
"""
The Twisted adapter: a L{Protocol} that runs the opening handshake, feeds the
sans-I/O core, writes the bytes it produces and hands its events to the
resource, one client's events in order.

Everything WebSocket-specific is decided by the core (L{txclws._core.handshake},
L{txclws._core.connection}); this module moves bytes, keeps timers, and calls
the resource's callbacks, catching what they raise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IPushProducer,
    ISSLTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws._core.connection import ConnectionState, WebSocketConnection
from txclws._core.deflate import DeflateCodec
from txclws._core.errors import ConnectionClosed, HandshakeError
from txclws._core.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    Event,
    PingReceived,
    PongReceived,
    TextMessage,
)
from txclws._core.frames import CloseCode
from txclws._core.handshake import (
    ClientHandshake,
    RequestHeaders,
    RequestHeadReader,
    acceptResponse,
    checkUpgrade,
    parseRequestHead,
    rejectResponse,
)
from txclws._core.hixie76 import Hixie76Connection, hixie76Challenge, hixie76Response
from txclws._core.origin import OriginCheck
from txclws._flow import DrainWaiters, bufferedBytes
from txclws._resource import REJECT, IWebSocketClient, IWebSocketResource

if TYPE_CHECKING:
    from txclws._factory import WebSocketFactory

__all__ = ["WebSocketServerProtocol"]

_log = Logger()

_OPEN_STATES = (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)

#: Twisted's transports ask their producer to pause once they hold more
#: than this (C{FileDescriptor.bufferSize}).
_TRANSPORT_BUFFER_SIZE = 65536

#: The payload of keepalive pings; their pongs are not the resource's.
_KEEPALIVE = b"txclws-keepalive"

#: The size of a client's pong to a keepalive ping: 2 header bytes, the
#: 4-byte mask key and the payload (RFC 6455 5.2).
_KEEPALIVE_PONG_SIZE = 2 + 4 + len(_KEEPALIVE)


@implementer(IWebSocketClient, IHandshakeListener)
class WebSocketServerProtocol(Protocol):
    """
    One client connection; also the L{IWebSocketClient} its resource sees.

    @ivar _phase: C{"handshake"} while reading the request head,
        C{"hixie76-body"} while awaiting the 8 bytes that follow a hixie-76
        request head (in C{_hixieBody}, with the handshake so far),
        C{"open"} once the core runs, C{"done"} once input is ignored (a
        refused handshake, or a connection that is closing or lost).
    @ivar _busy: a resource callback for this client has not finished; its
        next events wait in C{_queue} and the transport is paused.
    @ivar _accepted: C{clientConnected} accepted the client, so
        C{clientDisconnected} is owed.
    @ivar _tlsPending: the transport is TLS and its handshake has not
        completed: nothing written can reach the peer yet.
    """

    factory: WebSocketFactory
    # Protocol types transport as ITransport | None: makeConnection sets it
    # before anything here writes, hence the [union-attr] ignores on it.

    resourceName: str = ""
    queryString: str | None = None
    websocketVersion: int = 0
    host: str = ""
    port: int = 0
    connectionHeaders: RequestHeaders = RequestHeaders(())
    subprotocol: str | None = None

    _phase = "handshake"
    _connection: WebSocketConnection | None = None
    _resource: IWebSocketResource | None = None
    _headReader: RequestHeadReader | None = None
    _timer: IDelayedCall | None = None
    _busy = False
    _accepted = False
    _lost = False
    _dispatching = True
    _tlsPending = False
    _openedAt = 0.0
    #: Why reading from the peer is paused: a pending callback with events
    #: queued, and/or a full write buffer (the peer reads too slowly).
    _pausedForCallback = False
    _pausedForWrites = False
    #: While paused for writes, the bytes buffered at the last keepalive
    #: sweep (-1: not measured yet).
    _bufferedAtTick = -1
    #: Whether we are registered as the transport's producer.
    _producing = False
    _drainWaiters: DrainWaiters | None = None
    _slowTimer: IDelayedCall | None = None
    #: When data last arrived; when data other than pongs to our keepalive
    #: pings last arrived (for the idle timeout); and when an unanswered
    #: keepalive ping left.
    _lastReceived = 0.0
    _lastActive = 0.0
    _pingSentAt: float | None = None

    #: Events waiting for a pending callback; made on first need, since
    #: most connections never need one and idle memory counts.
    _queue: deque[Event] | None = None

    # -- IWebSocketClient ------------------------------------------------

    @property
    def closeCode(self) -> int | None:
        """
        The close code received from the client (or failed with), else None.
        """
        return self._connection.closeCode if self._connection else None

    @property
    def closeReason(self) -> str:
        """
        The close reason matching L{closeCode}, else C{""}.
        """
        return self._connection.closeReason if self._connection else ""

    def writeText(self, message: str | bytes, frameSize: int | None = None) -> None:
        """
        Send a text message.  See L{IWebSocketClient.writeText}.
        """
        self.transport.write(self._open().sendText(message, frameSize))  # type: ignore[union-attr]

    def writeBinary(self, data: bytes, frameSize: int | None = None) -> None:
        """
        Send a binary message.  See L{IWebSocketClient.writeBinary}.
        """
        self.transport.write(self._open().sendBinary(data, frameSize))  # type: ignore[union-attr]

    def ping(self, payload: bytes = b"") -> None:
        """
        Send a ping.  See L{IWebSocketClient.ping}.
        """
        self.transport.write(self._open().sendPing(payload))  # type: ignore[union-attr]

    def close(self, code: int = 1000, reason: str = "") -> None:
        """
        Start the close handshake.  See L{IWebSocketClient.close}.
        """
        connection = self._connection
        if connection is None or self._lost:
            return
        self._sendClose(code, reason)

    @property
    def bufferedAmount(self) -> int:
        """
        Bytes written to this client and not yet sent on the network.
        """
        return bufferedBytes(self.transport)

    def drained(self) -> Deferred[None]:
        """
        A Deferred that fires once the write buffer has emptied (at once if
        it is not full), or fails with L{ConnectionClosed} if the connection
        is lost first.  See L{IWebSocketClient.drained}.
        """
        if self._lost:
            return fail(ConnectionClosed("the client is not connected"))
        if not self._pausedForWrites:
            return succeed(None)
        if self._drainWaiters is None:
            self._drainWaiters = DrainWaiters()
        return self._drainWaiters.wait()

    # -- IPushProducer: the transport's verdict on our writes ------------

    def pauseProducing(self) -> None:
        """
        The transport's write buffer is full: the peer reads too slowly.
        Stop reading from it, so that what it sends cannot make us write
        (pongs, echoes) without bound.
        """
        self._pausedForWrites = True
        self._updateReading()

    def resumeProducing(self) -> None:
        """
        The transport's write buffer has emptied.
        """
        self._pausedForWrites = False
        self._bufferedAtTick = -1
        if self._slowTimer is not None:
            self._cancelSlowTimer()
        if self._drainWaiters is not None:
            self._drainWaiters.fire()
        self._updateReading()

    def stopProducing(self) -> None:
        """
        The transport is going away; L{connectionLost} follows.
        """

    def _updateReading(self) -> None:
        transport = self.transport
        if self._lost or transport is None:
            return
        paused = self._pausedForCallback or self._pausedForWrites
        # ITransport leaves it out, but the stream transports served on (TCP,
        # TLS, UNIX) are push producers too.
        producer = cast(IPushProducer, transport)
        if paused:
            producer.pauseProducing()
        elif not getattr(transport, "disconnecting", False):
            # Not once loseConnection was called (say, for a close frame
            # that was queued): a transport may refuse to resume then.
            producer.resumeProducing()

    def _open(self) -> WebSocketConnection:
        connection = self._connection
        if connection is None or self._lost:
            raise ConnectionClosed("the client is not connected")
        return connection

    def _writePrepared(
        self,
        opcode: int,
        payload: bytes,
        frameSize: int | None,
        frames: dict[object, bytes | None],
    ) -> bool:
        """
        Write a message framed for a broadcast, reusing C{frames} (framed
        bytes by L{WebSocketConnection.wireKey}) and adding to it.

        @return: whether the client was open and got the message.
        """
        connection = self._connection
        if connection is None or self._lost or connection.state not in _OPEN_STATES:
            return False
        key = connection.wireKey
        if key in frames:
            data = frames[key]
        else:
            data = frames[key] = connection.frameMessage(opcode, payload, frameSize)
        if data is None:
            return False  # this client's protocol cannot carry the message
        if not self._admitBroadcast(len(data)):
            return False
        self.transport.write(data)  # type: ignore[union-attr]
        return True

    def _admitBroadcast(self, size: int) -> bool:
        """
        The slow-client policy (see C{WebSocketFactory.maxBuffer}): whether
        a broadcast of C{size} bytes may be buffered for this client.
        """
        limit = self.factory.maxBuffer
        if not self._pausedForWrites and limit >= _TRANSPORT_BUFFER_SIZE:
            # The transport has not said its buffer is full, so it holds
            # at most its bufferSize: no need to measure.
            return True
        buffered = bufferedBytes(self.transport)
        if buffered <= limit:
            return True
        if buffered + size > 2 * limit:
            self._closeSlow()
            return False
        if self._slowTimer is None:
            self._slowTimer = self.factory.reactor.callLater(
                self.factory.slowClientTimeout, self._slowTimedOut
            )
        return True

    def _slowTimedOut(self) -> None:
        self._slowTimer = None
        if bufferedBytes(self.transport) > self.factory.maxBuffer:
            self._closeSlow()

    def _cancelSlowTimer(self) -> None:
        if self._slowTimer is not None and self._slowTimer.active():
            self._slowTimer.cancel()
        self._slowTimer = None

    def _closeSlow(self) -> None:
        self._cancelSlowTimer()
        _log.info(
            "closing slow client {peer}: {buffered} bytes unsent",
            peer=self._peer(),
            buffered=bufferedBytes(self.transport),
        )
        self._sendClose(CloseCode.POLICY_VIOLATION, "too slow")

    # -- Protocol --------------------------------------------------------

    def connectionMade(self) -> None:
        """
        Start reading the request head, within the handshake timeout.
        """
        peer = self.transport.getPeer()  # type: ignore[union-attr]
        self.host = str(getattr(peer, "host", getattr(peer, "name", "")) or "")
        self.port = int(getattr(peer, "port", 0) or 0)
        self._headReader = RequestHeadReader(self.factory.maxHeadSize)
        self._timer = self.factory.reactor.callLater(
            self.factory.handshakeTimeout, self._handshakeTimedOut
        )
        # The timeout bounds the TLS handshake too; see handshakeCompleted.
        self._tlsPending = ISSLTransport.providedBy(self.transport)
        # Messages are written whole: Nagle's algorithm would only hold a
        # small reply back waiting for an ACK (TLS wrappers pass it down).
        setNoDelay = getattr(self.transport, "setTcpNoDelay", None)
        if setNoDelay is not None:
            setNoDelay(True)

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake has completed (L{IHandshakeListener}): from now
        on, what is written reaches the peer.
        """
        self._tlsPending = False

    def dataReceived(self, data: bytes) -> None:
        """
        Feed the handshake reader or the core, whichever is current.
        """
        self._tlsPending = False  # application data: TLS, if any, is up
        try:
            if self._phase == "open":
                self._receive(data)
            elif self._phase == "handshake":
                self._receiveHead(data)
            elif self._phase == "hixie76-body":
                self._receiveHixieBody(data)
        except Exception:
            self._serverError(Failure())

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Forget the client; tell its resource once its last callback is done.
        """
        self._lost = True
        self._phase = "done"
        self._cancelTimer()
        self._cancelSlowTimer()
        self._queue = None
        if self._drainWaiters is not None:
            self._drainWaiters.fail(Failure(ConnectionClosed("connection lost")))
        self.factory._removeClient(self)
        if not self._busy:
            self._notifyDisconnected()

    # -- opening handshake ---------------------------------------------

    def _receiveHead(self, data: bytes) -> None:
        assert self._headReader is not None
        try:
            head = self._headReader.feed(data)
            if head is None:
                return
            leftover = self._headReader.leftover
            self._headReader = None
            handshake = checkUpgrade(
                parseRequestHead(head), self.factory.protocol76Support
            )
            self._acceptOrAwaitBody(handshake, leftover)
        except HandshakeError as error:
            self._refuse(error)

    def _acceptOrAwaitBody(
        self,
        handshake: ClientHandshake,
        leftover: bytes,
        entry: tuple[IWebSocketResource, OriginCheck] | None = None,
    ) -> None:
        if handshake.version == 0 and len(leftover) < 8:
            # hixie-76 5.1: the challenge's last 8 bytes follow the head;
            # wait for them, still within the handshake timeout.
            self._phase = "hixie76-body"
            self._hixieBody = (handshake, leftover, entry)
            return
        self._accept(handshake, leftover, entry)

    def _receiveHixieBody(self, data: bytes) -> None:
        handshake, body, entry = self._hixieBody
        body += data
        if len(body) < 8:
            self._hixieBody = (handshake, body, entry)
            return
        del self._hixieBody
        try:
            self._accept(handshake, body, entry)
        except HandshakeError as error:
            self._refuse(error)

    def acceptUpgrade(
        self,
        handshake: ClientHandshake,
        resource: IWebSocketResource,
        originCheck: OriginCheck,
        leftover: bytes = b"",
    ) -> None:
        """
        Take over a connection whose upgrade request another protocol has
        already read (a C{twisted.web} site: see L{txclws.web}), serving
        C{resource} whatever the path.  Call after C{makeConnection}.
        """
        self._headReader = None
        try:
            self._acceptOrAwaitBody(handshake, leftover, (resource, originCheck))
        except HandshakeError as error:
            self._refuse(error)

    def _accept(
        self,
        handshake: ClientHandshake,
        leftover: bytes,
        entry: tuple[IWebSocketResource, OriginCheck] | None = None,
    ) -> None:
        factory = self.factory
        request = handshake.request
        if entry is None:
            entry = factory.registry.lookup(request.path)
        if entry is None:
            raise HandshakeError(404, f"no WebSocket resource at {request.path}")
        resource, originCheck = entry
        if not originCheck(handshake.origin):
            raise HandshakeError(403, "origin not allowed")
        limit = factory.maxClients
        if limit is not None and len(factory.clients) >= limit:
            raise HandshakeError(503, "too many clients; try again later")
        self.resourceName = request.path
        self.queryString = request.query
        self.websocketVersion = handshake.version
        self.connectionHeaders = request.headers
        self.subprotocol = self._chooseSubprotocol(resource, handshake.subprotocols)
        if handshake.version == 0:
            response, leftover = self._startHixie76(handshake, leftover)
        else:
            response = self._startRFC6455(handshake)
        self._resource = resource
        self._cancelTimer()
        self._phase = "open"
        self._lastReceived = self._lastActive = factory.reactor.seconds()
        factory._addClient(self)
        # The transport tells us when its write buffer fills and empties.
        self.transport.registerProducer(self, True)  # type: ignore[union-attr]
        self._producing = True
        self.transport.write(response)  # type: ignore[union-attr]
        self._openedAt = factory.reactor.seconds()
        _log.info(
            "open {peer} {resource} version={version}",
            peer=self._peer(),
            resource=self.resourceName,
            version=self.websocketVersion,
        )
        self._call(resource.clientConnected, self._connected, self)
        if leftover:
            self._receive(leftover)

    def _startRFC6455(self, handshake: ClientHandshake) -> bytes:
        factory = self.factory
        extensions = codec = None
        if factory.deflate is not None and handshake.version == 13:
            # RFC 7692 is an extension of RFC 6455, not of the drafts.
            agreed = factory.deflate.negotiate(
                handshake.request.headers.get("Sec-WebSocket-Extensions")
            )
            if agreed is not None:
                extensions, params = agreed
                codec = DeflateCodec(params, factory.deflate)
        self._connection = WebSocketConnection(
            factory.maxFrameSize, factory.maxMessageSize, codec, handshake.version
        )
        return acceptResponse(handshake.key, self.subprotocol, extensions)

    def _startHixie76(
        self, handshake: ClientHandshake, body: bytes
    ) -> tuple[bytes, bytes]:
        assert handshake.hixieKeys is not None
        challenge = hixie76Challenge(*handshake.hixieKeys, body[:8])
        request = handshake.request
        scheme = "wss" if ISSLTransport.providedBy(self.transport) else "ws"
        location = f"{scheme}://{request.headers['Host']}{request.target}"
        self._connection = Hixie76Connection(
            self.factory.maxFrameSize, self.factory.maxMessageSize
        )
        response = hixie76Response(
            challenge, handshake.origin, location, self.subprotocol
        )
        return response, body[8:]

    def _chooseSubprotocol(
        self, resource: IWebSocketResource, offered: Sequence[str]
    ) -> str | None:
        if not offered:
            return None
        try:
            chosen = resource.selectSubprotocol(self, offered)
        except Exception:
            self._logResourceError(Failure(), resource.selectSubprotocol)
            raise HandshakeError(500, "internal error") from None
        if chosen is not None and chosen not in offered:
            raise HandshakeError(500, "the resource chose a subprotocol not offered")
        return chosen

    def _refuse(self, error: HandshakeError) -> None:
        _log.info(
            "refused {peer}: {status} {reason}",
            peer=self._peer(),
            status=error.status,
            reason=error.reason,
        )
        self._phase = "done"
        self._cancelTimer()
        self.transport.write(rejectResponse(error))  # type: ignore[union-attr]
        # A peer that does not read would hold the refusal, and the
        # connection, for ever: a bounded grace, then an abort.  Started
        # first: connectionLost, which cancels it, may run within the close.
        self._startTimer(self.factory.closeTimeout, self._refusalTimedOut)
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _handshakeTimedOut(self) -> None:
        self._timer = None
        if self._tlsPending:
            # A 408 cannot be written before TLS completes, and a close
            # would wait for that: drop the peer at once.
            _log.info("dropped {peer}: TLS handshake timed out", peer=self._peer())
            self._phase = "done"
            self._abort()
            return
        self._refuse(HandshakeError(408, "the request head took too long"))

    def _refusalTimedOut(self) -> None:
        self._timer = None
        _log.info("dropped {peer}: refusal not read in time", peer=self._peer())
        self._abort()

    # -- messages ----------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        connection = self._connection
        assert connection is not None
        now = self._lastReceived = self.factory.reactor.seconds()
        self._pingSentAt = None
        keepalivePongs = 0
        for event in connection.receiveData(data):
            # Exact-type dispatch on type(event), looked up once: mypy does not
            # narrow event through kind, hence the ignores on event below.
            kind = type(event)
            if kind is PingReceived:
                # Answered at once, even while the resource is busy, so a
                # slow resource does not look like a dead peer.
                self.transport.write(connection.sendPong(event.payload))  # type: ignore[union-attr]
            elif kind is PongReceived and event.payload == _KEEPALIVE:  # type: ignore[union-attr]
                keepalivePongs += 1  # ours alone: never queued nor delivered
            elif self._busy:
                if self._queue is None:
                    self._queue = deque()
                self._queue.append(event)
            else:
                self._dispatch(event)
        if len(data) > keepalivePongs * _KEEPALIVE_PONG_SIZE:
            # More than answers to our own pings: the client is not idle.
            self._lastActive = now
        if self._busy and self._queue and not self._pausedForCallback:
            self._pausedForCallback = True
            self._updateReading()

    def _dispatch(self, event: Event) -> None:
        """
        Hand one event to the resource, or act on it.
        """
        kind = type(event)  # not narrowed by mypy: see _receive
        resource = self._resource
        assert resource is not None
        if kind is TextMessage:
            if self._dispatching:
                self._call(resource.receivedText, None, self, event.data)  # type: ignore[union-attr]
        elif kind is BinaryMessage:
            if self._dispatching:
                self._call(resource.receivedBinary, None, self, event.data)  # type: ignore[union-attr]
        elif kind is PongReceived:
            if self._dispatching:
                self._call(resource.receivedPong, None, self, event.payload)  # type: ignore[union-attr]
        elif kind is CloseReceived:
            self._closeReceived(event)  # type: ignore[arg-type]
        elif kind is ConnectionFailed:
            self._failed(event)  # type: ignore[arg-type]

    def _call(
        self, method: Callable[..., Any], then: Callable[[Any], None] | None, *args: Any
    ) -> None:
        """
        Call a resource callback; if it returns an unfired Deferred, hold
        this client's next events until it fires.
        """
        try:
            result = method(*args)
        except Exception:
            self._resourceError(Failure(), method)
            result = None
        if result is not None and isinstance(result, Deferred):
            self._busy = True
            result.addCallbacks(
                self._callbackDone,
                self._callbackFailed,
                callbackArgs=(then,),
                errbackArgs=(method, then),
            )
            return
        if then is not None:
            then(result)

    def _callbackDone(self, result: object, then: Callable[[Any], None] | None) -> None:
        if then is not None:
            then(result)
        self._drain()

    def _callbackFailed(
        self,
        failure: Failure,
        method: Callable[..., Any],
        then: Callable[[Any], None] | None,
    ) -> None:
        self._resourceError(failure, method)
        if then is not None:
            then(None)
        self._drain()

    def _drain(self) -> None:
        """
        A callback finished: deliver queued events until one is pending.
        """
        self._busy = False
        while self._queue and not self._busy:
            self._dispatch(self._queue.popleft())
        if self._busy:
            return
        if self._lost:
            self._notifyDisconnected()
        elif self._pausedForCallback:
            self._pausedForCallback = False
            self._updateReading()

    def _connected(self, verdict: object) -> None:
        """
        C{clientConnected} returned C{verdict}.
        """
        if verdict is REJECT:
            self._queue = None
            self._dispatching = False
            _log.info(
                "rejected {peer} by {resource}",
                peer=self._peer(),
                resource=self.resourceName,
            )
            self._sendClose(CloseCode.POLICY_VIOLATION, "rejected")
        else:
            self._accepted = True

    def _notifyDisconnected(self) -> None:
        if not self._accepted:
            return
        self._accepted = False
        assert self._resource is not None
        _log.info(
            "closed {peer} {resource} version={version} code={code} "
            "reason={reason!r} duration={duration:.3f}s",
            peer=self._peer(),
            resource=self.resourceName,
            version=self.websocketVersion,
            # RFC 6455 7.1.5: no close frame received reads as 1006.
            code=self.closeCode or CloseCode.ABNORMAL_CLOSURE.value,
            reason=self.closeReason,
            duration=self.factory.reactor.seconds() - self._openedAt,
        )
        try:
            self._resource.clientDisconnected(self)
        except Exception:
            self._logResourceError(Failure(), self._resource.clientDisconnected)

    # -- keepalive --------------------------------------------------------

    def _keepaliveTick(
        self,
        now: float,
        pingInterval: float | None,
        pingTimeout: float,
        idleTimeout: float | None,
    ) -> None:
        """
        Called by the factory's L{KeepaliveSweep}: close this client if it
        has been idle too long, drop it if it did not answer a ping in time,
        ping it if it has been quiet.
        """
        if self._phase != "open" or self._lost:
            return
        if self._pausedForCallback:
            # We stopped reading (a callback is pending, the client's next
            # events wait): its silence is ours, and it is not idle.
            self._lastReceived = self._lastActive = now
            self._pingSentAt = None
            return
        if self._pausedForWrites:
            # Reading is paused while our writes wait, so the client's
            # pongs wait too: the sign of life is our buffer shrinking.
            buffered = bufferedBytes(self.transport)
            if 0 <= buffered < self._bufferedAtTick:
                self._lastReceived = self._lastActive = now
                self._pingSentAt = None
            self._bufferedAtTick = buffered
        quiet = now - self._lastReceived
        if idleTimeout is not None and now - self._lastActive >= idleTimeout:
            _log.info("closing idle client {peer}", peer=self._peer())
            self._sendClose(CloseCode.GOING_AWAY, "idle timeout")
            return
        if pingInterval is None or self.websocketVersion == 0:
            return  # hixie-76 has no pings
        if self._pingSentAt is not None:
            if now - self._pingSentAt >= pingTimeout:
                _log.info("dropped {peer}: no answer to ping", peer=self._peer())
                self._phase = "done"
                self._abort()
        elif quiet >= pingInterval:
            connection = self._connection
            assert connection is not None
            if connection.state in _OPEN_STATES:
                self._pingSentAt = now
                self.transport.write(connection.sendPing(_KEEPALIVE))  # type: ignore[union-attr]

    # -- closing -----------------------------------------------------------

    def _closeReceived(self, event: CloseReceived) -> None:
        connection = self._connection
        assert connection is not None
        # Echo the peer's code (RFC 6455 5.5.1); a no-op if ours was sent.
        self.transport.write(connection.sendClose(event.code))  # type: ignore[union-attr]
        self._phase = "done"
        self._cancelTimer()
        # RFC 6455 7.1.1: the server closes the TCP connection first.
        self._unregisterProducer()
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _failed(self, event: ConnectionFailed) -> None:
        connection = self._connection
        assert connection is not None
        _log.info(
            "failed {peer}: {code} {reason}",
            peer=self._peer(),
            code=event.code,
            reason=event.reason,
        )
        self.transport.write(connection.sendClose(event.code, event.reason))  # type: ignore[union-attr]
        self._phase = "done"
        self._closeWhenPeerDoes()

    def _sendClose(self, code: int, reason: str) -> None:
        if self._lost:
            # E.g. a REJECT fired after the client left: nothing to close,
            # and a close timer would only keep a dead connection alive.
            return
        connection = self._connection
        assert connection is not None
        data = connection.sendClose(code, reason)
        if not data:
            return
        self.transport.write(data)  # type: ignore[union-attr]
        if connection.state is ConnectionState.CLOSED:
            self._phase = "done"
            self._unregisterProducer()
            self.transport.loseConnection()  # type: ignore[union-attr]
        else:
            self._startTimer(self.factory.closeTimeout, self._closeTimedOut)

    def _closeWhenPeerDoes(self) -> None:
        """
        After failing the connection: stop writing, let the peer read our
        close frame and close its side, and drop it if it does not.

        Closing at once could reset the connection while the peer's bytes
        are still arriving, and a reset can destroy our close frame before
        the peer reads it.
        """
        transport = self.transport
        self._unregisterProducer()
        halfClose = getattr(transport, "loseWriteConnection", None)
        if halfClose is None:
            transport.loseConnection()  # type: ignore[union-attr]
            return
        halfClose()
        # Read on (and discard), whatever our writes did, to see its EOF.
        self._updateReading()
        self._startTimer(self.factory.closeTimeout, self._closeTimedOut)

    def _unregisterProducer(self) -> None:
        """
        Stop being the transport's producer before closing it or its
        writing half: a transport with a producer registered does not close
        (TLS waits for it to unregister) or, if it paused that producer,
        resumes it instead of closing once its buffer is empty (TCP).
        """
        if self._producing:
            self._producing = False
            self._pausedForWrites = False
            self.transport.unregisterProducer()  # type: ignore[union-attr]

    def _closeTimedOut(self) -> None:
        self._timer = None
        _log.info("dropped {peer}: close handshake timed out", peer=self._peer())
        self._abort()

    def _abort(self) -> None:
        transport = self.transport
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            transport.loseConnection()  # type: ignore[union-attr]

    # -- timers and errors -----------------------------------------------

    def _startTimer(self, seconds: float, action: Callable[[], None]) -> None:
        self._cancelTimer()
        self._timer = self.factory.reactor.callLater(seconds, action)

    def _cancelTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _resourceError(self, failure: Failure, method: Callable[..., Any]) -> None:
        self._logResourceError(failure, method)
        if self.factory.debugResourceErrors:
            self.factory.debugFailure(failure)
            return
        if self._lost or self._connection is None:
            return
        # One client's failure is that client's alone: close it with 1011
        # and deliver it nothing more.
        self._dispatching = False
        self._queue = None
        self._sendClose(CloseCode.INTERNAL_ERROR, "")

    def _logResourceError(self, failure: Failure, method: Callable[..., Any]) -> None:
        _log.failure(
            "resource {resource} failed in {callback} for {peer}",
            failure=failure,
            resource=self.resourceName,
            callback=getattr(method, "__name__", repr(method)),
            peer=self._peer(),
        )

    def _serverError(self, failure: Failure) -> None:
        _log.failure(
            "internal error serving {peer}", failure=failure, peer=self._peer()
        )
        if self.factory.debugServerErrors:
            self.factory.debugFailure(failure)
        self._phase = "done"
        self._abort()

    def _peer(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<WebSocketServerProtocol {self._peer()} {self.resourceName or '-'}>"
