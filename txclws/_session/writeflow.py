# -*- test-case-name: tests.test_protocol,tests.test_streaming -*-
"""
Write-side flow of a session: the stream's verdict on our writes (it
pauses us when its buffer fills and resumes us when it empties), what a
resource waits on (L{drained}), and the slow-client policy for broadcasts
(L{txclws._session.flow} decides, this acts).  A message being streamed
out (L{txclws._session.producer}) is paused and resumed with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from txclws._core.arguments import checkFrameSize
from txclws._core.errors import ConnectionClosed
from txclws._core.frames import CloseCode, Opcode
from txclws._session.flow import (
    TRANSPORT_BUFFER_SIZE,
    Admission,
    DrainWaiters,
    admitBroadcast,
)
from txclws._session.producer import DEFAULT_FRAME_SIZE, OutgoingQueue, StreamedMessage
from txclws._session.streaming import StreamingSession

if TYPE_CHECKING:
    from txclws._core.connection import WebSocketConnection

__all__ = ["WriteFlowSession"]

_log = Logger()


class WriteFlowSession(StreamingSession):
    """
    Write-side flow and the slow-client policy, over the declared session
    state.
    """

    #: The owner's metrics (L{txclws._metrics.ServerMetrics}), or C{None}:
    #: read only when a policy drops the client.
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
        if self._outgoing is not None:
            self._outgoing.pause()

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
        if self._outgoing is not None:
            self._outgoing.resume()

    def stopProducing(self) -> None:
        """
        The stream is going away; C{streamLost} follows.
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
        if self._outgoing is not None:
            # A streamed message is going out: this one waits for its end,
            # and is framed then (a compressor's context is in order).
            return connection.mayBroadcast and self._outgoing.queueMessage(
                opcode, payload, frameSize
            )
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

    # -- a message streamed out -----------------------------------------

    def writeFrom(
        self,
        source: object,
        binary: bool = True,
        frameSize: int | None = DEFAULT_FRAME_SIZE,
    ) -> Deferred[None]:
        """
        Send one message from a producer or a file, as its data comes.  See
        L{txclws._resource.IStreamingClient.writeFrom}.
        """
        size = checkFrameSize(frameSize)
        opcode = Opcode.BINARY if binary else Opcode.TEXT
        connection = self._sendingConnection(opcode)
        if not connection.canSend:
            raise ConnectionClosed(f"connection is {connection.state.name}")
        message = StreamedMessage(source, opcode, size or DEFAULT_FRAME_SIZE)
        outgoing = self._outgoing
        if outgoing is None:
            outgoing = self._outgoing = OutgoingQueue(
                connection,
                self._sink.write,
                self.owner.reactor,
                lambda: self._pausedForWrites,
                self._sourceFailed,
                self._outgoingIdle,
            )
            # Reading goes on while it streams (see _updateReading).
            self._updateReading()
        outgoing.queueStreamed(message)
        return message.done

    def _queueBehindStream(
        self,
        connection: WebSocketConnection,
        opcode: int,
        payload: bytes | memoryview,
        frameSize: int | None,
    ) -> None:
        """
        A message written while a streamed one goes out waits for its end
        (a copy of it: the caller may reuse a buffer it lent).
        """
        if not connection.canSend:
            raise ConnectionClosed(f"connection is {connection.state.name}")
        assert self._outgoing is not None
        self._outgoing.queueMessage(opcode, bytes(payload), frameSize)

    def _outgoingIdle(self) -> None:
        self._outgoing = None
        self._updateReading()

    def _sourceFailed(self, failure: Failure) -> None:
        """
        A streamed message's source failed: the message cannot end, so the
        client is closed with 1011 (logged, no details sent).
        """
        _log.failure(
            "streamed message to {peer} failed", failure=failure, peer=self._peer()
        )
        if not self._lost and self._connection is not None:
            self._sendClose(CloseCode.INTERNAL_ERROR, "")

    def _sendingConnection(self, opcode: int) -> WebSocketConnection:
        """
        The connection to frame a binary message or a ping on, once the
        arguments are checked: first what the protocol cannot carry
        (hixie-76: L{UnsupportedByProtocol}, whenever it is asked), then
        whether the client is still here (L{ConnectionClosed}).
        """
        connection = self._connection
        if connection is not None:
            connection.checkCanCarry(opcode)
        if connection is None or self._lost:
            raise ConnectionClosed("the client is not connected")
        return connection
