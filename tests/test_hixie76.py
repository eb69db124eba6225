"""
Tests for L{txclws._core.hixie76}: draft-hixie-thewebsocketprotocol-76 (the same
protocol as draft-ietf-hybi-thewebsocketprotocol-00), byte for byte.

Grouped as the draft is: the handshake's challenge and its refusals
(sections 1.3, 4.1 and 5.2), the server's answer (5.2), the framing the
server reads (5.3) and writes (4.2 / 5.3), the closing handshake; then the
adapter's side of it over a L{StringTransport}: the 8 bytes after the head,
the location, the timeout.
"""

from __future__ import annotations

from hashlib import md5
from itertools import pairwise
from struct import pack
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.testing import MemoryReactorClock, StringTransport
from zope.interface import directlyProvides

from tests.conftest import RecordingResource
from txclws import (
    ConnectionClosed,
    HandshakeError,
    ResourceRegistry,
    UnsupportedByProtocol,
    WebSocketFactory,
    anyOrigin,
)
from txclws._core.connection import ConnectionState, WebSocketConnection
from txclws._core.events import CloseReceived, ConnectionFailed, Event, TextMessage
from txclws._core.frames import CloseCode, Opcode
from txclws._core.hixie76 import (
    CLOSING_FRAME,
    Hixie76Connection,
    Hixie76Reader,
    _keyNumber,
    hixie76Challenge,
    hixie76Response,
)

# The worked example of draft-hixie-76 section 1.3.
KEY1 = "4 @1  46546xW%0l 1 5"
KEY2 = "12998 5 Y3 1  .P00"
BODY = b"^n:ds[4U"
ANSWER = b"8jKS'y:G*Co,Wxa-"

# The worked example of draft-hixie-76 section 5.2.
KEY1_B = "18x 6]8vM;54 *(5:  {   U1]8  z [  8"
KEY2_B = "1_ tx7X d  <  nw  334J702) 7]o}` 0"
BODY_B = b"Tm[K T2u"
ANSWER_B = b"fQJ,fN/4F4!~K~MH"

#: The draft's section 1.3 request, byte for byte, and its answer.
DRAFT_REQUEST = (
    b"GET /demo HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n"
    b"Sec-WebSocket-Protocol: sample\r\n"
    b"Upgrade: WebSocket\r\n"
    b"Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n"
    b"Origin: http://example.com\r\n"
    b"\r\n"
)
DRAFT_RESPONSE = (
    b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n"
    b"Upgrade: WebSocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Origin: http://example.com\r\n"
    b"Sec-WebSocket-Location: ws://example.com/demo\r\n"
    b"Sec-WebSocket-Protocol: sample\r\n"
    b"\r\n"
    b"8jKS'y:G*Co,Wxa-"
)

LIMIT = 1 << 20


def feedEach(reader: Hixie76Reader, *pieces: bytes) -> list[Event]:
    """
    Feed C{pieces} one call each; return all the events.
    """
    events: list[Event] = []
    for piece in pieces:
        events += reader.feed(piece)
    return events


def feedBytewise(reader: Hixie76Reader, data: bytes) -> list[Event]:
    """
    Feed C{data} one byte per call; return all the events.
    """
    return feedEach(reader, *(data[i : i + 1] for i in range(len(data))))


# -- the challenge (sections 1.3, 4.1, 5.2) ----------------------------------


