# -*- test-case-name: tests.test_hixie76 -*-
"""
draft-hixie-thewebsocketprotocol-76 (the same protocol as
draft-ietf-hybi-thewebsocketprotocol-00): the handshake's challenge, the
framing, the closing handshake.  Off unless the factory's
C{protocol76Support} is set; only browsers of 2010-2011 speak it.

Framing (hixie-76 section 4.2 / 5.3): a text frame is C{0x00}, UTF-8 bytes,
C{0xFF}; a frame whose type byte has its high bit set carries a base-128
length and is discarded, except C{0xFF 0x00}, the closing frame.  There are
no binary messages, no pings and no close codes.
"""

from __future__ import annotations

from hashlib import md5
from struct import pack
from typing import Protocol

from txclws._core.connection import WebSocketConnection
from txclws._core.errors import (
    HandshakeError,
    MessageTooBig,
    UnsupportedByProtocol,
)
from txclws._core.eventreader import EventReader
from txclws._core.events import CloseReceived, Event, TextMessage
from txclws._core.frames import CloseCode, Opcode
from txclws._core.utf8 import Utf8Validator

__all__ = [
    "BODY_SIZE",
    "CLOSING_FRAME",
    "Hixie76Connection",
    "Hixie76Reader",
    "hixie76Challenge",
    "hixie76Keys",
    "hixie76Location",
    "hixie76Response",
    "startHixie76",
]

#: The bytes of the challenge that follow the request head (hixie-76 5.1).
BODY_SIZE = 8


class _Headers(Protocol):
    """
    What L{hixie76Keys} reads: a L{txclws._core.request.RequestHeaders}.
    """

    def count(self, name: str) -> int: ...

    def __getitem__(self, name: str) -> str: ...


#: The closing frame, both ways (hixie-76 section 4.2).
CLOSING_FRAME = b"\xff\x00"

_TYPE, _TEXT, _LENGTH, _SKIP = range(4)


def _keyNumber(key: str) -> int:
    """
    The number a C{Sec-WebSocket-Key1}/C{Key2} encodes (hixie-76 section
    5.2): its digits read as a number, divided by its count of spaces.

    @raise HandshakeError: 400 when it has no spaces, no digits, does not
        divide evenly (the handshake must then be aborted), or its digits
        make a number over 4,294,967,295, which no client makes (section
        4.1: the key number is a multiple of the spaces no larger than
        that) and whose quotient could need more than the 32 bits the
        challenge gives it.
    """
    digits = "".join(ch for ch in key if "0" <= ch <= "9")
    spaces = key.count(" ")
    if not digits or spaces == 0:
        raise HandshakeError(400, "malformed Sec-WebSocket-Key1/Key2")
    # Bounded before int(): a header of thousands of digits is no key, and
    # int() of a huge digit string costs quadratic time.
    if len(digits.lstrip("0")) > 10:
        raise HandshakeError(400, "malformed Sec-WebSocket-Key1/Key2")
    number = int(digits)
    if number > 0xFFFFFFFF or number % spaces:
        raise HandshakeError(400, "malformed Sec-WebSocket-Key1/Key2")
    return number // spaces


def hixie76Keys(headers: _Headers) -> tuple[str, str]:
    """
    The C{Sec-WebSocket-Key1} and C{Key2} of a hixie-76 request head.

    @raise HandshakeError: 400 unless each is sent exactly once.
    """
    if (
        headers.count("Sec-WebSocket-Key1") != 1
        or headers.count("Sec-WebSocket-Key2") != 1
    ):
        raise HandshakeError(400, "hixie-76 needs one Key1 and one Key2")
    return headers["Sec-WebSocket-Key1"], headers["Sec-WebSocket-Key2"]


def hixie76Location(host: str, target: str, isTLS: bool) -> str:
    """
    The C{Sec-WebSocket-Location} of a resource: its URL as the client
    asked for it (hixie-76 section 5.2).
    """
    return f"{'wss' if isTLS else 'ws'}://{host}{target}"


