"""
Tests for the streaming mode of the frame reader (L{txclws._core.streamreader},
L{txclws._core.clientreader}) and for the framing of a message sent as it
comes (L{txclws._core.fragments}, L{WebSocketConnection.messageFramer}),
byte for byte, grouped by RFC 6455 / RFC 7692 section.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._frames_helpers import (
    BINARY,
    CONT,
    MASK,
    PING,
    TEXT,
    clientFrame,
    parseServerFrames,
)
from txclws._core.clientconnection import ClientConnection
from txclws._core.clientreader import UnmaskedStreamingReader
from txclws._core.connection import WebSocketConnection
from txclws._core.deflate import DeflateCodec, DeflateParameters, PerMessageDeflate
from txclws._core.events import (
    BinaryMessage,
    ConnectionFailed,
    Event,
    MessageData,
    MessageEnded,
    MessageStarted,
    PingReceived,
    TextMessage,
)
from txclws._core.fragments import MessageFramer
from txclws._core.hixie76 import Hixie76Connection
from txclws._core.streamreader import UNLIMITED, StreamingMessageReader


def reader(maxFrameSize: int = 1 << 20, maxMessageSize: int = UNLIMITED) -> Any:
    """
    A server's streaming reader with the given limits.
    """
    return StreamingMessageReader(maxFrameSize, maxMessageSize)


def feedAll(r: Any, data: bytes, chunks: list[int] | None = None) -> list[Event]:
    """
    Feed C{data} in pieces of the sizes in C{chunks} (cycled), or whole.
    """
    if not chunks:
        return list(r.feed(data))
    events: list[Event] = []
    pos = 0
    index = 0
    while pos < len(data):
        size = chunks[index % len(chunks)]
        events.extend(r.feed(data[pos : pos + size]))
        pos += size
        index += 1
    return events


def payloadOf(events: list[Event]) -> str | bytes:
    """
    The concatenation of the streamed pieces, of one type.
    """
    pieces = [event.data for event in events if isinstance(event, MessageData)]
    if pieces and isinstance(pieces[0], str):
        return "".join(pieces)  # type: ignore[arg-type]
    return b"".join(pieces)  # type: ignore[arg-type]


# -- RFC 6455 5.2 / 5.4: one message as start, pieces, end ------------------


def test_smallWholeFrameStreams() -> None:
    """
    A whole, unfragmented text frame (the one the whole-message reader takes
    on its fast path) is streamed: start, one piece, end.
    """
    # 0x81 = FIN + text; 0x85 = MASK + length 5.
    data = b"\x81\x85" + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(b"Hello"))
    assert reader().feed(data) == [
        MessageStarted(TEXT),
        MessageData("Hello"),
        MessageEnded(),
    ]


def test_fragmentedWithPingBetween() -> None:
    """
    A fragmented binary message streams each fragment's payload as it comes,
    and a ping between its fragments comes between its pieces (RFC 6455 5.4).
    """
    data = (
        clientFrame(BINARY, b"ab", fin=False)
        + clientFrame(PING, b"p")
        + clientFrame(CONT, b"cd", fin=False)
        + clientFrame(CONT, b"", fin=True)
    )
    assert reader().feed(data) == [
        MessageStarted(BINARY),
        MessageData(b"ab"),
        PingReceived(b"p"),
        MessageData(b"cd"),
        MessageEnded(),
    ]


def test_partialFramePiecesComeAsTheyArrive() -> None:
    """
    A frame whose payload arrives over several reads gives a piece per read:
    nothing is held back for the end of the frame.
    """
    frame = clientFrame(BINARY, bytes(range(200)))
    r = reader()
    first = r.feed(frame[:100])
    # 2 header bytes + 2 length bytes + 4 key bytes, then 92 payload bytes.
    assert first == [MessageStarted(BINARY), MessageData(bytes(range(92)))]
    assert r.feed(frame[100:]) == [MessageData(bytes(range(92, 200))), MessageEnded()]


def test_emptyMessage() -> None:
    """
    An empty message is a start and an end, with no piece (pieces are never
    empty).
    """
    assert reader().feed(clientFrame(TEXT, b"")) == [
        MessageStarted(TEXT),
        MessageEnded(),
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=5),
    st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=6),
)
def test_anyChunkingSameConcatenation(
    fragments: list[bytes], chunks: list[int]
) -> None:
    """
    However the bytes are cut, the pieces of a binary message concatenate to
    its payload, and the events around them are the same.
    """
    data = b"".join(
        clientFrame(
            BINARY if index == 0 else CONT, fragment, fin=index == len(fragments) - 1
        )
        for index, fragment in enumerate(fragments)
    )
    events = feedAll(reader(), data, chunks)
    assert events[0] == MessageStarted(BINARY)
    assert events[-1] == MessageEnded()
    assert payloadOf(events) == b"".join(fragments)
    assert all(e.data for e in events if isinstance(e, MessageData))


# -- RFC 6455 8.1: text split at code points ----------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.text(max_size=200),
    st.lists(st.integers(min_value=1, max_value=13), min_size=1, max_size=6),
)
def test_textSplitAtCodePoints(text: str, chunks: list[int]) -> None:
    """
    Cut anywhere, even inside a code point, a text message streams as
    C{str} pieces that join to its text: a split code point is held back
    until its last byte arrives.
    """
    encoded = text.encode("utf-8")
    data = clientFrame(TEXT, encoded)
    events = feedAll(reader(), data, chunks)
    assert (
        payloadOf(events) == text
        if text
        else events
        == [
            MessageStarted(TEXT),
            MessageEnded(),
        ]
    )
    assert events[-1] == MessageEnded()


def test_splitCodePointHeldBack() -> None:
    """
    U+20AC (E2 82 AC) cut after its first byte: the first piece ends before
    it, the second begins with it.
    """
    r = reader()
    frame = clientFrame(TEXT, "a\u20acb".encode())
    # Header 2 + key 4, then "a" and E2.
    assert r.feed(frame[:8]) == [MessageStarted(TEXT), MessageData("a")]
    assert r.feed(frame[8:]) == [MessageData("\u20acb"), MessageEnded()]


def test_invalidUtf8FailsEarly() -> None:
    """
    Bytes that cannot begin valid UTF-8 fail the connection with 1007 as
    soon as they arrive, after the pieces before them, and no end comes.
    """
    events = reader().feed(
        clientFrame(TEXT, b"ok", fin=False) + clientFrame(CONT, b"\xff")
    )
    assert events[:2] == [MessageStarted(TEXT), MessageData("ok")]
    assert isinstance(events[2], ConnectionFailed) and events[2].code == 1007
    assert len(events) == 3


def test_textEndingInsideCodePointFails() -> None:
    """
    A text message whose last frame ends inside a code point fails with 1007.
    """
    events = reader().feed(clientFrame(TEXT, b"a\xe2\x82"))
    assert events[:2] == [MessageStarted(TEXT), MessageData("a")]
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1007


# -- limits -------------------------------------------------------------------


def test_noMessageLimitByDefault() -> None:
    """
    Without a streamed-message limit, a message larger than any whole
    message the connection would accept streams: only frames are bounded.
    """
    connection = WebSocketConnection(1000, 1000)
    assert connection.streamMessages(None)
    data = b"".join(
        clientFrame(BINARY if i == 0 else CONT, b"x" * 1000, fin=i == 4)
        for i in range(5)
    )
    events = connection.receiveData(data)
    assert payloadOf(events) == b"x" * 5000
    assert events[-1] == MessageEnded()


def test_frameLimitStillApplies() -> None:
    """
    C{maxFrameSize} holds for streamed messages: 1009 on a larger frame.
    """
    connection = WebSocketConnection(1000, 1000)
    connection.streamMessages(None)
    events = connection.receiveData(clientFrame(BINARY, b"x" * 1001))
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1009


def test_streamedLimit() -> None:
    """
    A streamed-message limit is checked as the message comes: 1009 once its
    frames would pass it, after the pieces within it.
    """
    connection = WebSocketConnection(1000, 10**6)
    connection.streamMessages(1500)
    events = connection.receiveData(
        clientFrame(BINARY, b"x" * 1000, fin=False) + clientFrame(CONT, b"y" * 600)
    )
    assert events[:2] == [MessageStarted(BINARY), MessageData(b"x" * 1000)]
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1009


def test_wholeMessagesWithoutStreaming() -> None:
    """
    A connection not switched to streaming reports whole messages (the
    reader is chosen once, by class).
    """
    connection = WebSocketConnection(1000, 1000)
    assert connection.receiveData(clientFrame(TEXT, b"hi")) == [TextMessage("hi")]


def test_hixie76DoesNotStream() -> None:
    """
    hixie-76 reads messages whole: C{streamMessages} says so and changes
    nothing.
    """
    connection = Hixie76Connection(1000, 1000)
    assert not connection.streamMessages(None)
    assert connection.receiveData(b"\x00hi\xff") == [TextMessage("hi")]


# -- RFC 7692: deflate --------------------------------------------------------


def codec() -> DeflateCodec:
    """
    A server codec with context takeover both ways.
    """
    return DeflateCodec(DeflateParameters(), PerMessageDeflate())


def compressed(payload: bytes) -> bytes:
    """
    A client's compressed message payload: raw deflate to a sync flush, less
    its 00 00 ff ff (RFC 7692 7.2.1).
    """
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


@settings(max_examples=40, deadline=None)
@given(
    st.binary(max_size=3000),
    st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=5),
)
def test_deflateStreamsInflated(payload: bytes, chunks: list[int]) -> None:
    """
    A compressed message (RSV1 on its first frame) streams inflated, however
    the compressed bytes and the frames are cut.
    """
    body = compressed(payload)
    half = len(body) // 2
    data = clientFrame(BINARY, body[:half], fin=False, rsv=0x40) + clientFrame(
        CONT, body[half:]
    )
    events = feedAll(StreamingMessageReader(1 << 20, UNLIMITED, codec()), data, chunks)
    assert events[0] == MessageStarted(BINARY)
    assert events[-1] == MessageEnded()
    assert payloadOf(events) == payload


def test_deflateStreamedLimit() -> None:
    """
    A compressed streamed message is measured as it inflates: 1009 past the
    limit, however small its frames.
    """
    body = compressed(b"z" * 10000)
    events = StreamingMessageReader(1 << 20, 5000, codec()).feed(
        clientFrame(BINARY, body, rsv=0x40)
    )
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1009


# -- the client role ----------------------------------------------------------


def test_clientStreamsUnmasked() -> None:
    """
    A client's streaming reader takes the server's unmasked frames, and
    fails on a masked one (RFC 6455 5.1).
    """
    r = UnmaskedStreamingReader(1 << 20, UNLIMITED)
    # 0x01 = text, no FIN; 0x80 = FIN + continuation.
    assert r.feed(b"\x01\x02ab" + b"\x80\x01c") == [
        MessageStarted(TEXT),
        MessageData("ab"),
        MessageData("c"),
        MessageEnded(),
    ]
    failed = UnmaskedStreamingReader(1 << 20, UNLIMITED).feed(clientFrame(TEXT, b"a"))
    assert isinstance(failed[-1], ConnectionFailed) and failed[-1].code == 1002


def test_clientConnectionStreams() -> None:
    """
    L{ClientConnection.streamMessages} swaps in the unmasked streaming
    reader.
    """
    connection = ClientConnection(1000, 1000)
    assert connection.streamMessages(None)
    assert connection.receiveData(b"\x82\x01z") == [
        MessageStarted(BINARY),
        MessageData(b"z"),
        MessageEnded(),
    ]


def test_wholeBinaryStillWhole() -> None:
    """
    The whole-message reader is unchanged: a binary frame is one event.
    """
    connection = ClientConnection(1000, 1000)
    assert connection.receiveData(b"\x82\x01z") == [BinaryMessage(b"z")]


# -- sending as it comes (RFC 6455 5.4, RFC 7692 6.1) -------------------------


def test_framerFragments() -> None:
    """
    The first frame has the opcode and no FIN, the next are CONTINUATION
    frames, the last has FIN: byte for byte.
    """
    framer = WebSocketConnection(100, 100).messageFramer(BINARY)
    # 0x02 = binary, no FIN; 0x00 = continuation, no FIN; 0x80 = FIN + cont.
    assert framer.frame(b"ab") == b"\x02\x02ab"
    assert framer.frame(b"c") == b"\x00\x01c"
    assert framer.end() == b"\x80\x00"


def test_framerMasksForClient() -> None:
    """
    A client's fragments are each masked with a fresh key.
    """
    keys = iter([b"\x01\x02\x03\x04", b"\x00\x00\x00\x00"])
    framer = ClientConnection(100, 100, newMask=lambda: next(keys)).messageFramer(TEXT)
    # 0x01 = text, no FIN; 0x82 = MASK + length 2; "ab" XOR 01 02.
    assert framer.frame(b"ab") == b"\x01\x82\x01\x02\x03\x04" + bytes(
        (0x61 ^ 1, 0x62 ^ 2)
    )
    # 0x80 = FIN + continuation; 0x80 = MASK + length 0.
    assert framer.end() == b"\x80\x80\x00\x00\x00\x00"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=2000), max_size=6), st.booleans())
def test_framerDeflateRoundTrip(pieces: list[bytes], takeover: bool) -> None:
    """
    With permessage-deflate, the fragments carry one compressed payload:
    RSV1 on the first frame only, and the peer's inflater (with 00 00 ff ff
    appended, RFC 7692 7.2.2) gives back the pieces joined.
    """
    params = DeflateParameters(serverNoContextTakeover=not takeover)
    connection = WebSocketConnection(
        100, 100, DeflateCodec(params, PerMessageDeflate())
    )
    framer = connection.messageFramer(BINARY)
    data = b"".join(framer.frame(piece) for piece in pieces) + framer.end()
    frames = parseServerFrames(data)
    assert frames[0][1] == 0x40 and frames[0][2] == BINARY
    assert all(rsv == 0 and opcode == CONT for _, rsv, opcode, _ in frames[1:])
    assert [fin for fin, _, _, _ in frames] == [False] * (len(frames) - 1) + [True]
    body = b"".join(payload for _, _, _, payload in frames)
    inflater = zlib.decompressobj(-15)
    assert inflater.decompress(body + b"\x00\x00\xff\xff") == b"".join(pieces)


def test_framerUncompressedWithoutCompressor() -> None:
    """
    A L{MessageFramer} without a compressor never sets RSV1.
    """
    framer = MessageFramer(TEXT)
    assert framer.end(b"x") == b"\x81\x01x"


def test_hixie76Framer() -> None:
    """
    A hixie-76 text message streams as 0x00, the pieces, 0xFF.
    """
    framer = Hixie76Connection(100, 100).messageFramer(TEXT)
    assert framer.frame(b"ab") + framer.frame(b"c") + framer.end() == b"\x00abc\xff"


@pytest.mark.parametrize("role", ["server", "client"])
def test_largePiecesAreBytes(role: str) -> None:
    """
    A streamed 100,000-byte binary frame fed in 30,000-byte feeds comes out
    as L{MessageData} pieces of C{bytes} (never a view of the input or of
    an unmasking buffer) that join to the payload, masked (a server's
    reader) or not (a client's).
    """
    payload = bytes(range(256)) * 390 + b"end"
    if role == "server":
        r: StreamingMessageReader = StreamingMessageReader(1 << 20, UNLIMITED)
        frame = clientFrame(BINARY, payload)
    else:
        r = UnmaskedStreamingReader(1 << 20, UNLIMITED)
        frame = clientFrame(BINARY, payload, mask=None)
    events: list[Event] = []
    for i in range(0, len(frame), 30000):
        events += r.feed(frame[i : i + 30000])
    assert events[0] == MessageStarted(BINARY) and events[-1] == MessageEnded()
    pieces = [e.data for e in events[1:-1] if isinstance(e, MessageData)]
    assert len(pieces) == len(events) - 2 >= 3
    assert all(type(p) is bytes for p in pieces)
    assert b"".join(pieces) == payload  # type: ignore[arg-type]
