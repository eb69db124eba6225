# -*- test-case-name: tests.test_flow,tests.test_protocol -*-
"""
The write side of a session (L{FlowingSession}): the stream's verdict on
our writes (C{pauseProducing}/C{resumeProducing}), L{drained}, and
broadcasts (L{writeFramed}) under the slow-client policy, which
L{txclws._session.flow} decides and this class acts on.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from txclws._core.errors import ConnectionClosed
from txclws._core.frames import CloseCode
from txclws._session.dispatch import DispatchingSession
from txclws._session.flow import (
    TRANSPORT_BUFFER_SIZE,
    Admission,
    DrainWaiters,
    admitBroadcast,
)

__all__ = ["FlowingSession"]

#: The session's log lines keep the namespace they have always had.
_log = Logger(namespace="txclws._session.session")


class FlowingSession(DispatchingSession):
    """
    A session's write-side flow: what it writes waits in its stream's
    buffer; a full buffer pauses reading, and a broadcast to a client over
    the owner's C{maxBuffer} for C{slowClientTimeout} closes it (1008).
    """

    #: The owner's metrics (L{txclws._metrics.ServerMetrics}), or C{None}.
    _metrics: Any = None

    @property
    def bufferedAmount(self) -> int:
        """
        Bytes written to this client and not yet sent on the network.
        """
        return self._stream.bufferedAmount() if self._stream is not None else 0

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

    # -- write-side flow: the stream's verdict on our writes ---------------

    def pauseProducing(self) -> None:
        """
        The write buffer is full: the peer reads too slowly.  Stop reading
        from it, so that what it sends cannot make us write (pongs, echoes)
        without bound.
        """
        self._pausedForWrites = True
        self._updateReading()

    def resumeProducing(self) -> None:
        """
        The write buffer has emptied.
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
        The stream is going away;
        L{streamLost <txclws._session.session.WebSocketSession.streamLost>}
        follows.
        """

    def writeFramed(
        self,
        opcode: int,
        payload: bytes,
        frameSize: int | None,
        frames: dict[object, bytes | None],
    ) -> bool:
        """
        See L{IFramedWriter.writeFramed}.
        """
        connection = self._connection
        if connection is None or self._lost:
            return False
        data = connection.broadcastFrame(opcode, payload, frameSize, frames)
        if data is None:
            return False
        if (
            self._pausedForWrites or self.owner.maxBuffer < TRANSPORT_BUFFER_SIZE
        ) and not self._admitBroadcast(len(data)):
            return False
        self._sink.write(data)
        return True

    def _admitBroadcast(self, size: int) -> bool:
        """
        The slow-client policy (see C{WebSocketFactory.maxBuffer}).
        """
        limit = self.owner.maxBuffer
        if not self._pausedForWrites and limit >= TRANSPORT_BUFFER_SIZE:
            # The stream has not said its buffer is full, so it holds at
            # most its bufferSize: no need to measure.
            return True
        assert self._stream is not None
        verdict = admitBroadcast(self._stream.bufferedAmount(), size, limit)
        if verdict is Admission.CLOSE:
            self._closeSlow()
            return False
        if verdict is Admission.SEND_IN_GRACE and self._slowTimer is None:
            self._slowTimer = self.owner.reactor.callLater(
                self.owner.slowClientTimeout, self._slowTimedOut
            )
        return True

    def _slowTimedOut(self) -> None:
        self._slowTimer = None
        if self.bufferedAmount > self.owner.maxBuffer:
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
            buffered=self.bufferedAmount,
            cause="slow",
        )
        self._countDrop("slow")
        self._sendClose(CloseCode.POLICY_VIOLATION, "too slow")

    def _countDrop(self, cause: str) -> None:
        """
        A policy closes or drops this client: count it, if metered.
        """
        if self._metrics is not None:
            self._metrics.dropped(cause)
