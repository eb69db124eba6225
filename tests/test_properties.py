"""
Hypothesis properties of the sans-I/O core: whatever the fragmentation,
interleaving and chunking, the reader gives the same events; frames the
serialiser writes parse back to what went in; the UTF-8 validator agrees with
C{bytes.decode} at every split.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests._frames_helpers import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    clientFrame,
    closePayload,
    maskServerFrame,
    parseServerFrames,
)
from tests.test_utf8 import firstImpossibleIndex
from txclws._core.errors import HandshakeError, InvalidPayload
from txclws._core.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    Event,
    PingReceived,
    PongReceived,
    TextMessage,
)
from txclws._core.frames import serializeFrame, serializeMessage
from txclws._core.handshake import checkUpgrade
from txclws._core.reader import MessageReader
from txclws._core.request import RequestHeadReader, parseRequestHead
from txclws._core.utf8 import Utf8Validator

LIMIT = 1 << 20

#: Shared machine: no deadlines, modest example counts.
FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

masks = st.binary(min_size=4, max_size=4)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """
    C{data} cut at the given offsets (any order, repeats allowed: an empty
    chunk is a legal feed).
    """
    points = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    return [data[a:b] for a, b in pairwise(points)]


def feedChunks(reader: MessageReader, chunks: list[bytes]) -> list[Event]:
    """
    Feed each chunk; return all the events.
    """
    events: list[Event] = []
    for chunk in chunks:
        events += reader.feed(chunk)
    return events


@st.composite
def messages(draw: st.DrawFn) -> TextMessage | BinaryMessage:
    """
    A text or binary message, empty ones included, sometimes over 125 bytes
    (16-bit lengths).
    """
    if draw(st.booleans()):
        return TextMessage(draw(st.text(max_size=200)))
    return BinaryMessage(draw(st.binary(max_size=300)))


@st.composite
def fragmentedStream(draw: st.DrawFn) -> tuple[bytes, list[Event]]:
    """
    A client byte stream of messages, each cut into frames at random byte
    offsets (inside UTF-8 characters too; empty frames too), with pings
    between fragments; and the events it must give.
    """
    stream = b""
    expected: list[Event] = []
    for message in draw(st.lists(messages(), max_size=5)):
        if isinstance(message, TextMessage):
            opcode, payload = TEXT, message.data.encode("utf-8")
        else:
            opcode, payload = BINARY, message.data
        cuts = draw(st.lists(st.integers(0, len(payload)), max_size=4))
        parts = chunked(payload, cuts)
        for index, part in enumerate(parts):
            if index and draw(st.booleans()):
                ping = draw(st.binary(max_size=125))
                stream += clientFrame(PING, ping, mask=draw(masks))
                expected.append(PingReceived(ping))
            stream += clientFrame(
                opcode if index == 0 else CONT,
                part,
                fin=index == len(parts) - 1,
                mask=draw(masks),
            )
        expected.append(message)
    return stream, expected


class TestReaderProperties:
    """
    RFC 6455 sections 5.4 and 5.5: fragmentation, interleaved control frames
    and TCP chunking never change the messages.
    """

    @FAST
    @given(fragmentedStream(), st.lists(st.integers(0, 10_000), max_size=30))
    def test_anyFragmentationAndChunking(
        self, streamAndEvents: tuple[bytes, list[Event]], cuts: list[int]
    ) -> None:
        """
        Any messages, fragmented anyhow with pings between fragments, fed in
        any chunks, give exactly those messages and pings, in order.
        """
        stream, expected = streamAndEvents
        reader = MessageReader(LIMIT, LIMIT)
        assert feedChunks(reader, chunked(stream, cuts)) == expected
        assert reader._pending == b""

    @FAST
    @given(fragmentedStream(), st.lists(st.integers(0, 10_000), max_size=30))
    def test_bytearrayChunks(
        self, streamAndEvents: tuple[bytes, list[Event]], cuts: list[int]
    ) -> None:
        """
        The same stream fed as C{bytearray}s (what the C{stdssl:} layer
        hands the front door for a large read) gives the same events, each
        payload a C{bytes} or C{str} of its own, never a C{bytearray}.
        """
        stream, expected = streamAndEvents
        reader = MessageReader(LIMIT, LIMIT)
        chunks = [bytearray(chunk) for chunk in chunked(stream, cuts)]
        events = feedChunks(reader, chunks)  # type: ignore[arg-type]
        assert events == expected
        for event in events:
            data = getattr(event, "data", getattr(event, "payload", b""))
            assert type(data) in (bytes, str), event

    @settings(FAST, max_examples=40)
    @given(
        st.binary(min_size=0, max_size=3),
        st.integers(1000, 70_000),
        masks,
        st.lists(st.integers(0, 80_000), max_size=6),
    )
    def test_largeBytearrayChunks(
        self, seed: bytes, size: int, mask: bytes, cuts: list[int]
    ) -> None:
        """
        A large binary message (the NumPy unmasking sizes) fed as
        C{bytearray} chunks, then the buffers overwritten, is the message,
        as C{bytes}: nothing the reader keeps refers to a chunk it was fed.
        """
        payload = (seed + bytes(range(256))) * (size // 256 + 1)
        payload = payload[:size]
        reader = MessageReader(LIMIT, LIMIT)
        events: list[Event] = []
        for chunk in chunked(clientFrame(BINARY, payload, mask=mask), cuts):
            buffer = bytearray(chunk)
            events += reader.feed(buffer)  # type: ignore[arg-type]
            buffer[:] = bytes(len(buffer))
        assert events == [BinaryMessage(payload)]
        assert type(events[0].data) is bytes  # type: ignore[attr-defined]

    @settings(FAST, max_examples=60)
    @given(fragmentedStream())
    def test_byteByByte(self, streamAndEvents: tuple[bytes, list[Event]]) -> None:
        """
        The same streams fed one byte at a time give the same events, the
        reader holding at most an incomplete header between calls.
        """
        stream, expected = streamAndEvents
        reader = MessageReader(LIMIT, LIMIT)
        events: list[Event] = []
        for index in range(len(stream)):
            events += reader.feed(stream[index : index + 1])
            assert len(reader._pending) <= 13
        assert events == expected

    @settings(FAST, max_examples=300)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from([CONT, TEXT, BINARY, 3, CLOSE, PING, PONG, 11]),
                st.one_of(
                    st.binary(max_size=140),
                    st.text(max_size=60).map(str.encode),
                    st.sampled_from([b"\x03\xe8", b"\x03\xedok", b"\xed\xa0\x80"]),
                ),
                st.booleans(),  # FIN
                st.sampled_from([0, 0, 0, 0, 0x40, 0x10]),  # RSV
                st.sampled_from([True] * 9 + [False]),  # masked
            ),
            max_size=8,
        ),
        st.lists(st.integers(0, 2_000), max_size=20),
    )
    def test_anyChunkingSameEventsEvenForBadInput(
        self, frames: list[tuple[int, bytes, bool, int, bool]], cuts: list[int]
    ) -> None:
        """
        For any sequence of frames, valid or not (bad opcodes, RSV bits,
        unmasked frames, bad UTF-8, bad close payloads, frames over the
        limits), any chunking gives the same events and the same failure
        code as feeding it all at once.
        """
        stream = b"".join(
            clientFrame(op, payload, fin, rsv, b"\x37\xfa\x21\x3d" if masked else None)
            for op, payload, fin, rsv, masked in frames
        )

        def normalised(events: list[Event]) -> list[object]:
            # The failure's wording may depend on where the bytes were cut;
            # its code may not.
            return [
                ("failed", e.code) if isinstance(e, ConnectionFailed) else e
                for e in events
            ]

        whole = MessageReader(100, 250).feed(stream)
        pieces = feedChunks(MessageReader(100, 250), chunked(stream, cuts))
        assert normalised(pieces) == normalised(whole)


@st.composite
def singleFrames(draw: st.DrawFn) -> tuple[int, bytes, Event]:
    """
    An opcode, a payload and the event the frame must give.
    """
    kind = draw(st.sampled_from(["text", "binary", "ping", "pong", "close"]))
    if kind == "text":
        text = draw(st.text(max_size=300))
        return TEXT, text.encode(), TextMessage(text)
    if kind == "binary":
        size = draw(st.one_of(st.integers(0, 300), st.sampled_from([65535, 65536])))
        data = draw(st.randoms(use_true_random=False)).randbytes(size)
        return BINARY, data, BinaryMessage(data)
    if kind == "close":
        code = draw(st.sampled_from([1000, 1001, 1003, 1007, 1011, 3000, 4999]))
        reason = draw(st.text(max_size=30))
        return CLOSE, closePayload(code, reason.encode()), CloseReceived(code, reason)
    payload = draw(st.binary(max_size=125))
    if kind == "ping":
        return PING, payload, PingReceived(payload)
    return PONG, payload, PongReceived(payload)


class TestSerializerProperties:
    """
    What L{serializeFrame} and L{serializeMessage} write, masked as a client
    would, the reader parses back to the input.
    """

    @FAST
    @given(singleFrames(), masks)
    def test_serializeFrameRoundTrip(
        self, frame: tuple[int, bytes, Event], mask: bytes
    ) -> None:
        """
        A serialised frame, masked, parses back to its opcode and payload;
        and serialising with the key gives exactly the same masked bytes.
        """
        opcode, payload, expected = frame
        serverFrame = serializeFrame(opcode, payload)
        masked = maskServerFrame(serverFrame, mask)
        assert serializeFrame(opcode, payload, mask=mask) == masked
        assert MessageReader(LIMIT, LIMIT).feed(masked) == [expected]

    @FAST
    @given(messages(), st.integers(1, 64), masks, st.lists(st.integers(0, 500)))
    def test_serializeMessageRoundTrip(
        self,
        message: TextMessage | BinaryMessage,
        frameSize: int,
        mask: bytes,
        cuts: list[int],
    ) -> None:
        """
        A message serialised in frames of any size, each masked, fed in any
        chunks, is that message again; no frame is over C{frameSize}.
        """
        if isinstance(message, TextMessage):
            opcode, payload = TEXT, message.data.encode("utf-8")
        else:
            opcode, payload = BINARY, message.data
        data = serializeMessage(opcode, payload, frameSize)
        frames = parseServerFrames(data)
        assert all(len(part) <= frameSize for _, _, _, part in frames)
        stream = b"".join(
            maskServerFrame(serializeFrame(op, part, fin), mask)
            for fin, _, op, part in frames
        )
        assert b"".join(serializeFrame(o, p, f) for f, _, o, p in frames) == data
        reader = MessageReader(LIMIT, LIMIT)
        assert feedChunks(reader, chunked(stream, cuts)) == [message]


#: Pieces that make UTF-8 interesting: boundaries, surrogates, overlongs,
#: out-of-range and truncated sequences, stray continuation bytes.
UTF8_PIECES = [
    b"\xc2\x80",
    b"\xdf\xbf",
    b"\xe0\xa0\x80",
    b"\xed\x9f\xbf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xee\x80\x80",
    b"\xef\xbf\xbf",
    b"\xf0\x90\x80\x80",
    b"\xf4\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xc0\x80",
    b"\xe0\x80\x80",
    b"\xf0\x80\x80\x80",
    b"\xf5",
    b"\xff",
    b"\x80",
    b"\xe2\x82",
    b"\xf0\x9f",
    b"\xed\xa0",  # a surrogate's first two bytes, the stdlib's blind spot
    b"\xed",
    b"\xf4\x90",
]

utf8ish = st.lists(
    st.one_of(
        st.text(max_size=8).map(str.encode),
        st.sampled_from(UTF8_PIECES),
        st.binary(max_size=3),
    ),
    max_size=12,
).map(b"".join)


class TestUtf8Properties:
    """
    RFC 6455 section 8.1: the incremental validator is C{bytes.decode},
    only earlier.
    """

    @settings(FAST, max_examples=400)
    @given(st.one_of(utf8ish, st.binary(max_size=40)), st.lists(st.integers(0, 100)))
    def test_agreesWithDecode(self, data: bytes, cuts: list[int]) -> None:
        """
        Fed in any pieces, the validator accepts exactly what
        C{bytes.decode} accepts.
        """
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            expected = False
        else:
            expected = True
        validator = Utf8Validator()
        try:
            for piece in chunked(data, cuts):
                validator.feed(piece)
            validator.finish()
        except InvalidPayload:
            accepted = False
        else:
            accepted = True
        assert accepted == expected

    @settings(FAST, max_examples=400)
    @given(utf8ish, st.lists(st.integers(0, 40)))
    def test_failsInTheFirstImpossiblePiece(self, data: bytes, cuts: list[int]) -> None:
        """
        Fed in any pieces, the validator raises exactly on the piece that
        holds the first byte no valid UTF-8 can continue with.
        """
        bad = firstImpossibleIndex(data)
        validator = Utf8Validator()
        offset = 0
        for piece in chunked(data, cuts):
            end = offset + len(piece)
            if bad is not None and offset <= bad < end:
                try:
                    validator.feed(piece)
                except InvalidPayload:
                    return
                raise AssertionError(f"no failure at byte {bad}")
            validator.feed(piece)
            offset = end
        assert bad is None


#: Header lines of a good request, to mutate.
GOOD_LINES = [
    b"Host: server.example.com",
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    b"Sec-WebSocket-Version: 13",
    b"Origin: http://example.com",
    b"Sec-WebSocket-Protocol: chat",
    b"Sec-WebSocket-Key1: 1 2",
]

headerNames = st.sampled_from(
    [
        b"Host",
        b"Upgrade",
        b"Connection",
        b"Sec-WebSocket-Key",
        b"Sec-WebSocket-Version",
        b"Origin",
        b"Sec-WebSocket-Origin",
        b"Sec-WebSocket-Key2",
        b"X",
    ]
)

headerValues = st.one_of(
    st.binary(max_size=30),
    # Digits and the Latin-1 characters str.isdigit() also accepts.
    st.text(st.characters(categories=("Nd", "No"), codec="latin-1"), max_size=3).map(
        lambda text: text.encode("latin-1")
    ),
)

headerLines = st.one_of(
    st.sampled_from(GOOD_LINES),
    st.builds(lambda n, v: n + b": " + v, headerNames, headerValues),
    st.binary(max_size=30),
)


@st.composite
def mutatedHeaderLines(draw: st.DrawFn) -> list[bytes]:
    """
    A good request's header lines, each kept, dropped or given another
    value, with random lines added: heads that get deep into the checks.
    """
    lines = []
    for line in GOOD_LINES[:-1]:
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "value"]))
        if action == "keep":
            lines.append(line)
        elif action == "value":
            lines.append(line.split(b":")[0] + b": " + draw(headerValues))
    return lines + draw(st.lists(headerLines, max_size=3))


requestLines = st.one_of(
    st.just(b"GET /chat HTTP/1.1"),
    st.just(b"GET /chat HTTP/1.1"),
    st.builds(
        lambda m, t, v: m + b" " + t + b" HTTP/" + v,
        st.sampled_from([b"GET", b"POST", b"G\xc3\xa9T"]),
        st.one_of(st.just(b"/chat?x=1"), st.binary(min_size=1, max_size=10)),
        st.sampled_from([b"1.1", b"1.0", b"2.0", b"9.9"]),
    ),
    st.binary(max_size=30),
)


class TestHandshakeProperties:
    """
    Every refusal of the opening handshake is a L{HandshakeError} with an
    HTTP status: no request head, however broken, raises anything else.
    """

    @settings(FAST, max_examples=400)
    @given(requestLines, mutatedHeaderLines(), st.booleans())
    @example(
        b"GET /chat HTTP/1.1",
        [*GOOD_LINES[:4], b"Sec-WebSocket-Version: \xb9\xb3"],  # superscript 13
        False,
    )
    def test_onlyHandshakeErrors(
        self, requestLine: bytes, lines: list[bytes], hixie: bool
    ) -> None:
        """
        Parsing and checking any head either accepts it or raises
        L{HandshakeError} with a 4xx/5xx status.
        """
        head = b"\r\n".join([requestLine, *lines])
        try:
            checkUpgrade(parseRequestHead(head), allowHixie76=hixie)
        except HandshakeError as error:
            assert 400 <= error.status <= 599

    @FAST
    @given(
        st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"\r\n")),
        st.sampled_from([b"", b"\r\n\r\n", b"\r\n\r\nrest", b"\r\n\r"]),
        st.integers(-3, 3),
        st.integers(-2, 5),
        st.lists(st.integers(0, 80), max_size=6),
    )
    @example(b"GET / HTTP/1.1", b"\r\n\r\n", 0, 3, [])
    def test_headReaderChunkingIndependent(
        self, body: bytes, tail: bytes, slack: int, nearEnd: int, cuts: list[int]
    ) -> None:
        """
        L{RequestHeadReader} gives the same head and leftover, or the same
        431, however its input is chunked, also for heads within a few bytes
        of the size bound cut within a few bytes of their end.
        """
        data = body + tail
        maxSize = max(1, len(body) + slack)
        cuts = [*cuts, max(0, len(body) + nearEnd)]

        def outcome(chunks: list[bytes]) -> object:
            reader = RequestHeadReader(maxSize)
            try:
                for index, chunk in enumerate(chunks):
                    head = reader.feed(chunk)
                    if head is not None:
                        unfed = b"".join(chunks[index + 1 :])
                        return head, reader.leftover + unfed
            except HandshakeError as error:
                return error.status
            return None

        assert outcome(chunked(data, cuts)) == outcome([data])
