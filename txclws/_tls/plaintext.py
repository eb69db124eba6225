# -*- test-case-name: tests.test_stdlibtls_reads -*-
"""
Reading plaintext out of an C{ssl.SSLObject} whole: L{readRecords} into
pieces (a small read), L{PlaintextBuffer} into one buffer (a large one, so
that its records are never joined).

Both read until neither the incoming BIO nor the C{SSLObject} holds
anything: a record whose last bytes arrive in a later TCP read is
decrypted whole by the C{SSL_read} that completes it, which returns only
as much as it was asked for and keeps the rest (C{SSLObject.pending()}),
which no more input may ever come to flush.
"""

from __future__ import annotations

import ssl
from typing import cast

__all__ = ["RECORD", "PlaintextBuffer", "readRecords"]

#: Plaintext bytes asked for per C{SSLObject.read}: one TLS record carries
#: at most 2**14 (RFC 8446 5.1), and each read returns at most one record.
RECORD = 1 << 14


def readRecords(
    tls: ssl.SSLObject, incoming: ssl.MemoryBIO, pieces: list[bytes]
) -> bool:
    """
    Read the whole records in C{incoming}, and any plaintext C{tls} holds,
    into C{pieces}; each read asks for no more than is there, so a small
    record costs no large allocation.

    @return: whether the peer's C{close_notify} came (C{SSLObject.read}
        returns C{b""} for it).
    @raise ssl.SSLError: as C{SSLObject.read}.
    """
    read, held = tls.read, tls.pending
    try:
        while True:
            size = incoming.pending or held()
            if not size:
                return False
            piece = read(min(size, RECORD))
            if not piece:
                return True
            pieces.append(piece)
    except ssl.SSLWantReadError:
        return False  # the rest of a record is still to come


class PlaintextBuffer:
    """
    The plaintext of one large TCP read, decrypted straight into one
    C{bytearray} sized for it: a record's plaintext is shorter than the
    record (RFC 8446 5.2, and TLS 1.2's AEAD records, RFC 5246 6.2.3.3).
    Should that ever not hold, what does not fit is read as C{bytes} and
    joined after.
    """

    __slots__ = ("_buffer", "_filled", "_overflow", "_view")

    def __init__(self, bound: int) -> None:
        """
        @param bound: the ciphertext that may be decrypted into it: the
            read's bytes and what the incoming BIO held before them.
        """
        self._buffer = bytearray(bound)
        self._view = memoryview(self._buffer)
        self._filled = 0
        self._overflow: list[bytes] = []

    def readFrom(self, tls: ssl.SSLObject, incoming: ssl.MemoryBIO) -> bool:
        """
        Read the whole records in C{incoming}, and any plaintext C{tls}
        holds, into the buffer.

        @return: whether the peer's C{close_notify} came.
        @raise ssl.SSLError: as C{SSLObject.read}.
        """
        read, held, view = tls.read, tls.pending, self._view
        filled = self._filled
        try:
            while incoming.pending or held():
                room = len(view) - filled
                if not room:
                    return readRecords(tls, incoming, self._overflow)
                # With a buffer, C{read} returns a count (typeshed says bytes).
                count = cast(int, read(min(room, RECORD), view[filled:]))
                if not count:
                    return True
                filled += count
        except ssl.SSLWantReadError:
            pass  # the rest of a record is still to come
        finally:
            self._filled = filled
        return False

    def take(self, asBytearray: bool) -> bytes | bytearray:
        """
        What was read, as one C{bytearray} (no copy) if C{asBytearray},
        else as C{bytes}; the buffer is spent.
        """
        self._view.release()
        buffer = self._buffer
        del buffer[self._filled :]
        if self._overflow:
            buffer += b"".join(self._overflow)
        return buffer if asBytearray else bytes(buffer)
