# -*- test-case-name: tests.test_protocol -*-
"""
The state every session keeps, declared once, and what its layers share:
read pausing, the session timer, the peer's name in log lines.

The session is built in layers, each a class of its own module:
L{SessionBase} (here), L{txclws._session.closing.ClosingSession} (the close
handshake), L{txclws._session.dispatch.DispatchingSession} (events to the
resource, in order) and L{txclws._session.session.WebSocketSession} (the
client API, write-side flow, keepalive).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from txclws._core.connection import WebSocketConnection
from txclws._core.events import Event
from txclws._core.request import RequestHeaders
from txclws._session.flow import DrainWaiters

if TYPE_CHECKING:
    from txclws._resource import IWebSocketResource
    from txclws._session.producer import OutgoingQueue
    from txclws._session.stream import IByteStream

__all__ = [
    "NotingSequenceSink",
    "NotingSink",
    "SessionBase",
    "SessionOwner",
    "notingSink",
]


class _Sink(Protocol):
    def write(self, data: bytes) -> None: ...


class NotingSink:
    """
    Passes a session's writes on to its sink at once, in order, and notes
    whether there were any (L{DispatchingSession._receiveNoting}).

    @ivar wrote: whether anything was written through it.
    """

    __slots__ = ("_sink", "wrote")

    def __init__(self, sink: _Sink) -> None:
        self._sink = sink
        self.wrote = False

    def write(self, data: bytes) -> None:
        """
        Write C{data} to the sink below.
        """
        self.wrote = True
        self._sink.write(data)


class NotingSequenceSink(NotingSink):
    """
    A L{NotingSink} over a sink that also takes a sequence (a Twisted
    transport's C{writeSequence}), which it passes on too: a large binary
    message written during a read then still goes out as its header and
    payload apart (L{txclws._session.session.writeApart}).
    """

    __slots__ = ()

    def writeSequence(self, data: Sequence[bytes]) -> None:
        """
        Write the pieces of C{data} to the sink below, in order.
        """
        self.wrote = True
        self._sink.writeSequence(data)  # type: ignore[attr-defined]


def notingSink(sink: _Sink) -> NotingSink:
    """
    The L{NotingSink} for C{sink}: one that passes on C{writeSequence} too
    when C{sink} has it.
    """
    if hasattr(sink, "writeSequence"):
        return NotingSequenceSink(sink)
    return NotingSink(sink)


class SessionOwner(Protocol):
    """
    What a session needs from the server that accepted it (a
    L{txclws._factory.WebSocketFactory}): the clock, its timeouts and
    policies, and the client registration contract (L{clientOpened} once
    the session opens, L{clientClosed} once its stream is lost).
    """

    reactor: IReactorTime
    closeTimeout: float
    maxBuffer: int
    slowClientTimeout: float
    maxQueuedBytes: int
    debugResourceErrors: bool
    debugServerErrors: bool

    def debugFailure(self, failure: Failure) -> None: ...

    # Any: the owner keeps its clients as the session class above this
    # module (L{txclws._session.session.WebSocketSession}).
    def clientOpened(self, client: Any) -> None: ...

    def clientClosed(self, client: Any) -> None: ...


class SessionBase:
    """
    The declared state of a session.

    @ivar _stream: the L{IByteStream} under the session, once open.
    @ivar _sink: C{_stream.sink}, what the session writes to: for a Twisted
        transport the transport itself, so that writing costs no call of
        ours on the hot path; during a read over TCP, a L{NotingSink} over
        it (see L{txclws._sendnow}).
    @ivar _connection: the sans-I/O connection, once open.
    @ivar _inputOpen: whether the peer's bytes still go to the core; false
        once its close frame or a failure ended the input, or we dropped it.
    @ivar _lost: the stream is gone.
    @ivar _busy: a resource callback has not finished; the next events wait
        in C{_queue}.
    @ivar _accepted: C{clientConnected} accepted the client, so
        C{clientDisconnected} is owed.
    @ivar _pausedForCallback: reading is paused: a callback is pending and
        the events queued behind it carry more than the owner's
        C{maxQueuedBytes} (L{txclws._session.dispatch}).
    @ivar _pausedForWrites: reading is paused: the write buffer is full.
    @ivar _pausedForRate: reading is paused: the client went over its rate
        limit (L{txclws._ratelimit}, C{policy="pause"}).
    @ivar _timer: the session's one timer: the handshake timeout before it
        opens, the close timeout once closing.
    """

    owner: SessionOwner
    resourceName: str = ""
    queryString: str | None = None
    websocketVersion: int = 0
    host: str = ""
    port: int = 0
    connectionHeaders: RequestHeaders = RequestHeaders(())
    subprotocol: str | None = None

    _stream: IByteStream | None = None
    _sink: _Sink
    _seconds: Callable[[], float]
    _connection: WebSocketConnection | None = None
    _resource: IWebSocketResource | None = None
    _timer: IDelayedCall | None = None
    _inputOpen = False
    _lost = False
    _busy = False
    _accepted = False
    _dispatching = True
    _openedAt = 0.0
    _pausedForCallback = False
    _pausedForWrites = False
    _pausedForRate = False
    #: While paused for writes, the bytes buffered at the last keepalive
    #: sweep (-1: not measured yet).
    _bufferedAtTick = -1
    _watchingWrites = False
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
    #: What the events in C{_queue} count against C{maxQueuedBytes}.
    _queuedBytes = 0
    #: While a message streams out (L{txclws._session.producer}): it and
    #: the messages written after it; else C{None}.
    _outgoing: OutgoingQueue | None = None

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

    def _updateReading(self) -> None:
        """
        Pause or resume reading from the stream, for either reason to pause.
        """
        stream = self._stream
        if self._lost or stream is None:
            return
        # Once the input has ended, what arrives is discarded and can make
        # us write nothing: read on, to see the peer's end at once.  While
        # a message streams out, a full write buffer pauses its source, not
        # our reading: two peers streaming to each other would otherwise
        # each stop reading the other, for ever.
        if self._inputOpen and (
            self._pausedForCallback
            or self._pausedForRate
            or (self._pausedForWrites and self._outgoing is None)
        ):
            stream.pauseReading()
        else:
            stream.resumeReading()

    def _startTimer(self, seconds: float, action: Callable[[], None]) -> None:
        self._cancelTimer()
        self._timer = self.owner.reactor.callLater(seconds, action)

    def _cancelTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _peer(self) -> str:
        """
        The peer in log lines: C{host:port}, or a UNIX socket's path.
        """
        if self.port:
            return f"{self.host}:{self.port}"
        return self.host or "unix:unnamed"
