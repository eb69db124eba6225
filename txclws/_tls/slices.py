# -*- test-case-name: tests.test_stdlibtls,tests.test_stdlibtls_reads -*-
"""
How much L{txclws._tls.protocol.StdlibTLSProtocol} moves at a time: TCP
reads that grow while data streams in, and encryption a slice at a time
(a memory BIO keeps the largest size it ever held).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

from twisted.internet.abstract import FileDescriptor

__all__ = ["MAX_TLS_READ", "MAX_TLS_SEND", "SLICE", "adaptReads", "seal"]

#: The most a TLS connection reads per C{recv} while data streams in; it
#: starts at the transport's own C{bufferSize} (64 KiB) and grows 4x for
#: each read that filled it, back to the start after one that did not.
MAX_TLS_READ = 1 << 20

#: What a TLS connection that has read large data hands the kernel per
#: C{send} (Twisted's C{FileDescriptor.SEND_LIMIT} is 128 KiB).
MAX_TLS_SEND = 1 << 20

#: Bytes encrypted, or fed to the incoming BIO, at a time.
SLICE = 1 << 14


def seal(
    tls: ssl.SSLObject,
    outgoing: ssl.MemoryBIO,
    pieces: Sequence[bytes | memoryview],
) -> list[bytes]:
    """
    Encrypt C{pieces}, in order, with C{tls}, L{SLICE} bytes at a time:
    small pieces are joined so that they share records, and a large one
    is cut in place (C{memoryview} slices, its first one topped up with
    what was held before it), never joined whole; each slice's records
    are read out of C{outgoing} at once, as a memory BIO keeps the
    largest size it ever held (measured: 1.1 MiB per connection after one
    1 MiB write at once).

    @return: the records, in order.
    """
    write, read = tls.write, outgoing.read
    out: list[bytes] = []
    held: list[bytes | memoryview] = []
    heldSize = 0
    for piece in pieces:
        size = len(piece)
        if heldSize + size <= SLICE:
            held.append(piece)
            heldSize += size
            continue
        view = memoryview(piece)
        start = 0
        if held:
            start = SLICE - heldSize
            held.append(view[:start])
            write(b"".join(held))
            out.append(read())
        while size - start > SLICE:
            write(view[start : start + SLICE])
            out.append(read())
            start += SLICE
        held = [view[start:]]
        heldSize = size - start
    if heldSize:
        write(held[0] if len(held) == 1 else b"".join(held))
    if outgoing.pending:
        out.append(read())
    return out


def adaptReads(transport: Any, size: int, default: int) -> int:
    """
    Read more per C{recv} while large data streams in: a read of C{size}
    bytes that filled C{transport}'s C{bufferSize} raises it 4x (up to
    L{MAX_TLS_READ}); a shorter one puts it back to C{default} (the
    transport's own; 0: not known yet).

    The first raise also raises the transport's C{SEND_LIMIT} (what it
    hands the kernel per C{send}, 128 KiB) to L{MAX_TLS_SEND} for good, as
    L{txclws._readsize.resizeReads} does for plain TCP: a peer that sends
    large data is likely to be sent large data, each 128 KiB of which
    would otherwise take a writability wait and a reactor turn of its own.

    @return: the transport's own read size.
    """
    if not isinstance(transport, FileDescriptor):
        return default
    current = transport.bufferSize
    default = default or current
    if size >= current and current < MAX_TLS_READ:
        transport.bufferSize = min(current * 4, MAX_TLS_READ)
        if transport.SEND_LIMIT < MAX_TLS_SEND:
            transport.SEND_LIMIT = MAX_TLS_SEND
    elif size < current and current != default:
        transport.bufferSize = default
    return default