class TestChallenge:
    """
    The 16-byte answer: MD5 of the two key numbers, big-endian 32 bits each,
    then the 8 bytes after the head.
    """

    @pytest.mark.parametrize(
        ("key1", "key2", "body", "answer"),
        [(KEY1, KEY2, BODY, ANSWER), (KEY1_B, KEY2_B, BODY_B, ANSWER_B)],
        ids=["section-1.3", "section-5.2"],
    )
    def test_draftExamples(
        self, key1: str, key2: str, body: bytes, answer: bytes
    ) -> None:
        """
        Both worked examples of the draft give exactly the answer the draft
        prints.
        """
        assert hixie76Challenge(key1, key2, body) == answer

    @pytest.mark.parametrize(
        ("key", "number"),
        [
            # 4146546015 / 5 spaces.
            (KEY1, 829309203),
            # 1299853100 / 5 spaces.
            (KEY2, 259970620),
            # 1868545188 / 12 spaces.
            (KEY1_B, 155712099),
            # 1733470270 / 10 spaces.
            (KEY2_B, 173347027),
        ],
    )
    def test_keyNumbers(self, key: str, number: int) -> None:
        """
        A key's number is its digits, read as one decimal number, divided
        by its count of spaces; every other character is ignored.
        """
        assert _keyNumber(key) == number

    def test_largestKey(self) -> None:
        """
        A key number of exactly 4,294,967,295 (the largest a client makes,
        section 4.1) is accepted and packed as 32 bits.
        """
        # 4294967295 with one space: part 4294967295 = 0xFFFFFFFF.
        expected = md5(pack("!II", 0xFFFFFFFF, 1) + BODY).digest()
        assert hixie76Challenge("42949 67295", "1 ", BODY) == expected

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param("1234567", id="no-spaces"),
            pytest.param("1 3 5", id="not-divisible"),  # 135 / 2
            pytest.param("a b c", id="no-digits"),
            pytest.param("  ", id="spaces-only"),
            pytest.param("42949 67296", id="over-32-bits"),  # 2**32, 1 space
            # 8589934590 / 2 = 0xFFFFFFFF would fit, but no client makes a
            # key number over 4,294,967,295 (section 4.1).
            pytest.param("8589 934 590", id="key-number-over-32-bits"),
            pytest.param("1 " + "1" * 5000, id="thousands-of-digits"),
        ],
    )
    @pytest.mark.parametrize("which", ["key1", "key2"])
    def test_badKey(self, key: str, which: str) -> None:
        """
        A key with no spaces, no digits, a number that the spaces do not
        divide, or a number over 32 bits is refused with 400, whichever key
        it is; never with another exception (a 5,000-digit key must not
        reach C{int()}'s digit limit).
        """
        keys = (key, KEY2) if which == "key1" else (KEY1, key)
        with pytest.raises(HandshakeError) as info:
            hixie76Challenge(*keys, BODY)
        assert info.value.status == 400

    @pytest.mark.parametrize("body", [b"", b"1234567", b"123456789"])
    def test_bodyNotEightBytes(self, body: bytes) -> None:
        """
        The challenge needs exactly the 8 bytes after the head: fewer or
        more is 400.
        """
        with pytest.raises(HandshakeError) as info:
            hixie76Challenge(KEY1, KEY2, body)
        assert info.value.status == 400


# -- the server's answer (section 5.2) ---------------------------------------


class TestResponse:
    """
    The 101 answer: its status line, the two headers, then the challenge's
    16 bytes right after the empty line.
    """

    def test_draftExample(self) -> None:
        """
        For the section 1.3 request the answer is, byte for byte, the one
        the draft prints.
        """
        response = hixie76Response(
            ANSWER, "http://example.com", "ws://example.com/demo", "sample"
        )
        assert response == DRAFT_RESPONSE

    def test_noOriginNoSubprotocol(self) -> None:
        """
        Without an origin the answer says C{null}; without a subprotocol it
        has no C{Sec-WebSocket-Protocol}.
        """
        response = hixie76Response(ANSWER, None, "wss://h/x?y")
        assert response == (
            b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n"
            b"Upgrade: WebSocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Origin: null\r\n"
            b"Sec-WebSocket-Location: wss://h/x?y\r\n"
            b"\r\n" + ANSWER
        )


# -- framing the server reads (section 5.3) ----------------------------------


class TestResponseLocation:
    """
    The location is a URI, so ASCII (RFC 3986 section 2).
    """

    def test_nonAsciiLocationRefused(self) -> None:
        """
        A location that is not ASCII is a 400 L{HandshakeError}, not an
        encoding error while answering.
        """
        with pytest.raises(HandshakeError) as info:
            hixie76Response(ANSWER, None, "ws://example.com/demo?\xe9")
        assert info.value.status == 400


