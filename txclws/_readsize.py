# -*- test-case-name: tests.test_protocol,tests.test_largemessages -*-
"""
How much a TCP connection reads per C{recv}: Twisted's transports read
C{bufferSize} (64 KiB) at a time, a public per-instance attribute of
C{FileDescriptor}; while a large frame streams in, the front door raises it
to the rest of that frame and puts it back once the frame is in.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.abstract import FileDescriptor

from txclws._core.connection import WebSocketConnection

#: Twisted's TLS wrapper (C{ssl:}), if its TLS library is installed (txclws
#: imports without it).
_TWISTED_TLS: tuple[type, ...]
try:
    from twisted.protocols.tls import TLSMemoryBIOProtocol
except ImportError:
    _TWISTED_TLS = ()
else:
    _TWISTED_TLS = (TLSMemoryBIOProtocol,)

__all__ = [
    "LARGE_READ",
    "MAX_READ_SIZE",
    "MAX_SEND_SIZE",
    "chooseReadSize",
    "resizeReads",
]


#: The most a connection reads per C{recv} while a large frame streams in.
MAX_READ_SIZE = 1 << 20

#: What a connection that has received a large frame hands the kernel per
#: C{send} (Twisted's C{FileDescriptor.SEND_LIMIT}, 128 KiB by default).
MAX_SEND_SIZE = 1 << 20

#: Reads shorter than this cannot be part of a large frame that needs a
#: larger read size (the transport reads 64 KiB at a time by default), so
#: they skip the check: small messages pay one comparison.
LARGE_READ = 8192


def chooseReadSize(awaited: int, default: int) -> int:
    """
    How many bytes a connection should read per C{recv}: the rest of the
    frame being received (C{awaited} payload bytes, as its header
    announced), between the transport's C{default} and L{MAX_READ_SIZE}.

    Twisted's TCP transport reads C{bufferSize} (64 KiB) per C{recv}: a
    1 MiB message then costs 16 reads, each a reactor turn, a parse and a
    piece to join.  Reading the announced rest at once costs an idle or
    small-message connection nothing, since C{recv} allocates only per
    call.
    """
    return min(max(awaited, default), MAX_READ_SIZE)


def resizeReads(
    transport: Any, connection: WebSocketConnection | None, saved: int
) -> int:
    """
    Raise C{transport}'s C{bufferSize} to the rest of a large frame that
    C{connection} is receiving (L{WebSocketConnection.payloadAwaited}), or
    put it back once the frame is in.  Other transports than Twisted's
    C{FileDescriptor}s and its TLS are left alone (txclws' own TLS,
    L{txclws._tls}, resizes its own reads).

    C{bufferSize} is also the write buffer's high-water mark for a
    registered producer: it is raised only while a large frame streams
    in, by at most L{MAX_READ_SIZE}.

    Under Twisted's TLS (C{ssl:}, a C{TLSMemoryBIOProtocol}), the TCP
    transport below it (its C{transport}) is resized: what it reads is the
    frame's records, a little more than the frame.

    The first time, the transport's C{SEND_LIMIT} (what it hands the
    kernel per C{send}, 128 KiB) is raised to L{MAX_SEND_SIZE} for good: a
    peer that sends large messages is likely to be sent large ones (an
    echo, a reply), each of which would otherwise take one writability
    wait and reactor turn per 128 KiB.  Nothing is allocated for it: the
    transport sends a C{memoryview} slice of what it holds.

    @param saved: the transport's own read size while it is raised, else 0.
    @return: the new C{saved}.
    """
    if connection is None:
        return saved
    if isinstance(transport, _TWISTED_TLS):
        # Twisted's TLS (ssl:): the TCP transport below it reads and sends.
        transport = getattr(transport, "transport", None)
    if not isinstance(transport, FileDescriptor):
        return saved
    default = saved or transport.bufferSize
    size = chooseReadSize(connection.payloadAwaited, default)
    if size != transport.bufferSize:
        transport.bufferSize = size
        if size > default and transport.SEND_LIMIT < MAX_SEND_SIZE:
            transport.SEND_LIMIT = MAX_SEND_SIZE
    return default if size > default else 0
