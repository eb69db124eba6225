# -*- test-case-name: tests.test_streamreader -*-
"""
The streaming mode of the frame reader: a data message's payload comes out
as it arrives, as L{MessageStarted}, L{MessageData} pieces and
L{MessageEnded}, instead of one whole L{TextMessage} or L{BinaryMessage}.

The mode is chosen once, by the reader's class
(L{WebSocketConnection.streamMessages} swaps it in before the first byte),
so the whole-message path tests nothing more per frame.  Every rule of
L{MessageReader} holds: the framing checks of RFC 6455 section 5, masking
by role, C{maxFrameSize}; each piece is unmasked, inflated (RFC 7692) and,
for a text message, checked and decoded incrementally (RFC 6455 8.1: a text
piece is a C{str} that ends at a code point, the bytes of a split code point
held back until it completes).  The message size limit is the one the
reader is built with: a streaming resource's own, or none.

Memory: nothing of a message is kept but a split code point (at most 3
bytes) and the inflater's window.  What one C{feed} inflates to is bounded
by the compressed bytes fed (deflate expands at most about 1,032 times).
"""

from __future__ import annotations

from txclws._core.events import Event, MessageData, MessageEnded, MessageStarted
from txclws._core.mask import applyMask
from txclws._core.reader import IncomingCompression, MessageReader

__all__ = ["UNLIMITED", "StreamingMessageReader"]

#: The size limit of a streamed message for which none is set: beyond any
#: message's size, and within what zlib takes as an output bound.
UNLIMITED = 1 << 62


class StreamingMessageReader(MessageReader):
    """
    Reads a client's frames, streaming each data message.

    @ivar _events: the events of the current C{feed}, where the pieces of
        a payload go as they are consumed.
    """

    __slots__ = ("_events",)

    _fastPath = False  # it makes whole-message events
    #: A piece is an event's C{bytes} as it is: unmasked into C{bytes}.
    _unmaskData = staticmethod(applyMask)

    def __init__(
        self,
        maxFrameSize: int,
        maxMessageSize: int,
        compression: IncomingCompression | None = None,
        version: int = 13,
    ) -> None:
        super().__init__(maxFrameSize, maxMessageSize, compression, version)
        self._events: list[Event] = []

    def _parse(self, data: bytes, events: list[Event]) -> None:
        self._events = events
        try:
            super()._parse(data, events)
        finally:
            self._events = []

    def _startMessage(self, opcode: int) -> None:
        super()._startMessage(opcode)
        self._events.append(MessageStarted(opcode))

    def _wholeFrame(self, payload: bytes, events: list[Event]) -> None:
        """
        A frame whose payload arrived in one piece: a data frame is one
        piece of its message, like any other.
        """
        opcode = self._opcode
        if opcode >= 8:
            self._controlFrame(opcode, payload, events)
            return
        if opcode:
            self._startMessage(opcode)
        self._dataPiece(payload)
        if self._fin:
            self._endMessage(events)

    def _dataPiece(self, piece: bytes | memoryview) -> None:
        message = self._message
        if self._compressed:
            assert self._compression is not None
            piece = self._compression.decompress(
                piece, self._maxMessageSize - message.size
            )
        # Unmasked into bytes (_unmaskData): bytes() returns it as it is.
        self._deliver(bytes(piece))

    def _deliver(self, piece: bytes) -> None:
        """
        Count C{piece} against the size limit and report it (decoded, for
        text), unless it is empty.
        """
        self._message.size += len(piece)
        data: str | bytes = piece
        if self._utf8 is not None:
            data = self._utf8.decode(piece)
        if data:
            self._events.append(MessageData(data))

    def _endMessage(self, events: list[Event]) -> None:
        if self._compressed:
            assert self._compression is not None
            tail = self._compression.endMessage(
                self._maxMessageSize - self._message.size
            )
            self._deliver(tail)
        if self._utf8 is not None:
            self._utf8.finish()
        events.append(MessageEnded())
        self._resetMessage()