def startHixie76(
    keys: tuple[str, str],
    body: bytes,
    location: str,
    origin: str | None,
    subprotocol: str | None,
    maxFrameSize: int,
    maxMessageSize: int,
) -> tuple[bytes, Hixie76Connection, bytes]:
    """
    Answer a hixie-76 handshake whose body has arrived.

    @param body: the bytes after the head, at least L{BODY_SIZE} of them.
    @return: the 101 response, the connection, and the bytes after the
        challenge (the start of the client's frames).
    @raise HandshakeError: 400 for a malformed key.
    """
    challenge = hixie76Challenge(*keys, body[:BODY_SIZE])
    response = hixie76Response(challenge, origin, location, subprotocol)
    connection = Hixie76Connection(maxFrameSize, maxMessageSize)
    return response, connection, body[BODY_SIZE:]


def hixie76Challenge(key1: str, key2: str, key3: bytes) -> bytes:
    """
    The 16-byte answer to a hixie-76 handshake: MD5 of the two key numbers
    (big-endian, 32 bits each) followed by the 8 bytes after the head.

    @raise HandshakeError: 400 for a malformed key.
    """
    if len(key3) != 8:
        raise HandshakeError(400, "the handshake needs 8 bytes after the head")
    return md5(pack("!II", _keyNumber(key1), _keyNumber(key2)) + key3).digest()


def hixie76Response(
    challenge: bytes,
    origin: str | None,
    location: str,
    subprotocol: str | None = None,
) -> bytes:
    """
    The bytes of the 101 answer to a hixie-76 handshake.

    @param challenge: the L{hixie76Challenge} answer.
    @param origin: the client's C{Origin}, echoed in C{Sec-WebSocket-Origin}.
    @param location: the URL of the resource, e.g. C{ws://host/chat?x}.
    @raise HandshakeError: 400 when C{location} is not ASCII (a URI is,
        RFC 3986 section 2; the client compares it with the one it
        opened), rather than an encoding error while answering.
    """
    if not location.isascii():
        raise HandshakeError(400, "the resource's location is not ASCII")
    lines = [
        "HTTP/1.1 101 WebSocket Protocol Handshake",
        "Upgrade: WebSocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Origin: {origin if origin is not None else 'null'}",
        f"Sec-WebSocket-Location: {location}",
    ]
    if subprotocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + challenge


class Hixie76Reader(EventReader):
    """
    Streaming parser of hixie-76 frames into events; the same contract as
    L{txclws._core.reader.MessageReader.feed}.

    @ivar _mode: C{_TYPE} (awaiting a frame type byte), C{_TEXT} (inside a
        sentinel-delimited frame), C{_LENGTH} (reading a base-128 length),
        C{_SKIP} (discarding a length-prefixed frame).
    """

    __slots__ = (
        "_frameType",
        "_length",
        "_maxSize",
        "_mode",
        "_text",
        "_utf8",
    )

    def __init__(self, maxMessageSize: int) -> None:
        super().__init__()
        self._maxSize = maxMessageSize
        self._mode = _TYPE
        self._frameType = 0
        self._length = 0
        self._text = bytearray()
        self._utf8: Utf8Validator | None = None

    def _parse(self, data: bytes, events: list[Event]) -> None:
        pos = 0
        end = len(data)
        while pos < end and not self._done:
            mode = self._mode
            if mode == _TYPE:
                self._startFrame(data[pos])
                pos += 1
            elif mode == _TEXT:
                pos = self._textBytes(data, pos, end, events)
            elif mode == _LENGTH:
                self._lengthByte(data[pos], events)
                pos += 1
            else:
                take = min(self._length, end - pos)
                pos += take
                self._length -= take
                if not self._length:
                    self._mode = _TYPE

    def _startFrame(self, frameType: int) -> None:
        self._frameType = frameType
        if frameType & 0x80:
            self._mode = _LENGTH
            self._length = 0
        else:
            self._mode = _TEXT
            self._text = bytearray()
            # Only type 0x00 is text; other sentinel frames are discarded.
            self._utf8 = Utf8Validator() if frameType == 0 else None

    def _textBytes(self, data: bytes, pos: int, end: int, events: list[Event]) -> int:
        stop = data.find(b"\xff", pos, end)
        chunk = data[pos : stop if stop >= 0 else end]
        if self._utf8 is not None:
            if len(self._text) + len(chunk) > self._maxSize:
                raise MessageTooBig("text frame is over the size limit")
            self._utf8.feed(chunk)
            self._text += chunk
        elif len(chunk) + self._length > self._maxSize:
            raise MessageTooBig("frame is over the size limit")
        else:
            self._length += len(chunk)
        if stop < 0:
            return end
        if self._utf8 is not None:
            self._utf8.finish()
            events.append(TextMessage(self._text.decode("utf-8")))
        self._mode = _TYPE
        self._length = 0
        self._text = bytearray()
        self._utf8 = None
        return stop + 1

    def _lengthByte(self, byte: int, events: list[Event]) -> None:
        self._length = self._length * 128 + (byte & 0x7F)
        if self._length > self._maxSize:
            raise MessageTooBig("frame is over the size limit")
        if byte & 0x80:
            return
        if self._frameType == 0xFF and self._length == 0:
            self._done = True
            events.append(CloseReceived(CloseCode.NO_STATUS_RCVD, ""))
        self._mode = _SKIP if self._length else _TYPE


