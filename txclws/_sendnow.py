# -*- test-case-name: tests.test_sendnow -*-
"""
Sending the replies to a reactor turn's reads before the reactor polls
again.

Twisted's TCP transport buffers a write, registers the socket for
writability, and sends once C{epoll} reports it writable: an isolated round
trip (one message in, its answer out) costs two reactor turns, two
C{epoll_wait} calls, besides its C{recv} and C{send}.  The front door
instead notes each TCP or UNIX transport a read wrote to
(L{TurnEndSender.add}) and, once per turn, in a delayed call of no delay
(which the reactor runs before it next polls), sends what each of them
holds with the transport's own C{doWrite}
(C{twisted.internet.interfaces.IWriteDescriptor}, a public method): the
answer leaves without the second turn.

Why not at once, in the read: replying to each read as it comes leaves a
peer that pipelines less to batch per read.  Measured with
C{benchmarks/run --only W1,W4 --servers txclws} at load 0.5: sending in
the read took W1 (50 connections x 10 in flight) from 260,742 to 190,512
messages per second; at the turn's end, the replies of every read of the
turn go out together, as the reactor would have sent them.
"""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.tcp import Connection

__all__ = ["TurnEndSender", "sendNow", "turnEndSender"]


def sendNow(transport: Connection) -> None:
    """
    Send what C{transport} buffered, now rather than on the next turn; not
    while it is disconnecting: its C{doWrite} would then close it, which
    only the reactor may act on (it is told by C{doWrite}'s return value);
    nor once it is closed (a half-closed transport closes at once when
    told to close).

    A failed send is left to the reactor too: C{doWrite} keeps the
    transport registered for writing, and the reactor's own next
    C{doWrite} meets the same error and closes the connection.
    """
    if transport.connected and not transport.disconnecting:
        transport.doWrite()


class TurnEndSender:
    """
    The transports this turn's reads wrote to, sent (L{sendNow}) in one
    delayed call of no delay: after every read of the turn, before the
    reactor polls again.

    @ivar reactor: the reactor whose turns it follows.
    """

    __slots__ = ("_call", "_pending", "reactor")

    def __init__(self, reactor: IReactorTime) -> None:
        self.reactor = reactor
        self._pending: set[Connection] = set()
        self._call: IDelayedCall | None = None

    def add(self, transport: Connection) -> None:
        """
        Send what C{transport} holds at this turn's end.
        """
        self._pending.add(transport)
        if self._call is None:
            self._call = self.reactor.callLater(0, self._sendAll)

    def _sendAll(self) -> None:
        pending = self._pending
        self._pending = set()
        self._call = None
        for transport in pending:
            sendNow(transport)


_current: TurnEndSender | None = None


def turnEndSender(reactor: IReactorTime) -> TurnEndSender:
    """
    The L{TurnEndSender} of C{reactor}: the one of the reactor last asked
    for (a process runs one reactor; tests may make many, each of which
    gets a sender of its own once asked, and an earlier sender still
    sends what it was given), found with one identity check per read.
    """
    global _current
    sender = _current
    if sender is None or sender.reactor is not reactor:
        sender = _current = TurnEndSender(reactor)
    return sender
