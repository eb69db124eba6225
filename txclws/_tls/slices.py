# -*- test-case-name: tests.test_stdlibtls -*-
"""
How much L{txclws._tls.protocol.StdlibTLSProtocol} moves at a time: TCP
reads that grow while data streams in, and encryption a slice at a time
(a memory BIO keeps the largest size it ever held).
"""

from __future__ import annotations

import ssl
from typing import Any

from twisted.internet.abstract import FileDescriptor

__all__ = ["MAX_TLS_READ", "RECORD", "SLICE", "adaptReads", "seal"]

#: The most a TLS connection reads per C{recv} while data streams in; it
#: starts at the transport's own C{bufferSize} (64 KiB) and grows 4x for
#: each read that filled it, back to the start after one that did not.
MAX_TLS_READ = 1 << 20

#: Plaintext bytes asked for per C{SSLObject.read}: one TLS record carries
#: at most 2**14 (RFC 8446 5.1), and each read returns at most one record.
RECORD = 1 << 14

#: Bytes encrypted, or fed to the incoming BIO, at a time.
SLICE = 1 << 14


def seal(
    tls: ssl.SSLObject, outgoing: ssl.MemoryBIO, data: bytes, out: list[bytes]
) -> None:
    """
    Encrypt C{data} with C{tls} a slice at a time, each slice's records
    read out of C{outgoing} into C{out} at once: a memory BIO keeps the
    largest size it ever held (measured: 1.1 MiB per connection after one
    1 MiB write at once), so it never holds more than a slice.
    """
    if len(data) <= SLICE:
        tls.write(data)
    else:
        view = memoryview(data)
        for start in range(0, len(data), SLICE):
            tls.write(view[start : start + SLICE])
            out.append(outgoing.read())
    if outgoing.pending:
        out.append(outgoing.read())


def adaptReads(transport: Any, size: int, default: int) -> int:
    """
    Read more per C{recv} while large data streams in: a read of C{size}
    bytes that filled C{transport}'s C{bufferSize} raises it 4x (up to
    L{MAX_TLS_READ}); a shorter one puts it back to C{default} (the
    transport's own; 0: not known yet).

    @return: the transport's own read size.
    """
    if not isinstance(transport, FileDescriptor):
        return default
    current = transport.bufferSize
    default = default or current
    if size >= current and current < MAX_TLS_READ:
        transport.bufferSize = min(current * 4, MAX_TLS_READ)
    elif size < current and current != default:
        transport.bufferSize = default
    return default
