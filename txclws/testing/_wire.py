# -*- test-case-name: tests.test_testing -*-
"""
What an in-memory client puts on the wire and how it reads the server's
bytes: its fixed masking key and handshake key, the errors a test sees, and
the reader that reassembles the server's frames (RFC 6455 section 5).
"""

from __future__ import annotations

import base64

from txclws._core.frames import Opcode

#: The masking key of every frame an in-memory client sends (the one in
#: RFC 6455 section 5.7's examples), so tests are deterministic.
MASK = b"\x37\xfa\x21\x3d"

#: The C{Sec-WebSocket-Key} an in-memory client sends (RFC 6455 section 1.3).
KEY = base64.b64encode(b"the sample nonce").decode("ascii")

#: The most a client takes from its transport in one read, as a socket's
#: C{recv} would: it keeps the decoding of a large backlog linear.
READ_SIZE = 65536

#: How a client reads: C{True} everything at once, C{False} nothing, an
#: C{int} that many bytes at each step.
Reading = bool | int


class HandshakeRefused(Exception):
    """
    The server answered the opening handshake with something other than
    C{101}, and the test required it to accept.

    @ivar status: the HTTP status code.
    @ivar body: the response body.
    """

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"handshake refused: {status} {body!r}")
        self.status = status
        self.body = body


class ServerProtocolError(Exception):
    """
    The server sent bytes that break RFC 6455 (a txclws bug, if it happens).
    """


def checkReading(mode: Reading) -> Reading:
    """
    @return: C{mode}, a valid L{InMemoryClient.reading}.
    @raise ValueError: an C{int} below 1.
    @raise TypeError: neither a C{bool} nor an C{int}.
    """
    if isinstance(mode, bool):
        return mode
    if not isinstance(mode, int):
        raise TypeError(f"reading must be a bool or an int, not {mode!r}")
    if mode < 1:
        raise ValueError(f"reading must be at least 1 byte, not {mode}")
    return mode


class ServerFrameReader:
    """
    Reassembles the server's (unmasked) frames into messages and control
    frames, checking what a client must check (RFC 6455 section 5).

    The unparsed bytes live in a C{bytearray} consumed from the front, so
    reading a large backlog in socket-sized chunks stays linear.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._opcode = 0
        self._fragments: list[bytes] = []

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """
        Take more bytes from the server.

        @return: C{(opcode, payload)} for each whole message or control
            frame they complete.
        @raise ServerProtocolError: the server broke the framing rules.
        """
        self._buffer += data
        out: list[tuple[int, bytes]] = []
        while True:
            frame = self._nextFrame()
            if frame is None:
                return out
            message = self._assemble(*frame)
            if message is not None:
                out.append(message)

    def _nextFrame(self) -> tuple[bool, int, bytes] | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        first, second = buffer[0], buffer[1]
        if second & 0x80:
            raise ServerProtocolError("the server masked a frame (RFC 6455 5.1)")
        if first & 0x70:
            raise ServerProtocolError("the server set reserved bits")
        length, offset = second & 0x7F, 2
        if length >= 126:
            size = 2 if length == 126 else 8
            if len(buffer) < 2 + size:
                return None
            length = int.from_bytes(buffer[2 : 2 + size], "big")
            offset += size
        if len(buffer) < offset + length:
            return None
        payload = bytes(buffer[offset : offset + length])
        del buffer[: offset + length]
        return bool(first & 0x80), first & 0x0F, payload

    def _assemble(
        self, fin: bool, opcode: int, payload: bytes
    ) -> tuple[int, bytes] | None:
        if opcode >= 0x8:
            if not fin or len(payload) > 125:
                raise ServerProtocolError("a fragmented or oversized control frame")
            return opcode, payload
        if (opcode == Opcode.CONTINUATION) != bool(self._opcode):
            raise ServerProtocolError("a continuation frame out of place")
        if opcode != Opcode.CONTINUATION:
            self._opcode = opcode
        self._fragments.append(payload)
        if not fin:
            return None
        message = (self._opcode, b"".join(self._fragments))
        self._opcode, self._fragments = 0, []
        return message
