# -*- test-case-name: tests.test_frames -*-
"""
RFC 6455 framing: opcodes, close codes, masking and frame serialisation.

Everything here is a pure function of its arguments.  Parsing lives in
L{txclws._core.reader}, which streams, and close payloads in L{txclws._core.close};
serialisation lives here because a server frame depends on nothing but the
message (server frames are never masked,
RFC 6455 section 5.1), which is what lets a broadcast frame a message once for
every client.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from struct import Struct

from txclws._core.mask import applyMask, maskedFrame

__all__ = [
    "CloseCode",
    "Opcode",
    "applyMask",
    "frameHeader",
    "serializeFrame",
    "serializeMessage",
]


class Opcode(IntEnum):
    """
    Frame opcodes (RFC 6455 section 5.2).
    """

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    """
    Close status codes (RFC 6455 section 7.4.1).
    """

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    #: Registered with IANA after RFC 6455 (its section 11.7 registry):
    #: "the service is restarted; reconnect".  Only the server's own drain
    #: sends it (L{txclws._core.close.serviceRestartPayload}); it is not
    #: valid from a peer, nor through C{close()}.
    SERVICE_RESTART = 1012
    TLS_HANDSHAKE = 1015


#: Largest payload of a control frame (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD = 125

_U16 = Struct("!H")
_U64 = Struct("!Q")


def serializeFrame(
    opcode: int,
    payload: bytes | memoryview,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
) -> bytes:
    """
    Serialise one frame.

    @param opcode: the frame's opcode.
    @param payload: the (unmasked) payload.
    @param fin: the FIN bit.
    @param rsv: the RSV1-3 bits, already shifted into place (C{0x40} is RSV1).
    @param mask: a 4-byte masking key (clients only), or C{None}.
    """
    first = (0x80 if fin else 0) | rsv | opcode
    if mask is not None:
        return maskedFrame(frameHeader(first, len(payload), 0x80) + mask, payload, mask)
    return frameHeader(first, len(payload)) + payload


def frameHeader(first: int, length: int, maskBit: int = 0) -> bytes:
    """
    A frame's header up to its masking key (RFC 6455 section 5.2): the
    first byte, the MASK bit and the payload length, in the shortest of
    the 7-, 16- and 64-bit forms.

    @param first: FIN, RSV1-3 and the opcode, in place.
    @param length: the payload's length.
    @param maskBit: C{0x80} for a masked frame (the key follows), else 0.
    """
    if length < 126:
        return bytes((first, maskBit | length))
    if length < 0x10000:
        return bytes((first, maskBit | 126)) + _U16.pack(length)
    return bytes((first, maskBit | 127)) + _U64.pack(length)


def serializeMessage(
    opcode: int,
    payload: bytes | memoryview,
    frameSize: int | None = None,
    rsv: int = 0,
    newMask: Callable[[], bytes] | None = None,
) -> bytes:
    """
    Serialise a whole message, fragmented if asked.

    @param opcode: L{Opcode.TEXT} or L{Opcode.BINARY}.
    @param payload: the message's bytes.
    @param frameSize: at most this many payload bytes per frame, or C{None}
        for a single frame.
    @param rsv: RSV bits of the first frame (RSV1 marks a compressed message,
        RFC 7692 section 6); continuation frames never carry them.
    @param newMask: for a client's message, returns a fresh 4-byte masking
        key, called once per frame (RFC 6455 5.3); C{None} for a server's,
        which is never masked (5.1).
    @raise ValueError: C{frameSize} is not a positive integer.
    """
    length = len(payload)
    if frameSize is None or length <= frameSize:
        if frameSize is not None and frameSize < 1:
            raise ValueError(f"frameSize must be positive, not {frameSize!r}")
        return serializeFrame(
            opcode, payload, True, rsv, None if newMask is None else newMask()
        )
    if frameSize < 1:
        raise ValueError(f"frameSize must be positive, not {frameSize!r}")
    view = memoryview(payload)
    parts = []
    for start in range(0, length, frameSize):
        end = start + frameSize
        parts.append(
            serializeFrame(
                opcode if start == 0 else Opcode.CONTINUATION,
                view[start:end],
                end >= length,
                rsv if start == 0 else 0,
                None if newMask is None else newMask(),
            )
        )
    return b"".join(parts)