class TestReaderText:
    """
    Text frames: C{0x00}, UTF-8, C{0xFF}.
    """

    def test_textFrames(self) -> None:
        """
        Two text frames in one feed give two messages, in order; an empty
        frame is an empty message.
        """
        reader = Hixie76Reader(LIMIT)
        events = reader.feed(b"\x00hello\xff\x00\xff\x00w\xc3\xb6rld\xff")
        assert events == [TextMessage("hello"), TextMessage(""), TextMessage("wörld")]

    def test_bytewise(self) -> None:
        """
        The same frames fed one byte at a time give the same messages, each
        only once its C{0xFF} arrives.
        """
        reader = Hixie76Reader(LIMIT)
        assert feedEach(reader, b"\x00hel", b"lo") == []
        assert reader.feed(b"\xff") == [TextMessage("hello")]
        assert feedBytewise(reader, b"\x00\xe2\x82\xac\xff") == [TextMessage("€")]

    @pytest.mark.parametrize("split", [1, 2, 3])
    def test_utf8SplitAcrossFeeds(self, split: int) -> None:
        """
        A character whose UTF-8 bytes (here the 4 of U+1F600) are split
        across feeds at any point arrives whole.
        """
        encoded = "😀".encode()
        reader = Hixie76Reader(LIMIT)
        events = feedEach(reader, b"\x00a" + encoded[:split], encoded[split:] + b"\xff")
        assert events == [TextMessage("a😀")]

    @pytest.mark.parametrize(
        "frame",
        [
            pytest.param(b"\x00\xc3\x28\xff", id="bad-continuation"),
            pytest.param(b"\x00ok\xc3\xff", id="ends-inside-a-character"),
            pytest.param(b"\x00\xed\xa0\x80\xff", id="surrogate"),
            pytest.param(b"\x00\xc0\xaf\xff", id="overlong"),
            pytest.param(b"\x00\xf4\x90\x80\x80\xff", id="over-U+10FFFF"),
        ],
    )
    def test_invalidUtf8(self, frame: bytes) -> None:
        """
        A text frame that is not UTF-8 fails the connection with 1007
        (section 5.3 leaves it to the server; we refuse, as RFC 6455 8.1
        does), whether it arrives at once or byte by byte.
        """
        for events in (
            Hixie76Reader(LIMIT).feed(frame),
            feedBytewise(Hixie76Reader(LIMIT), frame),
        ):
            assert len(events) == 1
            [failed] = events
            assert isinstance(failed, ConnectionFailed)
            assert failed.code == CloseCode.INVALID_PAYLOAD

    def test_invalidUtf8FailsEarly(self) -> None:
        """
        An impossible byte fails the connection as soon as it arrives, not
        once the frame ends: nothing more is buffered for it.
        """
        reader = Hixie76Reader(LIMIT)
        [failed] = reader.feed(b"\x00abc\xc0")
        assert isinstance(failed, ConnectionFailed)
        assert failed.code == CloseCode.INVALID_PAYLOAD

    def test_sizeBound(self) -> None:
        """
        A text frame of exactly the bound is a message; one byte more fails
        with 1009, as soon as the excess arrives, before its C{0xFF}.
        """
        assert Hixie76Reader(5).feed(b"\x00abcde\xff") == [TextMessage("abcde")]
        reader = Hixie76Reader(5)
        assert reader.feed(b"\x00abc") == []
        [failed] = reader.feed(b"def")
        assert failed == ConnectionFailed(CloseCode.MESSAGE_TOO_BIG, failed.reason)

    def test_afterFailureIgnored(self) -> None:
        """
        After a failure the reader ignores every later byte.
        """
        reader = Hixie76Reader(LIMIT)
        [failed] = reader.feed(b"\x00\xc0\x00ok\xff")
        assert isinstance(failed, ConnectionFailed)
        assert reader.feed(b"\x00ok\xff") == []


