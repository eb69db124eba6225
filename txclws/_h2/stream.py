# -*- test-case-name: tests.test_h2 -*-
"""
One HTTP/2 stream's sending side (L{OutboundStream}: DATA within the
stream's and the connection's send windows, the rest buffered), and the
L{IByteStream} a WebSocket session runs on (L{WebSocketStream}, RFC 8441).

Flow control is the HTTP/2 form of a TCP transport's producer contract:
writes past the send windows are buffered and count in C{bufferedAmount};
past L{TRANSPORT_BUFFER_SIZE} buffered the session is paused
(C{pauseProducing}) and, once the buffer has emptied, resumed.  On the
receiving side, the peer's DATA is acknowledged (C{WINDOW_UPDATE}) only
once the session has taken it: while the session's reading is paused, a
client can send no more than the stream's window.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from txclws._session.flow import TRANSPORT_BUFFER_SIZE
from txclws._session.stream import IByteStream

if TYPE_CHECKING:
    from txclws._session.session import WebSocketSession

__all__ = ["OutboundStream", "StreamConnection", "StreamEnd", "WebSocketStream"]

#: RFC 9113 7: CANCEL, for a stream we abort.
CANCEL = 0x8


class StreamConnection(Protocol):
    """
    What a stream needs from its HTTP/2 connection.
    """

    host: str
    port: int
    isTLS: bool

    def sendWindow(self, streamID: int) -> int:
        """
        How many bytes of DATA may go on C{streamID} now: the smaller of its
        send window and the connection's, at most one frame; 0 while the
        transport's own buffer is full.
        """

    def sendData(self, streamID: int, data: bytes, end: bool) -> None:
        """
        Send C{data} (within L{sendWindow}) on C{streamID}, then
        C{END_STREAM} if C{end}.
        """

    def resetStream(self, streamID: int, errorCode: int) -> None:
        """
        Send C{RST_STREAM}, and forget the stream.
        """

    def acknowledge(self, streamID: int, size: int) -> None:
        """
        C{size} flow-controlled bytes of C{streamID} were consumed: the
        peer may send them again (C{WINDOW_UPDATE}).
        """

    def streamDone(self, streamID: int) -> None:
        """
        We sent C{END_STREAM} on C{streamID}.
        """


class StreamEnd(Enum):
    """
    How far our side of a stream has got.

    @cvar OPEN: writing.
    @cvar ENDING: C{END_STREAM} goes once the buffer has gone.
    @cvar ENDED: C{END_STREAM} was sent, or the stream was reset.
    """

    OPEN = "OPEN"
    ENDING = "ENDING"
    ENDED = "ENDED"


class OutboundStream:
    """
    The sending side of one stream: DATA within the send windows, the rest
    buffered until the peer opens them (L{flush}).

    @ivar streamID: the stream.
    @ivar end: how far our side has got (L{StreamEnd}).
    @ivar _pending: the buffered chunks, oldest first; C{_size} bytes.
    @ivar _producer: told to pause past L{TRANSPORT_BUFFER_SIZE} buffered,
        and to resume once the buffer is empty, or C{None}.
    """

    def __init__(self, connection: StreamConnection, streamID: int) -> None:
        self._connection = connection
        self.streamID = streamID
        self.end = StreamEnd.OPEN
        self._pending: deque[bytes | memoryview] = deque()
        self._size = 0
        self._producer: IPushProducer | None = None
        self._producerPaused = False

    def write(self, data: bytes) -> None:
        """
        Send C{data}, or buffer what the windows do not let go now.
        """
        if not data or self.end is not StreamEnd.OPEN:
            return
        self._pending.append(data)
        self._size += len(data)
        self.flush()
        if self._size > TRANSPORT_BUFFER_SIZE and not self._producerPaused:
            producer = self._producer
            if producer is not None:
                self._producerPaused = True
                producer.pauseProducing()

    def flush(self) -> None:
        """
        Send what the windows allow now; then C{END_STREAM} if it is due,
        and resume the producer if the buffer has emptied.
        """
        pending, connection, streamID = self._pending, self._connection, self.streamID
        while pending:
            window = connection.sendWindow(streamID)
            if window <= 0:
                return
            chunk = pending.popleft()
            if len(chunk) > window:
                # A view: slicing a large message once per frame must not
                # copy what remains of it each time.
                rest = memoryview(chunk)
                pending.appendleft(rest[window:])
                chunk = bytes(rest[:window])
            self._size -= len(chunk)
            last = not pending and self.end is StreamEnd.ENDING
            connection.sendData(streamID, bytes(chunk), last)
            if last:
                self._ended()
                return
        if self.end is StreamEnd.ENDING:
            connection.sendData(streamID, b"", True)
            self._ended()
            return
        if self._producerPaused:
            self._producerPaused = False
            assert self._producer is not None
            self._producer.resumeProducing()

    def bufferedAmount(self) -> int:
        """
        Bytes written and not yet sent.
        """
        return self._size

    def endStream(self) -> None:
        """
        Send C{END_STREAM} once everything written has gone.
        """
        if self.end is StreamEnd.OPEN:
            self.end = StreamEnd.ENDING
            self.flush()

    def reset(self, errorCode: int = CANCEL) -> None:
        """
        Abort the stream: C{RST_STREAM}, and the buffer discarded.
        """
        if self.end is not StreamEnd.ENDED:
            self._discard()
            self._connection.resetStream(self.streamID, errorCode)
            self.streamClosed()

    def _ended(self) -> None:
        self.end = StreamEnd.ENDED
        self._connection.streamDone(self.streamID)
        self.writesEnded()

    def _discard(self) -> None:
        self.end = StreamEnd.ENDED
        self._pending.clear()
        self._size = 0

    # -- what the connection tells a stream; subclasses add to them --------

    def writesEnded(self) -> None:
        """
        Our C{END_STREAM} has gone.
        """

    def dataReceived(self, data: bytes, flowControlled: int) -> None:
        """
        The peer's DATA: consumed at once, by default.
        """
        self._connection.acknowledge(self.streamID, flowControlled)

    def peerEnded(self) -> None:
        """
        The peer sent C{END_STREAM}.
        """

    def streamClosed(self) -> None:
        """
        The stream is gone: reset by either side, or its connection lost.
        """
        self._discard()


@implementer(IByteStream)
class WebSocketStream(OutboundStream):
    """
    The L{IByteStream} of one WebSocket over HTTP/2 (RFC 8441 section 5):
    the session's bytes are the stream's DATA.

    @ivar sink: this stream (C{write}).
    @ivar _inbound: the peer's DATA waiting while reading is paused, with
        its flow-controlled size; not yet acknowledged.
    @ivar _readingPaused: the session asked us to stop delivering.
    @ivar _lost: the session was told its stream is gone.
    @ivar _readOn: the session reads on after our C{END_STREAM}, until the
        peer's (L{loseWriteConnection}).
    """

    def __init__(
        self, connection: StreamConnection, streamID: int, session: WebSocketSession
    ) -> None:
        super().__init__(connection, streamID)
        self.sink = self
        # The client's address, as its acceptance found it (behind trusted
        # proxies, the one they report: txclws._admission).
        self.host, self.port = session.host, session.port
        self.isTLS = connection.isTLS
        self._session = session
        self._inbound: deque[tuple[bytes, int]] = deque()
        self._readingPaused = False
        self._delivering = False
        self._lost = False
        self._readOn = False

    # -- IByteStream -------------------------------------------------------

    def pauseReading(self) -> None:
        """
        See L{IByteStream.pauseReading}: what arrives now waits,
        unacknowledged.
        """
        self._readingPaused = True

    def resumeReading(self) -> None:
        """
        See L{IByteStream.resumeReading}: deliver what waited.
        """
        self._readingPaused = False
        self._deliver()

    def watchWrites(self, producer: IPushProducer) -> None:
        """
        See L{IByteStream.watchWrites}.
        """
        self._producer = producer

    def unwatchWrites(self) -> None:
        """
        See L{IByteStream.unwatchWrites}.
        """
        self._producer = None
        self._producerPaused = False

    def loseConnection(self) -> None:
        """
        See L{IByteStream.loseConnection}: C{END_STREAM} after what is
        buffered (RFC 8441 section 5: after the close handshake); the
        session is done with the stream then.
        """
        self._inbound.clear()
        self._readOn = False
        self.endStream()

    def loseWriteConnection(self) -> bool:
        """
        See L{IByteStream.loseWriteConnection}: C{END_STREAM} after what is
        buffered, and go on reading until the peer's C{END_STREAM}.
        """
        self._readOn = True
        self.endStream()
        return True

    def abort(self) -> None:
        """
        See L{IByteStream.abort}: C{RST_STREAM CANCEL}.
        """
        self.reset(CANCEL)

    def peerGone(self) -> bool:
        """
        See L{IByteStream.peerGone}: always False.  The HTTP/2 connection
        reads on while one stream's reading is paused (it withholds that
        stream's WINDOW_UPDATE instead), so the peer's C{RST_STREAM} or the
        connection's end reaches the session through L{streamClosed} at once.
        """
        return False

    # -- from the connection -----------------------------------------------

    def dataReceived(self, data: bytes, flowControlled: int) -> None:
        """
        The peer's DATA: to the session, or kept while its reading is
        paused.
        """
        if self._lost:
            self._connection.acknowledge(self.streamID, flowControlled)
            return
        self._inbound.append((data, flowControlled))
        self._deliver()

    def _deliver(self) -> None:
        if self._delivering:
            return  # a callback of the session's resumed reading
        self._delivering = True
        try:
            inbound = self._inbound
            while inbound and not self._readingPaused and not self._lost:
                data, size = inbound.popleft()
                self._session.receiveData(data)
                self._connection.acknowledge(self.streamID, size)
        finally:
            self._delivering = False

    def writesEnded(self) -> None:
        """
        Our C{END_STREAM} went: unless the session still reads (after
        L{loseWriteConnection}), its stream is gone.
        """
        if not self._readOn:
            self._loseSession()

    def peerEnded(self) -> None:
        """
        The peer's C{END_STREAM}: the session's stream is gone (a TCP peer's
        EOF); ours follows what is buffered.
        """
        self._loseSession()
        self.endStream()

    def streamClosed(self) -> None:
        """
        Reset, by either side, or the connection is gone.
        """
        super().streamClosed()
        self._inbound.clear()
        self._loseSession()

    def _loseSession(self) -> None:
        if not self._lost:
            self._lost = True
            self._session.streamLost()

    def __repr__(self) -> str:
        return f"<WebSocketStream {self.streamID} {self.host}:{self.port}>"
