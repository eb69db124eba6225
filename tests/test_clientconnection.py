"""
The client role of the sans-I/O connection, byte for byte: every frame we
send is masked with a fresh key (RFC 6455 5.3), a server's frames are read
unmasked and a masked one fails the connection (5.1).  The masking key is
injected, so the bytes are fixed; the worked examples are RFC 6455 5.7's.
"""

from __future__ import annotations

import pytest

from txclws._core.clientconnection import ClientConnection, newMaskKey
from txclws._core.clientreader import UnmaskedMessageReader
from txclws._core.connection import ConnectionState, WebSocketConnection
from txclws._core.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    PingReceived,
    PongReceived,
    TextMessage,
)
from txclws._core.reader import MessageReader

#: RFC 6455 5.7's masking key.
KEY = b"\x37\xfa\x21\x3d"


def connection(maxSize: int = 1 << 20) -> ClientConnection:
    """
    A client connection whose every masking key is L{KEY}.
    """
    return ClientConnection(maxSize, maxSize, newMask=lambda: KEY)


class TestSending:
    """
    RFC 6455 5.1 and 5.3: a client masks every frame it sends.
    """

    def test_text(self) -> None:
        """
        RFC 6455 5.7's "A single-frame masked text message": "Hello".
        """
        # 0x81: FIN + text; 0x85: MASK + length 5; the key; masked payload.
        assert connection().frameText("Hello") == bytes.fromhex(
            "818537fa213d7f9f4d5158"
        )

    def test_binaryFragmented(self) -> None:
        """
        A fragmented binary message: each frame masked with its own key.
        """
        keys = iter([b"\x00\x00\x00\x00", b"\x01\x02\x03\x04"])
        conn = ClientConnection(100, 100, newMask=lambda: next(keys))
        # 0x02: binary, no FIN; 0x82: MASK + 2; zero key leaves "ab";
        # 0x80: FIN + continuation; 0x81: MASK + 1; "c" ^ 0x01 = "b".
        assert conn.frameBinary(b"abc", frameSize=2) == bytes.fromhex(
            "028200000000616280810102030462"
        )

    def test_freshKeyPerFrame(self) -> None:
        """
        The key source is asked once per frame, data and control alike.
        """
        keys: list[bytes] = []

        def newMask() -> bytes:
            keys.append(bytes(4))
            return keys[-1]

        conn = ClientConnection(100, 100, newMask=newMask)
        conn.frameText("x")
        conn.frameBinary(b"xyz", frameSize=1)
        conn.framePing(b"p")
        conn.frameClose(1000)
        # One text frame, three binary frames, a ping, a close.
        assert len(keys) == 6

    def test_ping(self) -> None:
        """
        RFC 6455 5.7's masked ping, "Hello": 0x89, then as a text frame.
        """
        assert connection().framePing(b"Hello") == bytes.fromhex(
            "898537fa213d7f9f4d5158"
        )

    def test_pong(self) -> None:
        """
        RFC 6455 5.7's "masked Pong response", "Hello": 0x8a.
        """
        assert connection().framePong(b"Hello") == bytes.fromhex(
            "8a8537fa213d7f9f4d5158"
        )

    def test_close(self) -> None:
        """
        A close frame, code 1000 (0x03e8), masked: 0x03^0x37, 0xe8^0xfa.
        """
        assert connection().frameClose(1000) == bytes.fromhex("888237fa213d3412")

    def test_randomKeys(self) -> None:
        """
        By default each key comes from the OS's CSPRNG: 4 bytes, and two
        frames (almost surely) differ.
        """
        assert len(newMaskKey()) == 4
        conn = ClientConnection(100, 100)
        frames = {conn.frameText("same") for _ in range(8)}
        assert len(frames) > 1

    def test_broadcastFramedPerConnection(self) -> None:
        """
        A client connection's wire key is itself: a broadcast frames a
        message (with a fresh key) for each connection, never reuses one.
        """
        first, second = connection(), connection()
        frames: dict[object, bytes | None] = {}
        first.broadcastFrame(1, b"Hello", None, frames)
        second.broadcastFrame(1, b"Hello", None, frames)
        assert len(frames) == 2