class TestReaderDiscarded:
    """
    Frames that are not text are read and discarded.
    """

    def test_lengthPrefixedFrames(self) -> None:
        """
        A frame whose type has its high bit set carries a base-128 length,
        the high bit of each length byte saying another follows: one of 3
        bytes, one of 128 (C{0x81 0x00}) and one of 0 are skipped whole,
        their payloads (0xFF bytes included) never read as frames.
        """
        stream = (
            b"\x80\x03\xff\x00\xff"  # type 0x80, length 3
            + b"\x82\x81\x00"  # type 0x82, length 1*128 + 0 = 128
            + b"\xff" * 128
            + b"\x90\x00"  # type 0x90, length 0
            + b"\x00after\xff"
        )
        assert Hixie76Reader(LIMIT).feed(stream) == [TextMessage("after")]
        assert feedBytewise(Hixie76Reader(LIMIT), stream) == [TextMessage("after")]

    def test_threeByteLength(self) -> None:
        """
        A length of three bytes (C{0x81 0x80 0x05}: 1*128*128 + 0 + 5 =
        16389) is skipped whole too.
        """
        stream = b"\x80\x81\x80\x05" + b"x" * 16389 + b"\x00ok\xff"
        assert Hixie76Reader(LIMIT).feed(stream) == [TextMessage("ok")]

    def test_lengthOverBound(self) -> None:
        """
        A length over the bound fails with 1009 as soon as its length bytes
        say so, without waiting for the payload.
        """
        [failed] = Hixie76Reader(100).feed(b"\x80\x81\x00")  # 128 > 100
        assert isinstance(failed, ConnectionFailed)
        assert failed.code == CloseCode.MESSAGE_TOO_BIG

    def test_otherSentinelFrames(self) -> None:
        """
        A frame whose type has its high bit clear but is not C{0x00} runs to
        the next C{0xFF} and is discarded, its bytes unchecked (invalid
        UTF-8 included).
        """
        stream = b"\x01abc\xff\x7f\xc0\xc1\xff\x00ok\xff"
        assert Hixie76Reader(LIMIT).feed(stream) == [TextMessage("ok")]
        assert feedBytewise(Hixie76Reader(LIMIT), stream) == [TextMessage("ok")]


class TestReaderClosing:
    """
    The closing frame: C{0xFF 0x00}.
    """

    def test_closingFrame(self) -> None:
        """
        C{0xFF 0x00} is the closing handshake: a L{CloseReceived} with no
        status (1005), after the messages before it.
        """
        events = Hixie76Reader(LIMIT).feed(b"\x00bye\xff\xff\x00")
        assert events == [
            TextMessage("bye"),
            CloseReceived(CloseCode.NO_STATUS_RCVD, ""),
        ]

    def test_closingFrameSplit(self) -> None:
        """
        Its two bytes may arrive in two feeds.
        """
        reader = Hixie76Reader(LIMIT)
        assert reader.feed(b"\xff") == []
        assert reader.feed(b"\x00") == [CloseReceived(CloseCode.NO_STATUS_RCVD, "")]

    def test_longZeroLength(self) -> None:
        """
        A zero length spelled in two bytes (C{0x80 0x00}) after C{0xFF} is
        still a length of 0: the closing frame.
        """
        events = Hixie76Reader(LIMIT).feed(b"\xff\x80\x00")
        assert events == [CloseReceived(CloseCode.NO_STATUS_RCVD, "")]

    def test_typeFFWithPayload(self) -> None:
        """
        C{0xFF} with a non-zero length is an ordinary discarded frame, not
        the closing frame.
        """
        events = Hixie76Reader(LIMIT).feed(b"\xff\x02\xff\x00\x00ok\xff")
        assert events == [TextMessage("ok")]

    def test_inputAfterCloseIgnored(self) -> None:
        """
        Bytes after the closing frame, in the same feed or later, are
        ignored.
        """
        reader = Hixie76Reader(LIMIT)
        events = reader.feed(b"\xff\x00\x00late\xff")
        assert events == [CloseReceived(CloseCode.NO_STATUS_RCVD, "")]
        assert reader.feed(b"\x00later\xff\xff\x00") == []


