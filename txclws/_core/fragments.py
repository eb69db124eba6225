# -*- test-case-name: tests.test_streamreader -*-
"""
One message sent as it comes, fragment by fragment (RFC 6455 section 5.4):
L{MessageFramer}.

The first frame carries the message's opcode without FIN, every later one
is a CONTINUATION frame, the last has FIN set.  With permessage-deflate
(RFC 7692 section 6.1) the whole message is one compressed payload: each
fragment carries what the message's compressor gave for the data so far,
RSV1 is set on the first frame only, and the last frame ends with a sync
flush less its C{00 00 ff ff} (section 7.2.1).  A fragment the compressor
gave nothing for is not sent.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Protocol

from txclws._core.frames import Opcode, serializeFrame

__all__ = ["IMessageFramer", "MessageFramer"]

_RSV1 = 0x40
_TRAILER = b"\x00\x00\xff\xff"


class IMessageFramer(Protocol):
    """
    What frames one message sent as it comes, for one protocol.
    """

    def frame(self, piece: bytes | memoryview) -> bytes:
        """
        The bytes that carry the next piece, not the last.
        """

    def end(self, piece: bytes | memoryview = b"") -> bytes:
        """
        The bytes that carry the last piece and end the message.
        """


class MessageFramer:
    """
    Frames one message piece by piece.

    @ivar _opcode: the opcode of the next frame: the message's until its
        first frame is out, then CONTINUATION.
    @ivar _rsv: the RSV bits of the next frame (RSV1 on a compressed
        message's first frame only).
    """

    __slots__ = ("_compressor", "_newMask", "_opcode", "_rsv")

    def __init__(
        self,
        opcode: int,
        compressor: zlib._Compress | None = None,
        newMask: Callable[[], bytes] | None = None,
    ) -> None:
        """
        @param opcode: L{Opcode.TEXT} or L{Opcode.BINARY}.
        @param compressor: the message's deflate compressor (raw, RFC 7692),
            or C{None} to send it uncompressed.
        @param newMask: a fresh masking key per frame, for a client's
            message (RFC 6455 5.3); C{None} for a server's.
        """
        self._opcode = opcode
        self._compressor = compressor
        self._newMask = newMask
        self._rsv = _RSV1 if compressor is not None else 0

    def frame(self, piece: bytes | memoryview) -> bytes:
        """
        The frame that carries the next piece, not the last (no FIN);
        C{b""} when there is nothing to send for it.
        """
        if self._compressor is not None:
            piece = self._compressor.compress(piece)
        if not piece:
            return b""
        return self._frame(piece, False)

    def end(self, piece: bytes | memoryview = b"") -> bytes:
        """
        The message's last frame (FIN), with its last piece.
        """
        compressor = self._compressor
        if compressor is not None:
            data = compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)
            piece = data[:-4] if data.endswith(_TRAILER) else data
        return self._frame(piece, True)

    def _frame(self, payload: bytes | memoryview, fin: bool) -> bytes:
        newMask = self._newMask
        data = serializeFrame(
            self._opcode,
            payload,
            fin,
            self._rsv,
            None if newMask is None else newMask(),
        )
        self._opcode = Opcode.CONTINUATION
        self._rsv = 0
        return data
