"""
A minimal, independent RFC 6455 client over a blocking C{socket}, for the
loopback and bad-input tests.

Frames are built and parsed here by hand, not with txclws's own serialiser,
so that the server is checked against bytes it did not produce itself.

Everything in this module blocks (each socket has a timeout, as an upper
bound): call it from a thread (C{deferToThread}), never from the reactor
thread that serves the server.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

#: Upper bound for any single blocking socket operation.
TIMEOUT = 5.0

#: The masking key of every client frame built here.
MASK_KEY = b"\x37\xfa\x21\x3d"

#: The sample key of RFC 6455 section 1.3, and the accept value it gives.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def upgradeRequest(
    target: str = "/echo",
    *,
    key: str | None = SAMPLE_KEY,
    version: str | None = "13",
    origin: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """
    The bytes of an opening handshake request; C{None} leaves a header out.
    """
    lines = [
        f"GET {target} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
    ]
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    if origin is not None:
        lines.append(f"Origin: {origin}")
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def mask(payload: bytes, key: bytes = MASK_KEY) -> bytes:
    """
    XOR C{payload} with C{key} repeated (RFC 6455 section 5.3).
    """
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def clientFrame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
) -> bytes:
    """
    One client frame, masked with L{MASK_KEY} unless C{masked} is false.

    @param rsv: the RSV bits already in place (C{0x40} is RSV1).
    """
    first = (0x80 if fin else 0) | rsv | opcode
    maskBit = 0x80 if masked else 0
    length = len(payload)
    if length < 126:
        header = bytes((first, maskBit | length))
    elif length < 0x10000:
        header = bytes((first, maskBit | 126)) + struct.pack("!H", length)
    else:
        header = bytes((first, maskBit | 127)) + struct.pack("!Q", length)
    if not masked:
        return header + payload
    return header + MASK_KEY + mask(payload)


def closePayload(code: int, reason: bytes = b"") -> bytes:
    """
    A close frame's payload: the code as two bytes, then the reason.
    """
    return struct.pack("!H", code) + reason


@dataclass(frozen=True)
class ServerFrame:
    """
    One frame as the server sent it.
    """

    fin: bool
    rsv: int
    opcode: int
    payload: bytes

    @property
    def closeCode(self) -> int | None:
        """
        The code of a close frame, or None for an empty close payload.
        """
        assert self.opcode == 0x8, self
        if not self.payload:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])


class RawClient:
    """
    A blocking client socket with a read buffer.
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self._buffer = bytearray()

    @classmethod
    def fromSocket(cls, sock: socket.socket) -> RawClient:
        """
        A client over C{sock}, already connected (say, with options that
        must be set before connecting, or wrapped in TLS).
        """
        client = cls.__new__(cls)
        client.sock = sock
        client._buffer = bytearray()
        return client

    @property
    def unread(self) -> bytes:
        """
        What was received and not yet read.
        """
        return bytes(self._buffer)

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    @property
    def localPort(self) -> int:
        """
        The client's own TCP port.
        """
        return int(self.sock.getsockname()[1])

    def send(self, data: bytes) -> None:
        """
        Send all of C{data}.
        """
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def readExact(self, size: int) -> bytes:
        """
        The next C{size} bytes.

        @raise EOFError: the server closed the connection first.
        """
        while len(self._buffer) < size:
            if not self._fill():
                raise EOFError(f"EOF after {len(self._buffer)} of {size} bytes")
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readHead(self) -> tuple[str, dict[str, str]]:
        """
        An HTTP response head: its status line and its headers (names in
        lower case).
        """
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill():
                raise EOFError(f"EOF inside a response head: {bytes(self._buffer)!r}")
        end = self._buffer.index(b"\r\n\r\n")
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        statusLine, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return statusLine, headers

    def readRefusal(self) -> tuple[str, dict[str, str], bytes]:
        """
        A refusal: its status line, headers and body, then the server's EOF.
        """
        statusLine, headers = self.readHead()
        while self._fill():
            pass
        body = bytes(self._buffer)
        self._buffer.clear()
        return statusLine, headers, body

    def handshake(self, target: str = "/echo") -> None:
        """
        Open the WebSocket connection; fail unless the server accepts.
        """
        self.send(upgradeRequest(target))
        statusLine, headers = self.readHead()
        assert statusLine == "HTTP/1.1 101 Switching Protocols", statusLine
        assert headers["sec-websocket-accept"] == SAMPLE_ACCEPT, headers

    def readFrame(self) -> ServerFrame:
        """
        The next server frame, checking that it is not masked (RFC 6455 5.1).
        """
        first, second = self.readExact(2)
        assert not second & 0x80, "a server frame is masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.readExact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.readExact(8))
        return ServerFrame(
            fin=bool(first & 0x80),
            rsv=first & 0x70,
            opcode=first & 0x0F,
            payload=self.readExact(length),
        )

    def readUntilClose(self) -> tuple[list[ServerFrame], ServerFrame]:
        """
        Read frames up to the server's close frame.

        @return: the frames before the close frame, and the close frame.
        """
        before = []
        while True:
            frame = self.readFrame()
            if frame.opcode == 0x8:
                return before, frame
            before.append(frame)

    def atEOF(self) -> bool:
        """
        Whether the server closed the TCP connection (or at least its
        sending side) with nothing more sent; bounded by L{TIMEOUT}.
        """
        return not self._buffer and not self._fill()

    def echo(self, text: str) -> ServerFrame:
        """
        Send C{text} as a text message and read the next frame back.
        """
        self.send(clientFrame(0x1, text.encode("utf-8")))
        return self.readFrame()


def firstFrameThenSilence(port: int, timeout: float) -> tuple[ServerFrame, bool]:
    """
    Open a client that reads the first frame the server sends and never
    answers anything; return that frame, and whether the server then
    dropped the connection (EOF or reset).
    """
    with RawClient(port) as client:
        client.sock.settimeout(timeout)
        client.handshake()
        frame = client.readFrame()
        try:
            dropped = client.atEOF()
        except ConnectionResetError:
            dropped = True
        return frame, dropped
