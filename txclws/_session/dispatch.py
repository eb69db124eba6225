# -*- test-case-name: tests.test_protocol,tests.test_closing,tests.test_testing -*-
"""
A session's events to its resource, one at a time and in order.

Each event the core returns is answered at once (pings), kept (our own
keepalive pongs), queued behind a pending callback, or dispatched.  A
callback that returns an unfired C{Deferred} holds this client's next events
until it fires.  Callbacks that raise, or whose Deferred fails, are logged
and close this client alone with 1011: the only C{except Exception} of the
session, at its boundary with application code.

While a callback is pending the session goes on reading the peer (pings are
still answered at once, events queued in order), so that a peer that
leaves (its FIN or RST) is seen at once, and its slot freed, whatever the
callback does.  What the queue holds is bounded: each queued event counts
its payload's length plus L{QUEUED_EVENT_COST} against the owner's
C{maxQueuedBytes}, and once the count is past it the session stops reading
until the queue is back under it.  So the queue holds at most
C{maxQueuedBytes} plus the events of one read (a transport reads 64 KiB at
most).  A paused peer that leaves is found by the keepalive sweep, which
probes the stream (L{txclws._session.stream.IByteStream.peerGone}).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

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
from txclws._resource import REJECT
from txclws._session.base import notingSink
from txclws._session.closing import ClosingSession

__all__ = ["KEEPALIVE_PAYLOAD", "DispatchingSession"]

_log = Logger()

#: The payload of keepalive pings; their pongs are not the resource's.
KEEPALIVE_PAYLOAD = b"txclws-keepalive"

#: The size of a client's pong to a keepalive ping: 2 header bytes, the
#: 4-byte mask key and the payload (RFC 6455 5.2).
_KEEPALIVE_PONG_SIZE = 2 + 4 + len(KEEPALIVE_PAYLOAD)

#: What a queued event costs beyond its payload, against C{maxQueuedBytes}:
#: near enough the memory of the event object and its place in the queue,
#: so that a flood of empty messages is bounded too.
QUEUED_EVENT_COST = 64


def queuedSize(event: Event) -> int:
    """
    What C{event} counts against C{maxQueuedBytes} while it is queued.
    """
    payload: str | bytes | None = getattr(event, "data", None)
    if payload is None:
        payload = getattr(event, "payload", b"")
    return QUEUED_EVENT_COST + len(payload)


class DispatchingSession(ClosingSession):
    """
    Ordered dispatch of a session's events to its resource.
    """

    def _receive(self, data: bytes) -> None:
        connection = self._connection
        assert connection is not None
        now = self._lastReceived = self._seconds()
        self._pingSentAt = None
        keepalivePongs = 0
        for event in connection.receiveData(data):
            # Exact-type dispatch on type(event), looked up once: mypy does not
            # narrow event through kind, hence the ignores on event below.
            kind = type(event)
            if kind is PingReceived:
                # Answered at once, even while the resource is busy, so a
                # slow resource does not look like a dead peer.
                self._sink.write(connection.framePong(event.payload))  # type: ignore[union-attr]
            elif kind is PongReceived and event.payload == KEEPALIVE_PAYLOAD:  # type: ignore[union-attr]
                keepalivePongs += 1  # ours alone: never queued nor delivered
            elif self._busy:
                self._enqueue(event)
            else:
                self._dispatch(event)
        if len(data) > keepalivePongs * _KEEPALIVE_PONG_SIZE:
            # More than answers to our own pings: the client is not idle.
            self._lastActive = now
        if (
            self._busy
            and not self._pausedForCallback
            and self._queuedBytes > self.owner.maxQueuedBytes
        ):
            self._pausedForCallback = True
            self._updateReading()

    def _receiveNoting(self, data: bytes) -> bool:
        """
        L{_receive}, and whether the session wrote anything meanwhile (its
        writes pass on at once, in order): so a transport can send a read's
        replies in that read's turn (L{txclws._sendnow}).
        """
        sink = self._sink
        noting = self._sink = notingSink(sink)
        try:
            self._receive(data)
        finally:
            self._sink = sink
        return noting.wrote

    def _enqueue(self, event: Event) -> None:
        """
        Keep C{event} until the pending callback is done, counting it
        against C{maxQueuedBytes}.
        """
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        queue.append(event)
        self._queuedBytes += queuedSize(event)

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
            self._closeReceived(cast(CloseReceived, event))
        elif kind is ConnectionFailed:
            self._failed(cast(ConnectionFailed, event))

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
            event = self._queue.popleft()
            self._queuedBytes -= queuedSize(event)
            self._dispatch(event)
        if not self._queue:
            self._queuedBytes = 0
        if self._busy:
            if self._queuedBytes <= self.owner.maxQueuedBytes:
                self._resumeAfterQueue()
            return
        if self._lost:
            self._notifyDisconnected()
        else:
            self._resumeAfterQueue()

    def _resumeAfterQueue(self) -> None:
        if self._pausedForCallback:
            self._pausedForCallback = False
            self._updateReading()

    def _dropQueue(self) -> None:
        """
        Deliver none of the queued events: the client is closing.
        """
        self._queue = None
        self._queuedBytes = 0

    def _connected(self, verdict: object) -> None:
        """
        C{clientConnected} returned C{verdict}.
        """
        if verdict is REJECT:
            self._dropQueue()
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
            duration=self._seconds() - self._openedAt,
        )
        client: Any = self  # WebSocketSession, the IWebSocketClient
        try:
            self._resource.clientDisconnected(client)
        except Exception:
            self._logResourceError(Failure(), self._resource.clientDisconnected)

    def _resourceError(self, failure: Failure, method: Callable[..., Any]) -> None:
        self._logResourceError(failure, method)
        if self.owner.debugResourceErrors:
            self.owner.debugFailure(failure)
            return
        if self._lost or self._connection is None:
            return
        # One client's failure is that client's alone: close it with 1011
        # and deliver it nothing more.
        self._dispatching = False
        self._dropQueue()
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
        if self.owner.debugServerErrors:
            self.owner.debugFailure(failure)
        self._abort()