_FRAMES = st.one_of(
    st.text(max_size=20).map(lambda t: b"\x00" + t.encode() + b"\xff"),
    st.binary(max_size=300).map(
        # A discarded length-prefixed frame, its length in base 128.
        lambda p: (
            b"\x80"
            + bytes([0x80 | (len(p) >> 7)] if len(p) >= 128 else [])
            + bytes([len(p) & 0x7F])
            + p
        )
    ),
    st.binary(max_size=20)
    .filter(lambda p: b"\xff" not in p)
    .map(lambda p: b"\x05" + p + b"\xff"),
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(_FRAMES, max_size=8), st.lists(st.integers(0, 3000), max_size=20))
def test_anyChunking(frames: list[bytes], cuts: list[int]) -> None:
    """
    A stream of text, length-prefixed and other sentinel frames, then the
    closing frame, gives the same events however it is cut into feeds.
    """
    stream = b"".join(frames) + CLOSING_FRAME
    whole = Hixie76Reader(LIMIT).feed(stream)
    points = [0, *sorted(min(c, len(stream)) for c in cuts), len(stream)]
    reader = Hixie76Reader(LIMIT)
    pieces = feedEach(reader, *(stream[a:b] for a, b in pairwise(points)))
    assert pieces == whole
    assert whole[-1] == CloseReceived(CloseCode.NO_STATUS_RCVD, "")


# -- what the server sends (sections 4.2, 5.3, closing) ----------------------


class TestConnection:
    """
    L{Hixie76Connection}: the connection state machine with hixie-76
    framing.
    """

    def test_sendText(self) -> None:
        """
        A text message is C{0x00}, its UTF-8, C{0xFF}; C{frameSize} does not
        split it (hixie-76 has no fragments).
        """
        connection = Hixie76Connection(LIMIT, LIMIT)
        assert connection.frameText("héllo") == b"\x00h\xc3\xa9llo\xff"
        assert connection.frameText(b"abcdef", frameSize=2) == b"\x00abcdef\xff"
        assert connection.frameText("") == b"\x00\xff"

    def test_sendTextNotUtf8(self) -> None:
        """
        Bytes that are not UTF-8 are refused with ValueError, as for RFC
        6455 (an 0xFF byte would end the frame early).
        """
        with pytest.raises(ValueError):
            Hixie76Connection(LIMIT, LIMIT).frameText(b"a\xffb")

    def test_noBinaryNoPing(self) -> None:
        """
        A binary message or a ping raises L{UnsupportedByProtocol}: the
        protocol has neither; the connection stays usable.
        """
        connection = Hixie76Connection(LIMIT, LIMIT)
        with pytest.raises(UnsupportedByProtocol):
            connection.frameBinary(b"\x01")
        with pytest.raises(UnsupportedByProtocol):
            connection.framePing(b"")
        assert connection.frameText("still") == b"\x00still\xff"

    def test_frameMessage(self) -> None:
        """
        What a broadcast asks for: text framed, binary L{None}, under a wire
        key different from RFC 6455's.
        """
        connection = Hixie76Connection(LIMIT, LIMIT)
        assert connection.frameMessage(Opcode.TEXT, b"hi") == b"\x00hi\xff"
        assert connection.frameMessage(Opcode.BINARY, b"hi") is None
        assert connection.wireKey != WebSocketConnection(LIMIT, LIMIT).wireKey

    def test_serverCloses(self) -> None:
        """
        Our close is C{0xFF 0x00} whatever the code (hixie-76 has none),
        sent once; the client's C{0xFF 0x00} then completes it.
        """
        connection = Hixie76Connection(LIMIT, LIMIT)
        assert connection.frameClose(1001, "going") == CLOSING_FRAME
        assert connection.state is ConnectionState.LOCAL_CLOSING
        assert connection.frameClose() == b""
        with pytest.raises(ConnectionClosed):
            connection.frameText("late")
        events = connection.receiveData(CLOSING_FRAME)
        assert events == [CloseReceived(CloseCode.NO_STATUS_RCVD, "")]
        assert connection.state is ConnectionState.CLOSED

    def test_clientCloses(self) -> None:
        """
        The client's C{0xFF 0x00} is answered with ours.
        """
        connection = Hixie76Connection(LIMIT, LIMIT)
        [event] = connection.receiveData(CLOSING_FRAME)
        assert connection.state is ConnectionState.REMOTE_CLOSING
        assert connection.frameClose(event.code) == CLOSING_FRAME  # type: ignore[union-attr]
        assert connection.state is ConnectionState.CLOSED

    def test_failureClose(self) -> None:
        """
        After a failure (invalid UTF-8) our close is still just
        C{0xFF 0x00}: no code travels.
        """
        connection = Hixie76Connection(LIMIT, LIMIT)
        [failed] = connection.receiveData(b"\x00\xc0")
        assert isinstance(failed, ConnectionFailed)
        assert connection.frameClose(failed.code, failed.reason) == CLOSING_FRAME

    def test_smallerLimitApplies(self) -> None:
        """
        hixie-76 has no frames within messages: the smaller of the frame
        and message limits bounds a text frame.
        """
        connection = Hixie76Connection(4, 10)
        assert connection.receiveData(b"\x00abcd\xff") == [TextMessage("abcd")]
        [failed] = connection.receiveData(b"\x00abcde")
        assert isinstance(failed, ConnectionFailed)
        assert failed.code == CloseCode.MESSAGE_TOO_BIG


