# -*- test-case-name: tests.test_streaming -*-
"""
Streaming out: one message sent from a producer or a file as its data
comes (L{txclws._resource.IStreamingClient.writeFrom}), fragment by fragment, with
backpressure through Twisted's producer/consumer protocol.

L{StreamedMessage} is the consumer a source writes to (C{IConsumer}): each
write goes out as fragments of at most C{frameSize} bytes
(L{txclws._core.fragments}); when the session's stream is full the session
pauses it, and it pauses its source (a push producer's C{pauseProducing},
or no more reads of a file), so memory stays flat however long the
message.  L{OutgoingQueue} keeps what is written to the client meanwhile,
in order: whole messages (framed when their turn comes, so a compressor's
context sees the messages in the order they go out) and further streamed
messages.  Control frames (pongs, pings, the close) are written at once:
they go out between two fragments (RFC 6455 5.4, 5.5).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer, IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws._core.errors import ConnectionClosed, InvalidPayload
from txclws._core.frames import Opcode
from txclws._core.utf8 import Utf8Validator

if TYPE_CHECKING:
    from txclws._core.connection import WebSocketConnection
    from txclws._core.fragments import IMessageFramer

__all__ = ["DEFAULT_FRAME_SIZE", "OutgoingQueue", "StreamedMessage"]

#: The largest fragment of a streamed message, and the read size of a file.
DEFAULT_FRAME_SIZE = 65536

#: How many chunks of a file are read in one reactor turn while the stream
#: takes them (a stream that never fills must not starve the reactor).
_READS_PER_TURN = 16


class OutgoingQueue:
    """
    The messages written to one client while a streamed one goes out.

    @ivar _current: the streamed message going out.
    @ivar _waiting: what waits for it: L{StreamedMessage}s not started yet,
        and whole messages as C{(opcode, payload, frameSize)}.
    """

    def __init__(
        self,
        connection: WebSocketConnection,
        write: Callable[[bytes], None],
        reactor: IReactorTime,
        isPaused: Callable[[], bool],
        sourceFailed: Callable[[Failure], None],
        idle: Callable[[], None],
    ) -> None:
        """
        @param write: writes bytes to the client's stream.
        @param isPaused: whether the stream's write buffer is full.
        @param sourceFailed: a source failed: close the client with 1011.
        @param idle: nothing is left to send behind a streamed message.
        """
        self.connection = connection
        self.write = write
        self.reactor = reactor
        self.isPaused = isPaused
        self._sourceFailed = sourceFailed
        self._idle = idle
        self._current: StreamedMessage | None = None
        self._waiting: deque[StreamedMessage | tuple[int, bytes, int | None]] = deque()

    def queueStreamed(self, message: StreamedMessage) -> None:
        """
        Send C{message} once what is ahead of it has gone.
        """
        if self._current is None:
            self._current = message
            message.begin(self)
        else:
            self._waiting.append(message)

    def queueMessage(self, opcode: int, payload: bytes, frameSize: int | None) -> bool:
        """
        Send a whole message once the streamed messages ahead of it have
        gone.

        @return: True (it is queued).
        """
        self._waiting.append((opcode, payload, frameSize))
        return True

    def pause(self) -> None:
        """
        The stream is full: pause the streamed message's source.
        """
        if self._current is not None:
            self._current.pause()

    def resume(self) -> None:
        """
        The stream has room again.
        """
        if self._current is not None:
            self._current.resume()

    def messageDone(self, message: StreamedMessage) -> None:
        """
        C{message} ended (sent, or failed): send what waited behind it, up
        to the next streamed message.
        """
        if message is not self._current:
            return
        self._current = None
        waiting = self._waiting
        while waiting:
            item = waiting.popleft()
            if isinstance(item, StreamedMessage):
                self._current = item
                item.begin(self)
                return
            if self.connection.canSend:
                data = self.connection.frameMessage(*item)
                if data is not None:
                    self.write(data)
        self._idle()

    def failSource(self, failure: Failure) -> None:
        """
        A source failed: the client is closed with 1011, and what waits
        behind it will not be sent.
        """
        self._sourceFailed(failure)
        self.stop(ConnectionClosed("a streamed message's source failed"))

    def stop(self, reason: Exception) -> None:
        """
        The client is closing or gone: stop the streamed message's source,
        and fail it and every streamed message waiting with C{reason}.
        """
        current, self._current = self._current, None
        waiting, self._waiting = self._waiting, deque()
        if current is not None:
            current.abandon(reason)
        for item in waiting:
            if isinstance(item, StreamedMessage):
                item.abandon(reason)
        self._idle()


@implementer(IConsumer)
class StreamedMessage:
    """
    One message streamed out from a source: the C{IConsumer} it writes to.

    A source is one of:
      - an object with C{startProducing(consumer) -> Deferred} and the
        push producer's C{pauseProducing}/C{resumeProducing}/
        C{stopProducing} (Twisted's C{IBodyProducer}, e.g.
        C{twisted.web.client.FileBodyProducer}, or
        L{txclws.MessagePipe}): the message ends when its Deferred fires;
      - a file-like object with C{read(size)}: read C{frameSize} bytes at a
        time while the stream has room; the message ends at its end.

    @ivar done: fires with C{None} once the last frame is written, or fails
        (the source's failure; L{ConnectionClosed} if the client closed or
        left first).
    """

    def __init__(self, source: Any, opcode: int, frameSize: int) -> None:
        self.source = source
        self.opcode = opcode
        self.frameSize = frameSize
        self.done: Deferred[None] = Deferred()
        self._queue: OutgoingQueue | None = None
        self._framer: IMessageFramer | None = None
        self._utf8 = Utf8Validator() if opcode == Opcode.TEXT else None
        self._finished = False
        self._paused = False
        self._pulling = False
        self._producer: Any = None

    # -- driven by the queue ---------------------------------------------

    def begin(self, queue: OutgoingQueue) -> None:
        """
        Start sending: the first frame goes out with the first data.
        """
        self._queue = queue
        try:
            self._framer = queue.connection.messageFramer(self.opcode)
        except ConnectionClosed as exc:
            self._finish(exc)
            return
        self._paused = queue.isPaused()
        source = self.source
        if hasattr(source, "startProducing"):
            self._producer = source
            try:
                ended = source.startProducing(self)
            except Exception:
                self._failed(Failure())
                return
            ended.addCallbacks(self._sourceEnded, self._failed)
            if self._paused and not self._finished:
                source.pauseProducing()
        else:
            self._schedulePull()

    def pause(self) -> None:
        """
        The stream is full.
        """
        self._paused = True
        if self._producer is not None and not self._finished:
            self._producer.pauseProducing()

    def resume(self) -> None:
        """
        The stream has room again.
        """
        self._paused = False
        if self._finished:
            return
        if self._producer is not None:
            self._producer.resumeProducing()
        else:
            self._schedulePull()

    def abandon(self, reason: Exception) -> None:
        """
        The client is closing or gone: stop the source, fail L{done}.
        """
        if self._finished:
            return
        self._finished = True
        if self._producer is not None:
            self._producer.stopProducing()
        self.done.errback(Failure(reason))

    # -- IConsumer -------------------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        A source that registers itself (as Twisted's producers do): a
        push producer is paused and resumed with the stream.
        """
        if streaming:
            self._producer = producer
            if self._paused:
                producer.pauseProducing()

    def unregisterProducer(self) -> None:
        """
        The source is done producing; L{done} follows its end.
        """

    def write(self, data: bytes | str) -> None:
        """
        The source's next data: sent as fragments of at most C{frameSize}.
        """
        if self._finished or self._queue is None or self._framer is None:
            return
        queue = self._queue
        if not queue.connection.canSend:
            self._finish(ConnectionClosed("the client is closing"))
            return
        try:
            piece = self._checked(data)
        except (TypeError, InvalidPayload) as exc:
            self._failed(Failure(exc))
            return
        view = memoryview(piece)
        size = self.frameSize
        for start in range(0, len(piece), size):
            frame = self._framer.frame(view[start : start + size])
            if frame:
                queue.write(frame)

    def _checked(self, data: bytes | str) -> bytes:
        if isinstance(data, str):
            if self._utf8 is None:
                raise TypeError("a binary message takes bytes, not str")
            return data.encode("utf-8")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a message takes bytes, not {type(data).__name__}")
        if self._utf8 is not None:
            self._utf8.feed(data)
        return bytes(data)

    # -- the end -----------------------------------------------------------

    def _sourceEnded(self, result: object) -> None:
        if self._finished or self._queue is None or self._framer is None:
            return
        if not self._queue.connection.canSend:
            self._finish(ConnectionClosed("the client is closing"))
            return
        if self._utf8 is not None:
            try:
                self._utf8.finish()
            except InvalidPayload as exc:
                self._failed(Failure(exc))
                return
        self._queue.write(self._framer.end())
        self._finish(None)

    def _failed(self, failure: Failure) -> None:
        """
        The source failed (or gave what the message cannot carry): the
        client is closed with 1011 before anything queued goes out.
        """
        if self._finished:
            return
        self._finished = True
        self.done.errback(failure)
        if self._queue is not None:
            self._queue.failSource(failure)

    def _finish(self, outcome: Failure | Exception | None) -> None:
        """
        The message is over: fire L{done}, let the queue go on.
        """
        self._finished = True
        if outcome is None:
            self.done.callback(None)
        else:
            if self._producer is not None and isinstance(outcome, Exception):
                self._producer.stopProducing()
            self.done.errback(
                outcome if isinstance(outcome, Failure) else Failure(outcome)
            )
        if self._queue is not None:
            self._queue.messageDone(self)

    # -- a file ------------------------------------------------------------

    def _schedulePull(self) -> None:
        if not self._pulling and not self._paused and self._queue is not None:
            self._pulling = True
            self._queue.reactor.callLater(0, self._pull)

    def _pull(self) -> None:
        """
        Read and send the file's next chunks while the stream has room.
        """
        self._pulling = False
        for _ in range(_READS_PER_TURN):
            if self._finished or self._paused:
                return
            try:
                data = self.source.read(self.frameSize)
            except Exception:
                self._failed(Failure())
                return
            if not data:
                self._sourceEnded(None)
                return
            self.write(data)
        self._schedulePull()
