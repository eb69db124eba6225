# -*- test-case-name: tests.test_mask -*-
"""
Masking and unmasking of frame payloads (RFC 6455 section 5.3).

Masking is an XOR of the payload with a 4-byte key repeated.  A per-byte
Python loop runs at a few MB/s, so it is never used.  Two whole-buffer ways
are:

  - pure Python: the payload and the repeated key read as two big
    integers and XORed in one C-level operation (about 4 ms per MiB here:
    the conversions to and from C{int} dominate);
  - NumPy, when installed (C{pip install txclws[speedups]}): the payload
    seen as 64-bit words XORed with the key doubled, about 0.15 ms per MiB.

Payloads under L{NUMPY_THRESHOLD} bytes take the first way even with NumPy,
since its per-call cost (a few microseconds) outweighs its speed there.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

_numpy: ModuleType | None
try:
    import numpy as _numpy
except ImportError:  # pragma: no cover - exercised by the fallback tests
    _numpy = None

__all__ = [
    "NUMPY_THRESHOLD",
    "applyMask",
    "maskedFrame",
    "rotateMask",
    "unmaskPiece",
    "usingNumpy",
]

#: Payloads at least this long are masked with NumPy when it is available.
NUMPY_THRESHOLD = 2048

_np: Any = _numpy


def usingNumpy() -> bool:
    """
    Whether large payloads are masked with NumPy.
    """
    return _np is not None


def applyMask(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """
    XOR C{data} with the 4-byte C{mask} repeated; masking and unmasking are
    the same operation.

    @param data: the payload, or a piece of it that starts at a multiple of
        4 bytes into the frame's payload (see L{rotateMask} otherwise).
    @param mask: the 4-byte masking key.
    @return: the (un)masked bytes.
    """
    length = len(data)
    if length >= NUMPY_THRESHOLD and _np is not None:
        result: bytes = _maskWords(data, mask, length).tobytes()
        return result
    if length == 0:
        return b""
    key = (mask * ((length >> 2) + 1))[:length]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(
        length, "little"
    )


def maskedFrame(
    head: bytes, payload: bytes | bytearray | memoryview, mask: bytes
) -> bytes:
    """
    C{head} (a frame's header and masking key) followed by C{payload}
    masked with C{mask} (RFC 6455 5.3), as one C{bytes}: with NumPy, a
    large payload is XORed straight into the frame's buffer, after the
    head, so that the frame is copied once, into its C{bytes}, and not
    once more to join it to its header.
    """
    length = len(payload)
    if length >= NUMPY_THRESHOLD and _np is not None:
        size = len(head)
        out = _np.empty(size + length, dtype=_np.uint8)
        out[:size] = _np.frombuffer(head, dtype=_np.uint8)
        _maskWords(payload, mask, length, out[size:])
        frame: bytes = out.tobytes()
        return frame
    return head + applyMask(payload, mask)


def unmaskPiece(
    data: bytes | bytearray | memoryview, mask: bytes
) -> bytes | memoryview:
    """
    (Un)mask like L{applyMask}, for a piece of a message that is copied
    anyway when the message is joined: a large piece is left in the NumPy
    buffer it was XORed into, seen through a C{memoryview} of exactly its
    bytes, rather than copied once more into a C{bytes}.

    @return: the (un)masked bytes, or a read-write C{memoryview} of them
        that shares nothing with C{data}.
    """
    length = len(data)
    if length >= NUMPY_THRESHOLD and _np is not None:
        return memoryview(_maskWords(data, mask, length))
    return applyMask(data, mask)


def _maskWords(
    data: bytes | bytearray | memoryview, mask: bytes, length: int, out: Any = None
) -> Any:
    """
    NumPy masking: whole 8-byte words at once, then the last few bytes,
    XORed from C{data} straight into one buffer (no copy of the input
    first): C{out}, a NumPy array of C{length} bytes (its words need not
    be aligned), or a new one.

    @return: the buffer.
    """
    np = _np
    body = (length >> 3) << 3
    if out is None:
        out = np.empty(length, dtype=np.uint8)
    # The key doubled is one 64-bit word, in the same byte order as the
    # payload's words, whatever the machine's endianness.
    key = np.frombuffer(mask * 2, dtype=np.uint64)
    np.bitwise_xor(
        np.frombuffer(data, dtype=np.uint64, count=body >> 3),
        key[0],
        out=out[:body].view(np.uint64),
    )
    if body < length:
        np.bitwise_xor(
            np.frombuffer(data, dtype=np.uint8, count=length)[body:],
            key.view(np.uint8)[: length - body],
            out=out[body:],
        )
    return out


def rotateMask(mask: bytes, offset: int) -> bytes:
    """
    The key that unmasks a piece of payload starting C{offset} bytes into
    the frame, so that a payload can be unmasked as it streams in.
    """
    shift = offset & 3
    if shift == 0:
        return mask
    return mask[shift:] + mask[:shift]