# -- the adapter's side: the 8 bytes after the head, the location ------------

PEER = IPv4Address("TCP", "192.0.2.7", 40000)


def makeServer(
    resource: Any, path: str = "/demo", **limits: Any
) -> tuple[WebSocketFactory, MemoryReactorClock]:
    """
    A factory serving C{resource} at C{path}, hixie-76 enabled, on a
    L{MemoryReactorClock}.
    """
    clock = MemoryReactorClock()
    registry = ResourceRegistry()
    registry.register(path, resource, anyOrigin)
    limits.setdefault("protocol76Support", True)
    return WebSocketFactory(registry, reactor=clock, **limits), clock


def connect(
    factory: WebSocketFactory, ssl: bool = False
) -> tuple[Any, StringTransport]:
    """
    A new protocol connected to a fresh transport (one that says it is TLS
    when C{ssl} is set).
    """
    protocol = factory.buildProtocol(PEER)
    transport = StringTransport(peerAddress=PEER)
    if ssl:
        directlyProvides(transport, ISSLTransport)
    protocol.makeConnection(transport)
    return protocol, transport


class Sample(RecordingResource):
    """
    Agrees on the subprotocol C{sample} when offered.
    """

    def __init__(self) -> None:
        super().__init__(echo=False)
        self.respond["selectSubprotocol"] = lambda client, offered: "sample"


