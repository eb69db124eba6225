"""
Frame builders and parsers for the tests, written independently of
L{txclws._core.frames} and L{txclws._core.mask}: plain C{struct} packing and a
byte-by-byte XOR, so that a test never checks the serialiser against itself.
"""

from __future__ import annotations

import struct

__all__ = [
    "BINARY",
    "CLOSE",
    "CONT",
    "MASK",
    "PING",
    "PONG",
    "TEXT",
    "clientFrame",
    "closePayload",
    "maskServerFrame",
    "parseServerFrames",
    "xorMask",
]

#: The masking key of the RFC 6455 section 5.7 examples.
MASK = b"\x37\xfa\x21\x3d"

#: Opcodes, spelled out here rather than imported from txclws.
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def xorMask(data: bytes, mask: bytes) -> bytes:
    """
    The RFC 6455 section 5.3 transformation, one byte at a time.
    """
    return bytes(byte ^ mask[index % 4] for index, byte in enumerate(data))


def _lengthField(length: int) -> tuple[int, bytes]:
    """
    The 7-bit length field and the extended length bytes for C{length}.
    """
    if length < 126:
        return length, b""
    if length < 0x10000:
        return 126, struct.pack("!H", length)
    return 127, struct.pack("!Q", length)


def clientFrame(
    opcode: int,
    payload: bytes,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
) -> bytes:
    """
    A client-to-server frame.

    @param rsv: the RSV1-3 bits already in place in the first byte
        (C{0x40} is RSV1, C{0x20} RSV2, C{0x10} RSV3).
    @param mask: the 4-byte masking key, or L{None} for an unmasked frame
        (which a server must refuse).
    """
    first = (0x80 if fin else 0) | rsv | opcode
    length7, extended = _lengthField(len(payload))
    if mask is None:
        return struct.pack("!BB", first, length7) + extended + payload
    second = 0x80 | length7
    return struct.pack("!BB", first, second) + extended + mask + xorMask(payload, mask)


def closePayload(code: int, reason: bytes = b"") -> bytes:
    """
    A close frame's payload: the code in network order, then the reason.
    """
    return struct.pack("!H", code) + reason


def parseServerFrames(data: bytes) -> list[tuple[bool, int, int, bytes]]:
    """
    Split a stream of unmasked server frames.

    @return: C{(fin, rsv, opcode, payload)} for each frame, C{rsv} being the
        RSV bits in place (C{0x40} is RSV1).
    @raise AssertionError: a frame is masked or the stream ends mid-frame.
    """
    frames = []
    pos = 0
    while pos < len(data):
        first, second = data[pos], data[pos + 1]
        assert not second & 0x80, "server frames are never masked"
        length = second & 0x7F
        pos += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        payload = data[pos : pos + length]
        assert len(payload) == length, "stream ends inside a frame"
        pos += length
        frames.append((bool(first & 0x80), first & 0x70, first & 0x0F, payload))
    return frames


def maskServerFrame(frame: bytes, mask: bytes) -> bytes:
    """
    Turn one unmasked (server) frame into the masked frame a client would
    send: set the MASK bit, insert the key, XOR the payload.
    """
    length = frame[1] & 0x7F
    headerSize = 2 + {126: 2, 127: 8}.get(length, 0)
    header = bytes((frame[0], frame[1] | 0x80)) + frame[2:headerSize]
    return header + mask + xorMask(frame[headerSize:], mask)
