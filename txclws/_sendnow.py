# -*- test-case-name: tests.test_sendnow -*-
"""
Sending the replies to a read in the reactor turn that read it.

Twisted's TCP transport buffers a write and sends it once C{epoll} reports
the socket writable, on the next reactor turn: an isolated round trip (one
message in, its answer out) then costs two turns, two C{epoll_wait} and two
C{epoll_ctl} calls besides its C{recv} and C{send}.  The transport's own
C{doWrite} (L{twisted.internet.interfaces.IWriteDescriptor}, a public
method) sends its buffer at once: the front door calls it once per read
that wrote anything, so the answer leaves before the reactor polls again,
and a read of many pipelined messages still sends once.
"""

from __future__ import annotations

from twisted.internet.tcp import Connection

__all__ = ["sendNow"]


def sendNow(transport: Connection) -> None:
    """
    Send what C{transport} buffered, now rather than on the next turn; not
    while it is disconnecting: its C{doWrite} would then close it, which
    only the reactor may act on (it is told by C{doWrite}'s return value).

    A failed send is left to the reactor too: C{doWrite} keeps the
    transport registered for writing, and the reactor's own next
    C{doWrite} meets the same error and closes the connection.
    """
    if not transport.disconnecting:
        transport.doWrite()
