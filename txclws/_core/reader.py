# -*- test-case-name: tests.test_reader -*-
"""
Streaming parser of client frames into messages (RFC 6455 sections 5 and 6).

Bytes go in by L{MessageReader.feed} in pieces of any size; whole messages,
control frames and failures come out as events.  Work is linear in the bytes
fed, whatever the chunking: a payload is unmasked and checked as it arrives
and appended once to the message being assembled, and the only bytes kept
between two calls are those of an incomplete frame header (at most 13).

The hybi drafts 07 and 08 (C{Sec-WebSocket-Version} 7 and 8) frame exactly
as RFC 6455 does, so one reader serves all three versions: the same header
(their section 4.2 is RFC 6455 5.2: FIN, RSV1-3, a 4-bit opcode, MASK, the
7/16/64-bit length), the same client-to-server masking (4.3 is 5.3),
fragmentation (4.4 is 5.4), control frames of at most 125 bytes that are
never fragmented (4.5 is 5.5) and the same opcodes.  Only the close codes
differ: see L{txclws._core.close}.  What a client reads (the server's
unmasked frames) is in L{txclws._core.clientreader}; the streaming mode in
L{txclws._core.streamreader}.
"""

from __future__ import annotations

from txclws._core.close import parseClosePayload
from txclws._core.compression import IncomingCompression
from txclws._core.errors import (
    InvalidFrame,
    MessageTooBig,
)
from txclws._core.eventreader import EventReader, MessageBuffer, appendMessage
from txclws._core.events import (
    BinaryMessage,
    CloseReceived,
    Event,
    PingReceived,
    PongReceived,
    TextMessage,
)
from txclws._core.frames import Opcode
from txclws._core.mask import applyMask, rotateMask, unmaskPiece
from txclws._core.utf8 import Utf8Validator

__all__ = ["IncomingCompression", "MessageReader"]

# Plain ints for the hot path's comparisons, taken from the one definition.
_TEXT = int(Opcode.TEXT)
_BINARY = int(Opcode.BINARY)
_CLOSE = int(Opcode.CLOSE)
_PING = int(Opcode.PING)
_PONG = int(Opcode.PONG)
_RSV1 = 0x40
#: Payload pieces at least this long are sliced from the input as views,
#: not copied: the unmasking copies them once anyway.
_VIEW = 4096


def _payloadSlice(data: bytes, start: int, stop: int) -> bytes | memoryview:
    """
    C{data[start:stop]}, as a view of C{data} if at least L{_VIEW} long.
    """
    if stop - start < _VIEW:
        return data[start:stop]
    return memoryview(data)[start:stop]