class TestReceiving:
    """
    RFC 6455 5.1: a server's frames are unmasked; a masked one fails.
    """

    def test_text(self) -> None:
        """
        RFC 6455 5.7's "A single-frame unmasked text message".
        """
        events = connection().receiveData(bytes.fromhex("810548656c6c6f"))
        assert events == [TextMessage("Hello")]

    def test_fragmented(self) -> None:
        """
        RFC 6455 5.7's "A fragmented unmasked text message", byte by byte.
        """
        data = bytes.fromhex("010348656c80026c6f")
        conn = connection()
        events = [event for byte in data for event in conn.receiveData(bytes([byte]))]
        assert events == [TextMessage("Hello")]

    def test_controlFrames(self) -> None:
        """
        Unmasked ping and pong; a 256-byte binary message with a 16-bit
        length (RFC 6455 5.7's 7E 0100).
        """
        conn = connection(1000)
        data = (
            bytes.fromhex("890548656c6c6f")
            + bytes.fromhex("8a0548656c6c6f")
            + bytes.fromhex("827e0100")
            + bytes(256)
        )
        assert conn.receiveData(data) == [
            PingReceived(b"Hello"),
            PongReceived(b"Hello"),
            BinaryMessage(bytes(256)),
        ]

    @pytest.mark.parametrize(
        "frame",
        [
            "818537fa213d7f9f4d5158",  # a small masked text frame
            "82fe008037fa213d" + "00" * 128,  # masked, 16-bit length
            "898037fa213d",  # a masked, empty ping
        ],
        ids=["small", "extended", "control"],
    )
    def test_maskedFails(self, frame: str) -> None:
        """
        RFC 6455 5.1: "The client MUST close a connection if it detects a
        masked frame": 1002, whatever the frame's size or kind.
        """
        conn = connection()
        events = conn.receiveData(bytes.fromhex(frame))
        assert events == [ConnectionFailed(1002, "server frame is masked")]
        assert conn.state is ConnectionState.FAILING

    def test_close(self) -> None:
        """
        The server's close, 1001 "bye", unmasked; our echo is masked.
        """
        conn = connection()
        assert conn.receiveData(bytes.fromhex("880503e9627965")) == [
            CloseReceived(1001, "bye")
        ]
        assert conn.frameClose(1001) == bytes.fromhex("888237fa213d3413")
        assert conn.state is ConnectionState.CLOSED


class TestRoles:
    """
    The role is chosen by the class, once: the server's reader and
    connection are unchanged.
    """

    def test_readerClasses(self) -> None:
        """
        A server connection reads with L{MessageReader}, a client's with
        L{UnmaskedMessageReader}.
        """
        assert WebSocketConnection.readerClass is MessageReader
        assert ClientConnection.readerClass is UnmaskedMessageReader

    def test_serverStillRefusesUnmasked(self) -> None:
        """
        The server still fails an unmasked client frame with 1002.
        """
        conn = WebSocketConnection(100, 100)
        events = conn.receiveData(bytes.fromhex("810548656c6c6f"))
        assert events == [ConnectionFailed(1002, "client frame is not masked")]

    def test_serverFramesUnmasked(self) -> None:
        """
        The server's frames are still unmasked.
        """
        assert WebSocketConnection(100, 100).frameText("Hello") == bytes.fromhex(
            "810548656c6c6f"
        )


def test_largeUnmaskedMessageInPieces() -> None:
    """
    A client's whole-message reader joins a 100,000-byte unmasked frame fed
    in 30,000-byte pieces into exactly its payload, as C{bytes}: its
    pieces are taken as they are, never XORed.
    """
    payload = bytes(range(256)) * 390 + b"end"
    frame = b"\x82\x7f" + len(payload).to_bytes(8, "big") + payload
    reader = UnmaskedMessageReader(1 << 20, 1 << 20)
    events = []
    for i in range(0, len(frame), 30000):
        events += reader.feed(frame[i : i + 30000])
    assert events == [BinaryMessage(payload)]
    assert type(events[0].data) is bytes  # type: ignore[attr-defined]
