# -*- test-case-name: tests.test_flow -*-
"""
Write-side flow control: how many bytes a transport still holds for the
peer, and waiting for them to drain.

Twisted's transports buffer whatever is written and tell a registered
streaming producer to pause when the buffer passes C{bufferSize} (64 KiB)
and to resume once it is empty.  L{WebSocketServerProtocol} registers itself
so, and turns those calls into L{DrainWaiters} and a paused read side; this
module also reads the buffered amount, which Twisted does not publish.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from txclws._bufferedtransport import IBufferedTransport

__all__ = ["DrainWaiters", "bufferedBytes"]


def bufferedBytes(transport: Any) -> int:
    """
    Bytes written to C{transport} and not yet handed to the kernel.

    Reads the buffer of Twisted's C{FileDescriptor} (TCP, UNIX), through any
    protocol wrappers on the way (C{TLSMemoryBIOProtocol} keeps what it
    encrypted in the TCP transport below it, and cleartext written before
    the TLS handshake completes in C{_appSendBuffer}).  These attributes
    are private to Twisted but have kept their names since Twisted 8;
    a transport that has none of them counts as empty.  A transport that
    provides L{IBufferedTransport} is asked instead.
    """
    if IBufferedTransport.providedBy(transport):
        return int(transport.bufferedAmount())
    total = 0
    for _ in range(4):  # a transport wrapped a few times at most
        # Each object's own attributes only: a protocol wrapper (TLS, those
        # of twisted.protocols.policies) forwards the attributes it lacks
        # to the transport below, whose buffer would then count twice.
        attributes = getattr(transport, "__dict__", None)
        if attributes is None:
            break
        pending = attributes.get("_appSendBuffer")
        if pending:
            total += sum(map(len, pending))
        data = attributes.get("dataBuffer")
        if isinstance(data, bytes):
            total += len(data) - attributes.get("offset", 0)
        total += attributes.get("_tempDataLen", 0)
        transport = attributes.get("transport")
    return total


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
