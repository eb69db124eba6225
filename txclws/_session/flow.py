# -*- test-case-name: tests.test_flow -*-
"""
Write-side flow control and the slow-client policy, as decisions.

The byte stream tells its session when its write buffer fills and empties
(L{txclws._session.stream.IByteStream.watchWrites}); the session turns that
into L{DrainWaiters} and a paused read side, and asks L{admitBroadcast}
whether a broadcast may be buffered for a client: the helpers here decide,
the session acts.
"""

from __future__ import annotations

from enum import Enum

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

__all__ = ["TRANSPORT_BUFFER_SIZE", "Admission", "DrainWaiters", "admitBroadcast"]

#: Twisted's transports ask their producer to pause once they hold more
#: than this (C{FileDescriptor.bufferSize}).
TRANSPORT_BUFFER_SIZE = 65536


class Admission(Enum):
    """
    The slow-client policy's verdict on one broadcast to one client.

    @cvar SEND: buffer it.
    @cvar SEND_IN_GRACE: buffer it; the client is over C{maxBuffer}, so its
        grace period (C{slowClientTimeout}) runs, if it does not yet.
    @cvar CLOSE: do not; close the client with 1008, it reads too slowly.
    """

    SEND = "SEND"
    SEND_IN_GRACE = "SEND_IN_GRACE"
    CLOSE = "CLOSE"


def admitBroadcast(buffered: int, size: int, limit: int) -> Admission:
    """
    Whether a broadcast of C{size} bytes may be buffered for a client that
    holds C{buffered} bytes unsent, with C{limit} the factory's
    C{maxBuffer}: over it, a grace period; over twice it, closed at once.
    """
    if buffered <= limit:
        return Admission.SEND
    if buffered + size > 2 * limit:
        return Admission.CLOSE
    return Admission.SEND_IN_GRACE


class DrainWaiters:
    """
    Deferreds waiting for a transport's write buffer to empty.
    """

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[Deferred[None]] = []

    def wait(self) -> Deferred[None]:
        """
        A Deferred that fires at the next L{fire}.
        """
        waiter: Deferred[None] = Deferred()
        self._waiting.append(waiter)
        return waiter

    def fire(self) -> None:
        """
        The buffer drained: fire every waiter, in order.
        """
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(None)

    def fail(self, failure: Failure) -> None:
        """
        The connection is gone: fail every waiter with C{failure}.
        """
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.errback(failure)
