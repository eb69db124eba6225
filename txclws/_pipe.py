# -*- test-case-name: tests.test_streaming -*-
"""
L{MessagePipe}: a push producer that an application writes to, for
L{txclws._resource.IStreamingClient.writeFrom}: what relays a message
streamed in (or any data that arrives in pieces) into a message streamed
out, with the consumer's backpressure handed back to the writer.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["MessagePipe"]


@implementer(IPushProducer)
class MessagePipe:
    """
    A message's data, written piece by piece, for C{client.writeFrom(pipe)}.

    L{write} hands each piece on at once, and returns a Deferred while the
    consumer has asked it to pause (fired when it resumes): a streaming
    resource returns it from C{messageData}, and the sender is held back
    while the receiver is slow.  L{finish} ends the message; L{fail} ends
    it with an error (the client is closed with 1011).

    @since: 0.2.0
    """

    def __init__(self) -> None:
        self._consumer: IConsumer | None = None
        self._ended: Deferred[None] = Deferred()
        self._resumed: Deferred[None] | None = None
        self._paused = False
        self._stopped = False
        self._early: list[bytes | str] = []

    # -- the writer's side -------------------------------------------------

    def write(self, data: bytes | str) -> Deferred[None]:
        """
        Send the next piece.

        @return: a Deferred that fires once the consumer takes more: at
            once unless it has paused the pipe.
        """
        if self._stopped:
            return succeed(None)
        if self._consumer is None:
            self._early.append(data)
        else:
            self._consumer.write(data)  # type: ignore[arg-type]
        if not self._paused:
            return succeed(None)
        if self._resumed is None:
            self._resumed = Deferred()
        return self._resumed

    def finish(self) -> None:
        """
        The message is complete.
        """
        if not self._ended.called:
            self._ended.callback(None)

    def fail(self, reason: Failure | BaseException) -> None:
        """
        The message cannot be completed.
        """
        if not self._ended.called:
            self._ended.errback(reason)

    # -- the consumer's side (IBodyProducer's shape) -----------------------

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        """
        Start writing to C{consumer}; the Deferred fires at L{finish}.
        """
        self._consumer = consumer
        early, self._early = self._early, []
        for data in early:
            consumer.write(data)  # type: ignore[arg-type]
        return self._ended

    def pauseProducing(self) -> None:
        """
        The consumer is full: L{write} returns a pending Deferred.
        """
        self._paused = True

    def resumeProducing(self) -> None:
        """
        The consumer takes more: fire the writer's Deferred.
        """
        self._paused = False
        resumed, self._resumed = self._resumed, None
        if resumed is not None:
            resumed.callback(None)

    def stopProducing(self) -> None:
        """
        The consumer is gone: later writes are dropped, and a waiting
        writer is let go.
        """
        self._stopped = True
        self.resumeProducing()