class Hixie76Framer:
    """
    One hixie-76 text message, sent as it comes: C{0x00}, the pieces, and
    C{0xFF} (hixie-76 4.2).
    """

    __slots__ = ("_started",)

    def __init__(self) -> None:
        self._started = False

    def frame(self, piece: bytes | memoryview) -> bytes:
        """
        The next piece, after the start byte if it is the first.
        """
        if self._started:
            return bytes(piece)
        self._started = True
        return b"\x00" + piece

    def end(self, piece: bytes | memoryview = b"") -> bytes:
        """
        The last piece and the end byte.
        """
        return self.frame(piece) + b"\xff"


class Hixie76Connection(WebSocketConnection):
    """
    A hixie-76 connection: the same state machine and events as
    L{WebSocketConnection}, with hixie-76 framing.

    Text only: C{frameBinary} and C{framePing} raise L{UnsupportedByProtocol}
    (L{frameMessage} has no frame for a binary message), and a broadcast of
    binary data skips these clients.
    """

    __slots__ = ()

    canPing = False
    #: A message is read whole (L{Hixie76Reader}); a streaming resource is
    #: given it as one piece.
    streamingReaderClass = None

    def __init__(self, maxFrameSize: int, maxMessageSize: int) -> None:
        super().__init__(maxFrameSize, maxMessageSize, version=0)
        self._wireKey = "hixie76"
        # hixie-76 has no frames beyond messages: one limit covers both.
        self._reader = Hixie76Reader(min(maxFrameSize, maxMessageSize))

    def frameUtf8(self, payload: bytes, frameSize: int | None = None) -> bytes:
        """
        A text frame: C{0x00}, the UTF-8 bytes, C{0xFF} (hixie-76 4.2);
        C{frameSize} does not apply.

        @raise ConnectionClosed: a closing frame was sent already.
        """
        self._checkCanSend()
        return b"\x00" + payload + b"\xff"

    def checkCanCarry(self, opcode: int) -> None:
        """
        hixie-76 carries text alone (and its closing frame).

        @raise UnsupportedByProtocol: a binary message or a ping.
        """
        if opcode == Opcode.BINARY:
            raise UnsupportedByProtocol("hixie-76 has no binary messages")
        if opcode != Opcode.TEXT:
            raise UnsupportedByProtocol("hixie-76 has no ping frames")

    def framePong(self, payload: bytes = b"") -> bytes:
        """
        Nothing: hixie-76 has no pongs.
        """
        return b""

    def frameMessage(
        self, opcode: int, payload: bytes | memoryview, frameSize: int | None = None
    ) -> bytes | None:
        """
        A text frame; C{None} for a binary message, which hixie-76 cannot
        carry.  C{frameSize} does not apply: hixie-76 has no fragments.
        """
        if opcode != Opcode.TEXT:
            return None
        return b"\x00" + payload + b"\xff"

    def messageFramer(self, opcode: int) -> Hixie76Framer:
        """
        A text message sent as it comes: hixie-76's frame is a start byte,
        the UTF-8 bytes and an end byte (4.2), so it streams as it is.

        @raise UnsupportedByProtocol: a binary message.
        @raise ConnectionClosed: a closing frame was sent already.
        """
        self.checkCanCarry(opcode)
        self._checkCanSend()
        return Hixie76Framer()

    def _closeFrame(self, code: int | None, reason: str) -> bytes:
        # hixie-76 has no close codes; the closing frame is all there is.
        return CLOSING_FRAME

    def _restartFrame(self) -> bytes:
        return CLOSING_FRAME