class MessageReader(EventReader):
    """
    Assembles the frames of one client's byte stream into events.

    @ivar _pending: bytes of an incomplete frame header.
    @ivar _remaining: payload bytes of the current frame still to come, or
        C{-1} while reading a header.
    @ivar _messageOpcode: opcode of the data message being assembled, or
        C{0} between messages.
    @ivar _done: a close frame or a failure ended the stream; later bytes
        are discarded (RFC 6455 sections 5.5.1 and 7.1.7).
    @ivar _version: the C{Sec-WebSocket-Version} spoken, for the close
        codes it allows.
    """

    __slots__ = (
        "_compressed",
        "_compression",
        "_control",
        "_fin",
        "_mask",
        "_maxFrameSize",
        "_maxMessageSize",
        "_message",
        "_messageOpcode",
        "_offset",
        "_opcode",
        "_pending",
        "_remaining",
        "_rsv1",
        "_smallLimit",
        "_utf8",
        "_version",
    )

    #: A client's frames are masked (RFC 6455 5.1, 5.3): the MASK bit, the
    #: key size, the failure reason and the unmasking, chosen by the class.
    _MASK_BIT = 0x80
    _KEY_SIZE = 4
    _MASK_RULE = "client frame is not masked"
    _unmask = staticmethod(applyMask)
    _unmaskData = staticmethod(unmaskPiece)  # a data piece, for MessageBuffer
    #: Small masked frames take the one-check fast path (not for streaming).
    _fastPath = True

    def __init__(
        self,
        maxFrameSize: int,
        maxMessageSize: int,
        compression: IncomingCompression | None = None,
        version: int = 13,
    ) -> None:
        self._maxFrameSize = maxFrameSize
        self._version = version
        self._maxMessageSize = maxMessageSize
        # The fast path's bound on a 7-bit length: within both limits.
        small = min(maxFrameSize, maxMessageSize, 125) + 1
        self._smallLimit = small if self._fastPath else 0
        self._compression = compression
        super().__init__()
        self._pending = b""
        self._remaining = -1
        self._opcode = 0
        self._fin = True
        self._rsv1 = 0
        self._mask = b""
        self._offset = 0
        self._control = b""
        self._resetMessage()

    @property
    def payloadAwaited(self) -> int:
        """The frame's payload bytes still to come (RFC 6455 5.2), or 0."""
        return self._remaining if self._remaining > 0 else 0

    def _resetMessage(self) -> None:
        self._messageOpcode = 0
        self._message = MessageBuffer()
        self._utf8: Utf8Validator | None = None
        self._compressed = False

    def _parse(self, data: bytes, events: list[Event]) -> None:
        if self._pending:
            data = self._pending + data
            self._pending = b""
        pos = 0
        end = len(data)
        smallLimit = self._smallLimit
        while pos < end and not self._done:
            remaining = self._remaining
            if remaining < 0 and end - pos >= 6:
                # The common case, checked in one go: a whole, unfragmented,
                # uncompressed text or binary frame with a 7-bit length
                # (FIN set, RSV clear, MASK set), outside a fragmented
                # message and within the limits.  Anything else takes the
                # general path below, which applies every rule.
                first = data[pos]
                second = data[pos + 1]
                stop = pos + 6 + second - 0x80
                if (
                    (first == 0x81 or first == 0x82)
                    and 0x80 <= second < 0x80 + smallLimit
                    and stop <= end
                    and not self._messageOpcode
                ):
                    payload = applyMask(data[pos + 6 : stop], data[pos + 2 : pos + 6])
                    pos = stop
                    appendMessage(events, first == 0x81, payload)
                    continue
            if remaining >= 0:
                # The rest of a frame whose payload began in an earlier call.
                take = min(remaining, end - pos)
                self._payloadPiece(_payloadSlice(data, pos, pos + take))
                pos += take
                self._remaining = remaining - take
                if take == remaining:
                    self._remaining = -1
                    self._frameEnd(events)
                continue
            start = pos
            pos = self._readHeader(data, pos, end)
            if pos < 0:
                self._pending = data[start:]
                return
            length = self._remaining
            if end - pos < length:
                # Only part of the payload is here: stream it.
                self._startPartialFrame()
                continue
            self._remaining = -1
            payload = self._unmask(_payloadSlice(data, pos, pos + length), self._mask)
            pos += length
            self._wholeFrame(payload, events)

    def _readHeader(self, data: bytes, pos: int, end: int) -> int:
        """
        Parse and check a frame header at C{pos}.

        @return: the position of the payload, or C{-1} when the header is
            not all here yet.
        """
        if end - pos < 2:
            return -1
        first = data[pos]
        second = data[pos + 1]
        opcode = first & 0x0F
        self._checkHeader(first, second, opcode)
        length = second & 0x7F
        # The header: 2 bytes, the 16- or 64-bit length, the masking key.
        keySize = self._KEY_SIZE
        if length < 126:
            size = 2 + keySize
        elif length == 126:
            size = 4 + keySize
        else:
            size = 10 + keySize
        if end - pos < size:
            return -1
        if length == 126:
            length = (data[pos + 2] << 8) | data[pos + 3]
        elif length == 127:
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            if length >> 63:
                raise InvalidFrame("64-bit length with its high bit set")
        if opcode < 8:
            self._checkDataLength(opcode, first, length)
        self._opcode = opcode
        self._fin = first >= 0x80
        self._rsv1 = first & _RSV1
        self._mask = data[pos + size - keySize : pos + size]
        self._remaining = length
        return pos + size

    def _checkHeader(self, first: int, second: int, opcode: int) -> None:
        """
        Apply RFC 6455 section 5.2's rules to the first two header bytes.
        """
        if second & 0x80 != self._MASK_BIT:
            raise InvalidFrame(self._MASK_RULE)  # RFC 6455 5.1
        rsv = first & 0x70
        if opcode >= 8:
            if opcode > _PONG:
                raise InvalidFrame(f"unknown opcode {opcode}")
            if first < 0x80:
                raise InvalidFrame("fragmented control frame")  # 5.5
            if second & 0x7F > 125:
                raise InvalidFrame("control frame payload over 125 bytes")
            if rsv:
                raise InvalidFrame("reserved bits set on a control frame")
        elif opcode == 0:
            if not self._messageOpcode:
                raise InvalidFrame("continuation frame outside a message")
            if rsv:
                # RFC 7692 6.1: RSV1 only on a message's first frame.
                raise InvalidFrame("reserved bits set on a continuation frame")
        elif opcode <= _BINARY:
            if self._messageOpcode:
                raise InvalidFrame("new message inside a fragmented message")
            if rsv and (rsv != _RSV1 or self._compression is None):
                raise InvalidFrame("reserved bits set without an extension")
        else:
            raise InvalidFrame(f"unknown opcode {opcode}")

    def _checkDataLength(self, opcode: int, first: int, length: int) -> None:
        if length > self._maxFrameSize:
            raise MessageTooBig(f"frame of {length} bytes is over the limit")
        compressed = first & _RSV1 if opcode else self._compressed
        # A compressed message is measured as it inflates, in _dataPiece.
        if not compressed and self._message.size + length > self._maxMessageSize:
            raise MessageTooBig("message is over the size limit")

    def _startPartialFrame(self) -> None:
        self._offset = 0
        if self._opcode >= 8:
            self._control = b""
        elif self._opcode:
            self._startMessage(self._opcode)

    def _startMessage(self, opcode: int) -> None:
        self._messageOpcode = opcode
        self._compressed = bool(self._rsv1)
        if opcode == _TEXT:
            self._utf8 = Utf8Validator()

    def _payloadPiece(self, masked: bytes | memoryview) -> None:
        """
        Unmask and consume a piece of a payload that streams in.
        """
        key = rotateMask(self._mask, self._offset)
        self._offset += len(masked)
        if self._opcode >= 8:
            self._control += self._unmask(masked, key)
        else:
            self._dataPiece(self._unmaskData(masked, key))

    def _dataPiece(self, piece: bytes | memoryview) -> None:
        if self._compressed:
            assert self._compression is not None
            limit = self._maxMessageSize - self._message.size
            piece = self._compression.decompress(piece, limit)
        if self._utf8 is not None:
            self._utf8.feed(piece)
        self._message.append(piece)

    def _frameEnd(self, events: list[Event]) -> None:
        """
        A frame whose payload streamed in is complete.
        """
        if self._opcode >= 8:
            self._controlFrame(self._opcode, self._control, events)
            self._control = b""
        elif self._fin:
            self._endMessage(events)

    def _wholeFrame(self, payload: bytes, events: list[Event]) -> None:
        """
        A frame whose payload arrived in one piece, already unmasked.
        """
        opcode = self._opcode
        if opcode >= 8:
            self._controlFrame(opcode, payload, events)
            return
        if opcode and self._fin and not self._rsv1:
            # A whole, uncompressed, unfragmented message.
            appendMessage(events, opcode == _TEXT, payload)
            return
        if opcode:
            self._startMessage(opcode)
        self._dataPiece(payload)
        if self._fin:
            self._endMessage(events)

    def _endMessage(self, events: list[Event]) -> None:
        if self._compressed:
            assert self._compression is not None
            limit = self._maxMessageSize - self._message.size
            tail = self._compression.endMessage(limit)
            if tail:
                if self._utf8 is not None:
                    self._utf8.feed(tail)
                self._message.append(tail)
        message = self._message.join()
        if self._messageOpcode == _TEXT:
            assert self._utf8 is not None
            self._utf8.finish()
            events.append(TextMessage(message.decode("utf-8")))
        else:
            events.append(BinaryMessage(message))
        self._resetMessage()

    def _controlFrame(self, opcode: int, payload: bytes, events: list[Event]) -> None:
        payload = bytes(payload)
        if opcode == _PING:
            events.append(PingReceived(payload))
        elif opcode == _PONG:
            events.append(PongReceived(payload))
        else:
            code, reason = parseClosePayload(payload, self._version)
            self._done = True
            events.append(CloseReceived(code, reason))
