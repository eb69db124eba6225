# -*- test-case-name: tests.test_reader,tests.test_hixie76 -*-
"""
What every framing's reader shares: L{EventReader}, which turns a byte
stream into events and a protocol violation into the stream's last event,
and L{MessageBuffer}, which assembles a message's pieces with one join.
L{txclws._core.reader.MessageReader} (RFC 6455 and the hybi drafts) and
L{txclws._core.hixie76.Hixie76Reader} build on them.
"""

from __future__ import annotations

from txclws._core.errors import InvalidPayload, WebSocketProtocolError
from txclws._core.events import BinaryMessage, ConnectionFailed, Event, TextMessage

__all__ = ["EventReader", "MessageBuffer", "appendMessage"]


def appendMessage(events: list[Event], isText: bool, payload: bytes) -> None:
    """
    Add the event for a message that arrived whole in one frame.

    @raise InvalidPayload: a text message that is not UTF-8.
    """
    if isText:
        try:
            events.append(TextMessage(payload.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise InvalidPayload("text is not valid UTF-8") from exc
    else:
        events.append(BinaryMessage(payload))


class EventReader:
    """
    Turns a byte stream into events through its C{_parse}; a protocol
    violation ends the stream with a L{ConnectionFailed}, after which the
    reader ignores all input (RFC 6455 section 7.1.7).

    @ivar _done: a close frame or a failure ended the stream.
    """

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done = False

    @property
    def payloadAwaited(self) -> int:
        """
        How many bytes of the current frame's payload are still to come (0
        between frames, and for framings without lengths): the I/O layer
        may read that much at once.
        """
        return 0

    def feed(self, data: bytes) -> list[Event]:
        """
        Parse the next bytes of the stream.

        @return: the events the bytes complete, in order.  A
            L{ConnectionFailed} or L{CloseReceived} is always last; after
            it, this reader ignores all input.
        """
        if self._done:
            return []
        events: list[Event] = []
        try:
            self._parse(data, events)
        except WebSocketProtocolError as exc:
            self._done = True
            events.append(ConnectionFailed(exc.closeCode, str(exc)))
        return events

    def _parse(self, data: bytes, events: list[Event]) -> None:
        raise NotImplementedError


class MessageBuffer:
    """
    The unmasked pieces of a message being assembled, joined once at its
    end.  A piece may be a C{memoryview} of a buffer of its own (a large
    piece unmasked by NumPy, L{txclws._core.mask.unmaskPiece}): the join is
    then its one copy into the C{bytes} of the message.

    A piece of 4 KiB or more is kept as it is, so a large message costs
    one allocation of its full size, at the end (growing one buffer would
    reallocate it again and again, each time on fresh pages).  Smaller
    pieces are gathered into blocks of 64 KiB, so that a message arriving
    byte by byte costs no more memory than its bytes.
    """

    __slots__ = ("_parts", "_small", "size")

    #: Pieces at least this long are kept whole.
    PIECE = 4096
    #: Small pieces are gathered into blocks of this size.
    BLOCK = 65536

    def __init__(self) -> None:
        self._parts: list[bytes | memoryview] = []
        self._small = bytearray()
        self.size = 0

    def append(self, piece: bytes | memoryview) -> None:
        """
        Add the next piece.
        """
        self.size += len(piece)
        if len(piece) >= self.PIECE:
            if self._small:
                self._parts.append(bytes(self._small))
                self._small = bytearray()
            self._parts.append(piece)
            return
        small = self._small
        small += piece
        if len(small) >= self.BLOCK:
            self._parts.append(bytes(small))
            self._small = bytearray()

    def join(self) -> bytes:
        """
        The whole message (one piece is returned as it is, with no copy).
        """
        if self._small:
            self._parts.append(bytes(self._small))
            self._small = bytearray()
        parts = self._parts
        if len(parts) == 1:
            return bytes(parts[0])
        return b"".join(parts)