class TestAdapter:
    """
    L{WebSocketServerProtocol} serving a hixie-76 client.
    """

    def test_draftExample(self) -> None:
        """
        The draft's section 1.3 request, its 8 bytes in the same write, is
        answered with exactly the draft's response; the client is version
        0 and its messages arrive.
        """
        resource = Sample()
        factory, _ = makeServer(resource)
        protocol, transport = connect(factory)
        protocol.dataReceived(DRAFT_REQUEST + BODY + b"\x00hi\xff")
        assert transport.value() == DRAFT_RESPONSE
        assert resource.named("clientConnected") == [protocol]
        assert protocol.websocketVersion == 0
        assert protocol.subprotocol == "sample"
        assert resource.named("receivedText") == ["hi"]

    def test_bodyLateInPieces(self) -> None:
        """
        Nothing is answered until all 8 bytes after the head are here; they
        may come in pieces, the last with the first frame.
        """
        resource = Sample()
        factory, _ = makeServer(resource)
        protocol, transport = connect(factory)
        protocol.dataReceived(DRAFT_REQUEST)
        protocol.dataReceived(BODY[:3])
        protocol.dataReceived(BODY[3:7])
        assert transport.value() == b""
        assert resource.named("clientConnected") == []
        protocol.dataReceived(BODY[7:] + b"\x00x\xff")
        assert transport.value() == DRAFT_RESPONSE
        assert resource.named("receivedText") == ["x"]

    def test_bodyTimeout(self) -> None:
        """
        The handshake timeout still runs while the 8 bytes are awaited:
        without them the client is answered 408 and dropped.
        """
        factory, clock = makeServer(Sample(), handshakeTimeout=3.0)
        protocol, transport = connect(factory)
        protocol.dataReceived(DRAFT_REQUEST + BODY[:7])
        clock.advance(2.999)
        assert transport.value() == b""
        clock.advance(0.001)
        assert transport.value().startswith(b"HTTP/1.1 408 ")
        assert transport.disconnecting

    def test_locationWss(self) -> None:
        """
        Over TLS the location's scheme is C{wss}; it carries the Host
        header as sent (port included) and the whole target, query
        included.
        """
        factory, _ = makeServer(Sample())
        protocol, transport = connect(factory, ssl=True)
        request = DRAFT_REQUEST.replace(b"GET /demo ", b"GET /demo?a=1&b ").replace(
            b"Host: example.com", b"Host: example.com:8443"
        )
        protocol.dataReceived(request + BODY)
        assert b"\r\nSec-WebSocket-Location: wss://example.com:8443/demo?a=1&b\r\n" in (
            transport.value()
        )
        assert transport.value().endswith(b"\r\n\r\n" + ANSWER)

    def test_nonAsciiTarget(self) -> None:
        """
        Issue 11, defect 6: a target with a non-ASCII byte is answered 400
        (from the head, before any location is built) and closed, where it
        used to end in a C{UnicodeEncodeError} and a reset.
        """
        resource = Sample()
        factory, _ = makeServer(resource)
        protocol, transport = connect(factory)
        protocol.dataReceived(
            DRAFT_REQUEST.replace(b"GET /demo ", b"GET /demo?\xe9 ") + BODY
        )
        assert transport.value().startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert transport.value().endswith(
            b"\r\n\r\nrequest target is not visible ASCII\n"
        )
        assert transport.disconnecting
        assert resource.named("clientConnected") == []

    def test_badKeyAfterBody(self) -> None:
        """
        A malformed key is answered 400 (once the 8 bytes are here) and the
        connection closed; the resource never hears of it.
        """
        resource = Sample()
        factory, _ = makeServer(resource)
        protocol, transport = connect(factory)
        protocol.dataReceived(
            DRAFT_REQUEST.replace(b"4 @1  46546xW%0l 1 5", b"4@146546xW%0l15")
        )
        protocol.dataReceived(BODY)
        assert transport.value().startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert transport.disconnecting
        assert resource.named("clientConnected") == []

    def test_switchOff(self) -> None:
        """
        With the switch off (the default) the head alone is answered 426
        listing our versions: the 8 bytes are not awaited.
        """
        resource = Sample()
        factory, _ = makeServer(resource, protocol76Support=False)
        protocol, transport = connect(factory)
        protocol.dataReceived(DRAFT_REQUEST)
        response = transport.value()
        assert response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
        assert b"\r\nSec-WebSocket-Version: 13, 8, 7\r\n" in response
        assert transport.disconnecting

    def test_clientNoBinaryNoPing(self) -> None:
        """
        C{writeBinary} and C{ping} to a hixie-76 client raise
        L{UnsupportedByProtocol} and send nothing; C{writeText} works.
        """
        factory, _ = makeServer(Sample())
        protocol, transport = connect(factory)
        protocol.dataReceived(DRAFT_REQUEST + BODY)
        transport.clear()
        with pytest.raises(UnsupportedByProtocol):
            protocol.writeBinary(b"data")
        with pytest.raises(UnsupportedByProtocol):
            protocol.ping()
        assert transport.value() == b""
        protocol.writeText("text")
        assert transport.value() == b"\x00text\xff"

    def test_clientCloses(self) -> None:
        """
        The client's closing frame is answered with ours and the connection
        closed by the server.
        """
        factory, _ = makeServer(Sample())
        protocol, transport = connect(factory)
        protocol.dataReceived(DRAFT_REQUEST + BODY)
        transport.clear()
        protocol.dataReceived(CLOSING_FRAME)
        assert transport.value() == CLOSING_FRAME
        assert transport.disconnecting

    def test_invalidUtf8(self) -> None:
        """
        Invalid UTF-8 fails the connection: the closing frame is sent (no
        code: hixie-76 has none) and nothing reaches the resource.
        """
        resource = Sample()
        factory, _ = makeServer(resource)
        protocol, transport = connect(factory)
        protocol.dataReceived(DRAFT_REQUEST + BODY)
        transport.clear()
        protocol.dataReceived(b"\x00\xc3\x28\xff")
        assert transport.value() == CLOSING_FRAME
        assert resource.named("receivedText") == []
        assert protocol.closeCode == CloseCode.INVALID_PAYLOAD
