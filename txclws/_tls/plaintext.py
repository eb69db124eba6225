# -*- test-case-name: tests.test_stdlibtls_reads -*-
"""
Reading plaintext out of an C{ssl.SSLObject} whole (L{decrypt}): a small
read's records into pieces (L{readRecords}), a large one's straight into
one buffer (L{PlaintextBuffer}), so that its records are never joined.

Both read until neither the incoming BIO nor the C{SSLObject} holds
anything: a record whose last bytes arrive in a later TCP read is
decrypted whole by the C{SSL_read} that completes it, which returns only
as much as it was asked for and keeps the rest (C{SSLObject.pending()}),
which no more input may ever come to flush.
"""

from __future__ import annotations

import ssl
from typing import NamedTuple, cast

from txclws._tls.slices import SLICE

__all__ = ["RECORD", "Decrypted", "PlaintextBuffer", "decrypt", "readRecords"]

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


class Decrypted(NamedTuple):
    """
    What one TCP read decrypted to.

    @ivar plaintext: the application data, in order.
    @ivar closed: the peer's C{close_notify} came after it.
    @ivar error: the TLS failure that came after it, or C{None}.
    """

    plaintext: bytes | bytearray
    closed: bool
    error: ssl.SSLError | None


def decrypt(
    tls: ssl.SSLObject, incoming: ssl.MemoryBIO, data: bytes, asBytearray: bool
) -> Decrypted:
    """
    Feed C{data}, a TCP read, to C{incoming} and read out the plaintext
    of every whole record: a large read (more than a slice, with what the
    BIO held) a slice at a time (the BIO keeps the largest size it held)
    into one L{PlaintextBuffer}, given as a C{bytearray} if C{asBytearray}.
    """
    if len(data) + incoming.pending <= SLICE:
        pieces: list[bytes] = []
        closed, error = False, None
        try:
            incoming.write(data)
            closed = readRecords(tls, incoming, pieces)
        except ssl.SSLZeroReturnError:
            closed = True
        except ssl.SSLError as failure:
            error = failure
        return Decrypted(
            pieces[0] if len(pieces) == 1 else b"".join(pieces), closed, error
        )
    plaintext = PlaintextBuffer(len(data) + incoming.pending)
    view = memoryview(data)
    closed, error = False, None
    try:
        for start in range(0, len(data), SLICE):
            incoming.write(view[start : start + SLICE])
            if plaintext.readFrom(tls, incoming):
                closed = True
                break
    except ssl.SSLZeroReturnError:
        closed = True
    except ssl.SSLError as failure:
        error = failure
    return Decrypted(plaintext.take(asBytearray), closed, error)
