# -*- test-case-name: tests.test_mask -*-
"""
Masking and unmasking of frame payloads (RFC 6455 section 5.3).

Masking is an XOR of the payload with a 4-byte key repeated.  A per-byte
Python loop runs at a few MB/s; instead the payload and the repeated key are
read as two big integers and XORed in one C-level operation, which runs at
hundreds of MB/s and costs one pass over the data.
"""

from __future__ import annotations

__all__ = ["applyMask", "rotateMask"]


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
    if length == 0:
        return b""
    key = (mask * ((length >> 2) + 1))[:length]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(
        length, "little"
    )


def rotateMask(mask: bytes, offset: int) -> bytes:
    """
    The key that unmasks a piece of payload starting C{offset} bytes into
    the frame, so that a payload can be unmasked as it streams in.
    """
    shift = offset & 3
    if shift == 0:
        return mask
    return mask[shift:] + mask[:shift]
