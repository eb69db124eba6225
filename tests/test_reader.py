"""
Tests for L{txclws._core.reader}: the streaming parser of client frames into
messages (RFC 6455 sections 5, 7 and 8), fed byte-exact client frames.
"""

from __future__ import annotations

import pytest

from tests._frames_helpers import (
    BINARY,
    CLOSE,
    CONT,
    MASK,
    PING,
    PONG,
    TEXT,
    clientFrame,
    closePayload,
)
from txclws._core.errors import MessageTooBig
from txclws._core.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    Event,
    PingReceived,
    PongReceived,
    TextMessage,
)
from txclws._core.reader import MessageReader

LIMIT = 1 << 20


def makeReader(
    maxFrameSize: int = LIMIT, maxMessageSize: int = LIMIT, compression: object = None
) -> MessageReader:
    """
    A reader with generous limits unless told otherwise.
    """
    return MessageReader(maxFrameSize, maxMessageSize, compression)  # type: ignore[arg-type]


def feedEach(reader: MessageReader, *pieces: bytes) -> list[Event]:
    """
    Feed C{pieces} one call each; return all the events.
    """
    events: list[Event] = []
    for piece in pieces:
        events += reader.feed(piece)
    return events


def feedBytewise(reader: MessageReader, data: bytes) -> list[Event]:
    """
    Feed C{data} one byte per call; return all the events.
    """
    return feedEach(reader, *(data[i : i + 1] for i in range(len(data))))


def assertFailed(events: list[Event], code: int) -> None:
    """
    The last event is a failure with C{code}, and the only failure.
    """
    assert events, "no events"
    last = events[-1]
    assert isinstance(last, ConnectionFailed), events
    assert last.code == code, last
    assert not any(isinstance(e, ConnectionFailed) for e in events[:-1])


class TestWholeMessages:
    """
    RFC 6455 sections 5.2 and 5.6: single-frame text and binary messages.
    """

    def test_rfc_section_5_7_maskedHello(self) -> None:
        """
        The RFC 6455 section 5.7 masked "Hello" is a text message "Hello".
        """
        # 0x81: FIN, text; 0x85: MASK, length 5; key 37 fa 21 3d; payload.
        data = bytes.fromhex("818537fa213d7f9f4d5158")
        assert makeReader().feed(data) == [TextMessage("Hello")]

    def test_helperMatchesRfcExample(self) -> None:
        """
        The test helper builds the RFC's bytes, so the tests below feed what
        a real client sends.
        """
        assert clientFrame(TEXT, b"Hello") == bytes.fromhex("818537fa213d7f9f4d5158")

    def test_binary(self) -> None:
        """
        A binary frame is a binary message, bytes unchanged.
        """
        # 0x82: FIN, binary; 0x83: MASK, length 3.
        data = b"\x82\x83" + MASK + bytes((0x00 ^ 0x37, 0xFF ^ 0xFA, 0x10 ^ 0x21))
        assert makeReader().feed(data) == [BinaryMessage(b"\x00\xff\x10")]

    def test_emptyMessages(self) -> None:
        """
        Empty text and binary frames are empty messages.
        """
        # 0x81 0x80: FIN, text, MASK, length 0, then only the key.
        data = b"\x81\x80" + MASK + b"\x82\x80" + MASK
        assert makeReader().feed(data) == [TextMessage(""), BinaryMessage(b"")]

    def test_multiByteText(self) -> None:
        """
        A text payload is decoded as UTF-8.
        """
        text = "\u03ba\u1f79\u03c3\u03bc\u03b5 \u20ac \U0001f600"
        assert makeReader().feed(clientFrame(TEXT, text.encode())) == [
            TextMessage(text)
        ]

    def test_severalFramesOneChunk(self) -> None:
        """
        Frames in one chunk give their events in order.
        """
        data = (
            clientFrame(TEXT, b"one")
            + clientFrame(BINARY, b"two")
            + clientFrame(PING, b"p")
            + clientFrame(PONG, b"")
            + clientFrame(TEXT, b"three")
        )
        assert makeReader().feed(data) == [
            TextMessage("one"),
            BinaryMessage(b"two"),
            PingReceived(b"p"),
            PongReceived(b""),
            TextMessage("three"),
        ]

    def test_otherMaskKey(self) -> None:
        """
        Any key unmasks, the all-zero key included.
        """
        data = clientFrame(TEXT, b"abc", mask=b"\x00\x00\x00\x00")
        data += clientFrame(TEXT, b"abcdefgh", mask=b"\xff\x01\x80\x7f")
        assert makeReader().feed(data) == [TextMessage("abc"), TextMessage("abcdefgh")]


class TestPayloadLength:
    """
    RFC 6455 section 5.2: 7-bit, 16-bit and 64-bit payload lengths, at the
    boundaries of each form.
    """

    @pytest.mark.parametrize(
        ("length", "header"),
        [
            (0, b"\x82\x80"),  # MASK | 0
            (125, b"\x82\xfd"),  # MASK | 125
            (126, b"\x82\xfe\x00\x7e"),  # MASK | 126, then 16-bit 126
            (65535, b"\x82\xfe\xff\xff"),  # MASK | 126, then 16-bit 65535
            # MASK | 127, then 64-bit 65536
            (65536, b"\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00"),
        ],
    )
    def test_lengthForms(self, length: int, header: bytes) -> None:
        """
        Each length form at its boundaries gives the whole payload, fed at
        once or in two pieces split inside the header.
        """
        payload = bytes(range(256)) * (length // 256) + bytes(length % 256)
        frame = clientFrame(BINARY, payload)
        assert frame.startswith(header + MASK)
        assert makeReader().feed(frame) == [BinaryMessage(payload)]
        split = len(header) - 1
        events = feedEach(makeReader(), frame[:split], frame[split:])
        assert events == [BinaryMessage(payload)]

    def test_nonMinimal16BitLength(self) -> None:
        """
        A short payload whose length is written in the 16-bit form is read
        by that length (the RFC's "minimal number of bytes" rule is not
        enforced, as by most servers).
        """
        # 0xfe: MASK | 126; 00 03 = 3.
        # 56 98 42 = "abc" XOR 37 fa 21.
        data = b"\x82\xfe\x00\x03" + MASK + b"\x56\x98\x42"
        assert makeReader().feed(data) == [BinaryMessage(b"abc")]

    def test_64BitLengthHighBitSet(self) -> None:
        """
        A 64-bit length with its most significant bit set is a protocol
        error, 1002, as soon as the header is in.
        """
        # 0xff: MASK | 127; 80 00 .. 00: the high bit set.
        data = b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00" + MASK
        assertFailed(makeReader().feed(data), 1002)


class TestMasking:
    """
    RFC 6455 sections 5.1 and 5.3: a client must mask every frame.
    """

    @pytest.mark.parametrize("opcode", [TEXT, BINARY, PING, CLOSE])
    def test_unmaskedFrame(self, opcode: int) -> None:
        """
        An unmasked frame is a protocol error, 1002, from its first 2 bytes.
        """
        data = clientFrame(opcode, b"", mask=None)
        assert data[1] & 0x80 == 0
        assertFailed(makeReader().feed(data[:2]), 1002)

    def test_unmaskedAfterGoodFrame(self) -> None:
        """
        The events before an unmasked frame are kept; the failure is last.
        """
        data = clientFrame(TEXT, b"fine") + clientFrame(TEXT, b"bad", mask=None)
        events = makeReader().feed(data)
        assert events[0] == TextMessage("fine")
        assertFailed(events, 1002)


class TestReservedBits:
    """
    RFC 6455 section 5.2: RSV1-3 must be 0 unless an extension defines them.
    """

    @pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
    @pytest.mark.parametrize("opcode", [TEXT, BINARY, PING, PONG, CLOSE])
    def test_rsvWithoutExtension(self, rsv: int, opcode: int) -> None:
        """
        Any RSV bit, on any frame, without a negotiated extension, is a
        protocol error, 1002.
        """
        data = clientFrame(opcode, b"", rsv=rsv)
        assertFailed(makeReader().feed(data), 1002)

    @pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10])
    def test_rsvOnContinuation(self, rsv: int) -> None:
        """
        An RSV bit on a continuation frame is a protocol error, 1002.
        """
        data = clientFrame(TEXT, b"a", fin=False) + clientFrame(CONT, b"b", rsv=rsv)
        assertFailed(makeReader().feed(data), 1002)


class TestOpcodes:
    """
    RFC 6455 section 5.2: opcodes 3-7 and 11-15 are reserved.
    """

    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
    def test_reservedOpcode(self, opcode: int) -> None:
        """
        A reserved opcode is a protocol error, 1002.
        """
        assertFailed(makeReader().feed(clientFrame(opcode, b"")), 1002)

    @pytest.mark.parametrize("opcode", [3, 7, 11, 15])
    def test_reservedOpcodeInsideMessage(self, opcode: int) -> None:
        """
        A reserved opcode between fragments is a protocol error, 1002.
        """
        data = clientFrame(TEXT, b"a", fin=False) + clientFrame(opcode, b"")
        assertFailed(makeReader().feed(data), 1002)


class TestFragmentation:
    """
    RFC 6455 section 5.4: messages in several frames, with control frames
    allowed between the fragments.
    """

    def test_rfc_section_5_7_fragmentedHello(self) -> None:
        """
        "Hel" then "lo" is one text message "Hello".
        """
        data = clientFrame(TEXT, b"Hel", fin=False) + clientFrame(CONT, b"lo")
        # 0x01: FIN 0, text; 0x80: FIN 1, continuation.
        assert data[0] == 0x01
        assert data[9] == 0x80
        assert makeReader().feed(data) == [TextMessage("Hello")]

    def test_binaryInThree(self) -> None:
        """
        Three binary fragments, one per call, give one message at the end.
        """
        reader = makeReader()
        assert reader.feed(clientFrame(BINARY, b"ab", fin=False)) == []
        assert reader.feed(clientFrame(CONT, b"cd", fin=False)) == []
        assert reader.feed(clientFrame(CONT, b"ef")) == [BinaryMessage(b"abcdef")]

    def test_emptyFragments(self) -> None:
        """
        Empty fragments, first, middle or last, are allowed.
        """
        data = (
            clientFrame(TEXT, b"", fin=False)
            + clientFrame(CONT, b"x", fin=False)
            + clientFrame(CONT, b"", fin=False)
            + clientFrame(CONT, b"")
        )
        assert makeReader().feed(data) == [TextMessage("x")]

    def test_controlFramesBetweenFragments(self) -> None:
        """
        Pings and pongs between fragments are delivered at once, before the
        message they interrupt.
        """
        data = (
            clientFrame(TEXT, b"frag", fin=False)
            + clientFrame(PING, b"1")
            + clientFrame(CONT, b"men", fin=False)
            + clientFrame(PONG, b"2")
            + clientFrame(CONT, b"ted")
        )
        assert makeReader().feed(data) == [
            PingReceived(b"1"),
            PongReceived(b"2"),
            TextMessage("fragmented"),
        ]

    def test_closeBetweenFragments(self) -> None:
        """
        A close between fragments ends the stream; the unfinished message is
        never delivered.
        """
        data = (
            clientFrame(TEXT, b"part", fin=False)
            + clientFrame(CLOSE, closePayload(1000))
            + clientFrame(CONT, b"rest")
        )
        assert makeReader().feed(data) == [CloseReceived(1000, "")]

    def test_continuationWithoutMessage(self) -> None:
        """
        A continuation frame with no message started is a protocol error.
        """
        assertFailed(makeReader().feed(clientFrame(CONT, b"x")), 1002)

    def test_continuationAfterFinishedMessage(self) -> None:
        """
        A continuation after a message's final frame is a protocol error.
        """
        data = clientFrame(TEXT, b"done") + clientFrame(CONT, b"x")
        events = makeReader().feed(data)
        assert events[0] == TextMessage("done")
        assertFailed(events, 1002)

    @pytest.mark.parametrize("first", [TEXT, BINARY])
    @pytest.mark.parametrize("second", [TEXT, BINARY])
    def test_newMessageInsideMessage(self, first: int, second: int) -> None:
        """
        A text or binary frame inside a fragmented message is a protocol
        error, 1002.
        """
        data = clientFrame(first, b"a", fin=False) + clientFrame(second, b"b")
        assertFailed(makeReader().feed(data), 1002)

    def test_messagesAfterFragmentedMessage(self) -> None:
        """
        After a fragmented message ends, a new one may begin.
        """
        data = (
            clientFrame(BINARY, b"a", fin=False)
            + clientFrame(CONT, b"b")
            + clientFrame(TEXT, b"c", fin=False)
            + clientFrame(CONT, b"d")
        )
        assert makeReader().feed(data) == [BinaryMessage(b"ab"), TextMessage("cd")]


class TestControlFrames:
    """
    RFC 6455 section 5.5: control frames are not fragmented and carry at
    most 125 bytes.
    """

    def test_ping(self) -> None:
        """
        A ping is delivered with its payload.
        """
        # 0x89: FIN, ping; 0x85: MASK, length 5.
        data = bytes.fromhex("898537fa213d7f9f4d5158")
        assert makeReader().feed(data) == [PingReceived(b"Hello")]

    def test_pong(self) -> None:
        """
        A pong is delivered with its payload (RFC 6455 section 5.7 example).
        """
        # 0x8a: FIN, pong; 0x85: MASK, length 5.
        data = bytes.fromhex("8a8537fa213d7f9f4d5158")
        assert makeReader().feed(data) == [PongReceived(b"Hello")]

    def test_controlPayload125(self) -> None:
        """
        125 bytes, the most a control frame may carry, is accepted.
        """
        payload = bytes(range(125))
        assert makeReader().feed(clientFrame(PING, payload)) == [PingReceived(payload)]

    @pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
    @pytest.mark.parametrize("length", [126, 65536])
    def test_controlPayloadTooLong(self, opcode: int, length: int) -> None:
        """
        A control frame over 125 bytes is a protocol error, 1002, from the
        first 2 bytes of its header.
        """
        data = clientFrame(opcode, bytes(length))
        assertFailed(makeReader().feed(data[:2]), 1002)

    @pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
    def test_fragmentedControlFrame(self, opcode: int) -> None:
        """
        A control frame without FIN is a protocol error, 1002.
        """
        data = clientFrame(opcode, b"", fin=False)
        assertFailed(makeReader().feed(data), 1002)

    def test_streamedPing(self) -> None:
        """
        A ping whose payload arrives in pieces is delivered whole.
        """
        frame = clientFrame(PING, b"0123456789")
        events = feedEach(makeReader(), frame[:8], frame[8:11], frame[11:])
        assert events == [PingReceived(b"0123456789")]


#: Codes RFC 6455 section 7.4 forbids in a close frame.
INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016]
INVALID_CLOSE_CODES += [2000, 2999, 5000, 65535]

#: Codes RFC 6455 section 7.4 allows.
VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011]
VALID_CLOSE_CODES += [3000, 3999, 4000, 4999]


class TestClose:
    """
    RFC 6455 sections 5.5.1, 7.1.5 and 7.4: the close frame.
    """

    def test_closeWithoutStatus(self) -> None:
        """
        An empty close is a close with no status: code 1005, no reason.
        """
        # 0x88: FIN, close; 0x80: MASK, length 0.
        assert makeReader().feed(b"\x88\x80" + MASK) == [CloseReceived(1005, "")]

    def test_closeWithReason(self) -> None:
        """
        A close carries its code and UTF-8 reason.
        """
        data = clientFrame(CLOSE, b"\x03\xe9" + "au revoir \u00e9".encode())
        # 03 e9 = 1001.
        assert makeReader().feed(data) == [CloseReceived(1001, "au revoir \u00e9")]

    def test_oneBytePayload(self) -> None:
        """
        A close payload of 1 byte is a protocol error, 1002.
        """
        assertFailed(makeReader().feed(clientFrame(CLOSE, b"\x03")), 1002)

    @pytest.mark.parametrize("code", [c for c in INVALID_CLOSE_CODES if c != 1012])
    def test_invalidCode(self, code: int) -> None:
        """
        A close code that may not travel is a protocol error, 1002.
        """
        data = clientFrame(CLOSE, closePayload(code, b"reason"))
        assertFailed(makeReader().feed(data), 1002)

    @pytest.mark.parametrize("code", [*VALID_CLOSE_CODES, 1012])
    def test_validCode(self, code: int) -> None:
        """
        A valid close code is reported as is.
        """
        data = clientFrame(CLOSE, closePayload(code))
        assert makeReader().feed(data) == [CloseReceived(code, "")]

    @pytest.mark.parametrize("reason", [b"\xff", b"\xed\xa0\x80", b"ok\xe2\x82"])
    def test_reasonNotUtf8(self, reason: bytes) -> None:
        """
        A close reason that is not UTF-8 is invalid payload, 1007.
        """
        data = clientFrame(CLOSE, closePayload(1000, reason))
        assertFailed(makeReader().feed(data), 1007)

    def test_inputAfterCloseIgnored(self) -> None:
        """
        After a close, the rest of the chunk and every later chunk are
        ignored, even bytes that would be a failure.
        """
        reader = makeReader()
        data = clientFrame(CLOSE, closePayload(1000)) + clientFrame(TEXT, b"late")
        assert reader.feed(data) == [CloseReceived(1000, "")]
        assert reader.feed(clientFrame(TEXT, b"later")) == []
        assert reader.feed(b"\x00\x00garbage") == []
        assert reader._pending == b""

    def test_streamedClose(self) -> None:
        """
        A close whose payload streams in is reported when complete.
        """
        frame = clientFrame(CLOSE, closePayload(1001, b"going"))
        assert feedBytewise(makeReader(), frame) == [CloseReceived(1001, "going")]


class TestFailure:
    """
    RFC 6455 section 7.1.7: after failing, discard all further input.
    """

    def test_inputAfterFailureIgnored(self) -> None:
        """
        After a failure the rest of the chunk and later chunks give nothing.
        """
        reader = makeReader()
        data = clientFrame(CONT, b"x") + clientFrame(TEXT, b"never")
        assertFailed(reader.feed(data), 1002)
        assert reader.feed(clientFrame(TEXT, b"still never")) == []
        assert reader.feed(clientFrame(CLOSE, b"")) == []

    def test_failureReasonIsText(self) -> None:
        """
        The failure carries a non-empty, human-readable reason.
        """
        (event,) = makeReader().feed(clientFrame(3, b""))
        assert isinstance(event, ConnectionFailed)
        assert "opcode" in event.reason


class TestUtf8:
    """
    RFC 6455 section 8.1: text must be UTF-8; invalid text is 1007, failed
    as early as the bytes allow (Autobahn 6.4).
    """

    @pytest.mark.parametrize(
        "payload",
        [b"\xff", b"ab\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"end\xe2\x82"],
    )
    def test_singleFrame(self, payload: bytes) -> None:
        """
        A single text frame that is not UTF-8 fails with 1007.
        """
        assertFailed(makeReader().feed(clientFrame(TEXT, payload)), 1007)

    def test_acrossFragments(self) -> None:
        """
        A character cut by a fragment boundary and left invalid fails with
        1007 when the continuation that breaks it arrives.
        """
        reader = makeReader()
        # E2 82 needs one more continuation byte; "(" is not one.
        assert reader.feed(clientFrame(TEXT, b"\xe2\x82", fin=False)) == []
        assertFailed(reader.feed(clientFrame(CONT, b"(")), 1007)

    def test_validAcrossFragments(self) -> None:
        """
        A character split between fragments is valid.
        """
        data = clientFrame(TEXT, b"\xe2\x82", fin=False) + clientFrame(CONT, b"\xac")
        assert makeReader().feed(data) == [TextMessage("\u20ac")]

    def test_messageEndsInsideCharacter(self) -> None:
        """
        A fragmented text message whose last fragment ends inside a character
        fails with 1007.
        """
        data = clientFrame(TEXT, b"ok", fin=False) + clientFrame(CONT, b"\xf0\x9f")
        assertFailed(makeReader().feed(data), 1007)

    def test_failFastInsidePartialFrame(self) -> None:
        """
        Invalid bytes in the first part of a frame fail the connection before
        the rest of the frame arrives.
        """
        payload = b"hello \xed\xa0 and then a lot more text"
        frame = clientFrame(TEXT, payload)
        half = 6 + len(payload) // 2  # header (2) + key (4) + half the payload
        reader = makeReader()
        assertFailed(reader.feed(frame[:half]), 1007)
        assert reader.feed(frame[half:]) == []

    def test_failFastFirstFragmentNotFinal(self) -> None:
        """
        A whole first fragment with an impossible byte fails at once, before
        any continuation.
        """
        data = clientFrame(TEXT, b"abc\xc0", fin=False)
        assertFailed(makeReader().feed(data), 1007)

    def test_failFastInsideContinuation(self) -> None:
        """
        Invalid bytes in the first part of a continuation frame fail before
        the rest of it arrives.
        """
        reader = makeReader()
        assert reader.feed(clientFrame(TEXT, b"ok", fin=False)) == []
        frame = clientFrame(CONT, b"\xf4\x90" + b"x" * 100)
        assertFailed(reader.feed(frame[:10]), 1007)

    def test_failFastByteByByte(self) -> None:
        """
        Fed one byte at a time, the failure comes with the byte that makes
        the text impossible (here the A0 of ED A0), not later.
        """
        payload = b"abc\xed\xa0\x80xyz"
        frame = clientFrame(TEXT, payload)
        reader = makeReader()
        badAt = 6 + payload.index(b"\xa0")
        for index in range(badAt):
            assert reader.feed(frame[index : index + 1]) == [], index
        assertFailed(reader.feed(frame[badAt : badAt + 1]), 1007)

    def test_binaryNotChecked(self) -> None:
        """
        Binary messages are not UTF-8 checked.
        """
        data = clientFrame(BINARY, b"\xed\xa0\x80\xff")
        assert makeReader().feed(data) == [BinaryMessage(b"\xed\xa0\x80\xff")]


class TestLimits:
    """
    RFC 6455 section 10.4: limits on frame and message size, failed with
    1009 as early as the headers tell.
    """

    def test_frameAtLimit(self) -> None:
        """
        A frame of exactly C{maxFrameSize} bytes is accepted.
        """
        reader = makeReader(maxFrameSize=200)
        payload = b"x" * 200
        assert reader.feed(clientFrame(BINARY, payload)) == [BinaryMessage(payload)]

    @pytest.mark.parametrize("length", [201, 65536])
    def test_frameOverLimitAtHeader(self, length: int) -> None:
        """
        A frame over C{maxFrameSize} fails with 1009 as soon as its header is
        complete, with none of the payload sent.
        """
        frame = clientFrame(BINARY, bytes(length))
        header = frame[: frame.index(MASK) + 4]
        reader = makeReader(maxFrameSize=200)
        assert reader.feed(header[:-1]) == []
        assertFailed(reader.feed(header[-1:]), 1009)

    def test_messageAtLimit(self) -> None:
        """
        A fragmented message of exactly C{maxMessageSize} bytes is accepted.
        """
        data = (
            clientFrame(BINARY, b"a" * 40, fin=False)
            + clientFrame(CONT, b"b" * 40, fin=False)
            + clientFrame(CONT, b"c" * 20)
        )
        events = makeReader(maxFrameSize=100, maxMessageSize=100).feed(data)
        assert events == [BinaryMessage(b"a" * 40 + b"b" * 40 + b"c" * 20)]

    def test_messageOverLimitAtFragmentHeader(self) -> None:
        """
        A message over C{maxMessageSize} fails with 1009 at the header of the
        fragment that takes it over, before that fragment's payload.
        """
        reader = makeReader(maxFrameSize=100, maxMessageSize=100)
        assert reader.feed(clientFrame(TEXT, b"a" * 40, fin=False)) == []
        assert reader.feed(clientFrame(CONT, b"b" * 40, fin=False)) == []
        third = clientFrame(CONT, b"c" * 21)
        assertFailed(reader.feed(third[:6]), 1009)

    def test_controlFramesNotCounted(self) -> None:
        """
        Pings between fragments do not count toward the message's size.
        """
        data = (
            clientFrame(BINARY, b"a" * 50, fin=False)
            + clientFrame(PING, b"p" * 100)
            + clientFrame(CONT, b"b" * 50)
        )
        events = makeReader(maxFrameSize=100, maxMessageSize=100).feed(data)
        assert events == [
            PingReceived(b"p" * 100),
            BinaryMessage(b"a" * 50 + b"b" * 50),
        ]

    def test_limitPerMessage(self) -> None:
        """
        The message size starts over with each message.
        """
        data = clientFrame(BINARY, b"a" * 100) + clientFrame(BINARY, b"b" * 100)
        events = makeReader(maxFrameSize=100, maxMessageSize=100).feed(data)
        assert events == [BinaryMessage(b"a" * 100), BinaryMessage(b"b" * 100)]


class TestStreaming:
    """
    Bytes may arrive in pieces of any size; the reader gives the same events
    and keeps no more than an incomplete header between calls.
    """

    STREAM = (
        clientFrame(TEXT, "caf\u00e9 \U0001f600".encode())
        + clientFrame(BINARY, bytes(300), fin=False)
        + clientFrame(PING, b"between")
        + clientFrame(CONT, b"\x01" * 70000)
        + clientFrame(PONG, b"")
        + clientFrame(TEXT, b"", fin=False)
        + clientFrame(CONT, b"\xe2\x82", fin=False)
        + clientFrame(CONT, b"\xac")
        + clientFrame(CLOSE, closePayload(1000, b"bye"))
    )

    EXPECTED = [
        TextMessage("caf\u00e9 \U0001f600"),
        PingReceived(b"between"),
        BinaryMessage(bytes(300) + b"\x01" * 70000),
        PongReceived(b""),
        TextMessage("\u20ac"),
        CloseReceived(1000, "bye"),
    ]

    def test_oneChunk(self) -> None:
        """
        The whole stream at once gives the expected events.
        """
        assert makeReader().feed(self.STREAM) == self.EXPECTED

    def test_byteByByte(self) -> None:
        """
        The stream one byte per call gives the same events as one chunk.
        """
        assert feedBytewise(makeReader(), self.STREAM) == self.EXPECTED

    @pytest.mark.parametrize("size", [2, 3, 7, 13, 14, 1000, 65537])
    def test_fixedChunks(self, size: int) -> None:
        """
        The stream in chunks of any fixed size gives the same events.
        """
        chunks = [self.STREAM[i : i + size] for i in range(0, len(self.STREAM), size)]
        assert feedEach(makeReader(), *chunks) == self.EXPECTED

    def test_emptyFeed(self) -> None:
        """
        Feeding nothing, at any point, changes nothing.
        """
        reader = makeReader()
        frame = clientFrame(TEXT, b"abc")
        events = feedEach(reader, b"", frame[:3], b"", frame[3:], b"")
        assert events == [TextMessage("abc")]

    def test_pendingHoldsOnlyHeaderBytes(self) -> None:
        """
        Fed one byte at a time, the reader never holds more than 13 bytes of
        input (the longest incomplete header): payload bytes stream out
        rather than pile up.
        """
        reader = makeReader()
        for index in range(len(self.STREAM)):
            reader.feed(self.STREAM[index : index + 1])
            assert len(reader._pending) <= 13, index

    def test_longestIncompleteHeader(self) -> None:
        """
        The 13 first bytes of a 64-bit-length header are held; the 14th
        completes it and nothing is held after.
        """
        frame = clientFrame(BINARY, bytes(65536))
        reader = makeReader()
        assert reader.feed(frame[:13]) == []
        assert len(reader._pending) == 13
        assert reader.feed(frame[13:14]) == []
        assert reader._pending == b""

    def test_partialPayloadNotBuffered(self) -> None:
        """
        After a header and part of a payload, no input is held: the payload
        is unmasked and streamed on, in chunk after chunk.
        """
        payload = bytes(range(256)) * 1024
        frame = clientFrame(BINARY, payload)
        reader = makeReader()
        for start in range(0, len(frame) - 1000, 1000):
            assert reader.feed(frame[start : start + 1000]) == []
            assert reader._pending == b""
        assert feedEach(reader, frame[start + 1000 :]) == [BinaryMessage(payload)]

    def test_largeMessageByteByByte(self) -> None:
        """
        A 64 KiB text message fed one byte at a time arrives whole, with the
        reader holding no input between calls.
        """
        text = ("\u00e9\u20ac\U0001f600abc" * 6554)[: 1 << 16]
        frame = clientFrame(TEXT, text.encode())
        reader = makeReader()
        events: list[Event] = []
        for index in range(len(frame)):
            events += reader.feed(frame[index : index + 1])
            assert len(reader._pending) <= 13
        assert events == [TextMessage(text)]


class _IdentityCompression:
    """
    A stand-in for permessage-deflate that passes bytes through, recording
    the calls, to check which messages the reader routes to it.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def decompress(self, data: bytes, limit: int) -> bytes:
        self.calls.append(("decompress", bytes(data)))
        if len(data) > limit:
            raise MessageTooBig("inflated message is over the size limit")
        return bytes(data)

    def endMessage(self, limit: int) -> bytes:
        self.calls.append(("end", b""))
        return b""


class TestCompressionRsv1RFC7692:
    """
    RFC 7692 section 6: with a compression extension, RSV1 on a message's
    first frame marks it compressed; the other RSV rules stand.
    """

    def test_rsv1Accepted(self) -> None:
        """
        A message with RSV1 goes through the extension, fragments and all.
        """
        compression = _IdentityCompression()
        data = clientFrame(TEXT, b"ab", fin=False, rsv=0x40) + clientFrame(CONT, b"c")
        events = makeReader(compression=compression).feed(data)
        assert events == [TextMessage("abc")]
        assert compression.calls == [
            ("decompress", b"ab"),
            ("decompress", b"c"),
            ("end", b""),
        ]

    def test_withoutRsv1NotDecompressed(self) -> None:
        """
        A message without RSV1 bypasses the extension.
        """
        compression = _IdentityCompression()
        data = clientFrame(BINARY, b"plain")
        assert makeReader(compression=compression).feed(data) == [
            BinaryMessage(b"plain")
        ]
        assert compression.calls == []

    @pytest.mark.parametrize("rsv", [0x20, 0x10, 0x60])
    def test_otherRsvStillRefused(self, rsv: int) -> None:
        """
        RSV2 and RSV3 are a protocol error even with the extension.
        """
        data = clientFrame(TEXT, b"x", rsv=rsv)
        events = makeReader(compression=_IdentityCompression()).feed(data)
        assertFailed(events, 1002)

    def test_rsv1OnContinuationRefused(self) -> None:
        """
        RSV1 on a continuation frame is a protocol error (RFC 7692 6.1).
        """
        data = clientFrame(TEXT, b"a", fin=False, rsv=0x40)
        data += clientFrame(CONT, b"b", rsv=0x40)
        events = makeReader(compression=_IdentityCompression()).feed(data)
        assertFailed(events, 1002)

    def test_rsv1OnControlRefused(self) -> None:
        """
        RSV1 on a control frame is a protocol error.
        """
        data = clientFrame(PING, b"", rsv=0x40)
        events = makeReader(compression=_IdentityCompression()).feed(data)
        assertFailed(events, 1002)

    def test_inflatedSizeLimit(self) -> None:
        """
        A compressed message is measured as it inflates: the extension's
        C{MessageTooBig} fails the connection with 1009.
        """
        data = clientFrame(BINARY, b"x" * 60, rsv=0x40, fin=False)
        data += clientFrame(CONT, b"y" * 60)
        reader = makeReader(maxMessageSize=100, compression=_IdentityCompression())
        assertFailed(reader.feed(data), 1009)


class TestLargeFrameStreamed:
    """
    A one-frame message whose payload arrives in many pieces is unmasked
    piece by piece and joined once; whatever the piece sizes (some kept
    whole, some gathered into blocks) and whichever masking way runs, the
    message comes out whole.
    """

    @pytest.mark.parametrize("numpy", [True, False], ids=["numpy", "pure"])
    @pytest.mark.parametrize("opcode", [0x1, 0x2], ids=["text", "binary"])
    def test_piecesOfAwkwardSizes(self, numpy: bool, opcode: int, monkeypatch) -> None:
        """
        A 100,003-byte frame fed in pieces of 1, 7, 4099, 13 and 65,536
        bytes, over and over, gives back exactly the payload.
        """
        from txclws._core import mask as _mask

        if not numpy:
            monkeypatch.setattr(_mask, "_np", None)
        payload = ("é€" * 20000 + "xyz").encode("utf-8")[:100003]
        payload = payload.decode("utf-8", "ignore").encode("utf-8")
        frame = clientFrame(opcode, payload)
        reader = MessageReader(1 << 20, 1 << 20)
        events = []
        sizes = [1, 7, 4099, 13, 65536]
        position = 0
        index = 0
        while position < len(frame):
            size = sizes[index % len(sizes)]
            events += reader.feed(frame[position : position + size])
            position += size
            index += 1
        if opcode == 0x1:
            assert events == [TextMessage(payload.decode("utf-8"))]
        else:
            assert events == [BinaryMessage(payload)]


class TestLargeMessageTypes:
    """
    However a large message's pieces were held while it arrived (NumPy
    buffers seen as C{memoryview}s, L{unmaskPiece}), the resource gets a
    C{bytes} or a C{str}: an event never carries a view.
    """

    @pytest.mark.parametrize("numpy", [True, False], ids=["numpy", "pure"])
    @pytest.mark.parametrize(
        "sizes", [[65536], [5000, 70000], [10, 4096, 4097]], ids=repr
    )
    def test_binaryInPiecesIsBytes(
        self, numpy: bool, sizes: list[int], monkeypatch
    ) -> None:
        """
        A 200,000-byte binary frame fed in pieces of the given sizes, over
        and over, gives one L{BinaryMessage} whose data is exactly that
        payload, as C{bytes}.
        """
        from txclws._core import mask as _mask

        if not numpy:
            monkeypatch.setattr(_mask, "_np", None)
        payload = bytes(range(256)) * 781 + b"tail"
        frame = clientFrame(BINARY, payload)
        reader = makeReader()
        events: list[Event] = []
        position = index = 0
        while position < len(frame):
            size = sizes[index % len(sizes)]
            events += reader.feed(frame[position : position + size])
            position += size
            index += 1
        assert events == [BinaryMessage(payload)]
        assert type(events[0].data) is bytes  # type: ignore[attr-defined]

    def test_largeFragmentsAreBytes(self) -> None:
        """
        A message of three 10,000-byte fragments, each split across two
        feeds, is joined into C{bytes}; the frames after it are read.
        """
        parts = [bytes([i]) * 10000 for i in range(3)]
        data = (
            clientFrame(BINARY, parts[0], fin=False)
            + clientFrame(CONT, parts[1], fin=False)
            + clientFrame(CONT, parts[2])
            + clientFrame(TEXT, b"next")
        )
        reader = makeReader()
        events = feedEach(
            reader, *(data[i : i + 7001] for i in range(0, len(data), 7001))
        )
        assert events == [BinaryMessage(b"".join(parts)), TextMessage("next")]
        assert type(events[0].data) is bytes  # type: ignore[attr-defined]

    def test_largeWholeFrameFromView(self) -> None:
        """
        A 10,000-byte frame that arrives whole, between two others in one
        feed, is unmasked from a view of the input into C{bytes}.
        """
        payload = bytes(range(250)) * 40
        data = (
            clientFrame(TEXT, b"a")
            + clientFrame(BINARY, payload)
            + clientFrame(TEXT, b"b")
        )
        events = makeReader().feed(data)
        assert events == [TextMessage("a"), BinaryMessage(payload), TextMessage("b")]
        assert type(events[1].data) is bytes  # type: ignore[attr-defined]


class TestAnnouncedLengthNotReserved:
    """
    Memory follows the bytes received, never the length a header announces
    (docs/security.md: a lying peer holds what it sent): a large frame's
    pieces are unmasked one by one, each into a buffer of its own size.
    """

    def test_liarHoldsWhatItSent(self) -> None:
        """
        A header announcing a 16 MiB binary frame (within the limits)
        followed by 10 bytes makes the reader allocate well under 1 MiB
        (measured with C{tracemalloc}, which sees NumPy's buffers too).
        """
        import tracemalloc

        reader = makeReader(16 << 20, 16 << 20)
        header = b"\x82\xff" + (16 << 20).to_bytes(8, "big") + MASK
        tracemalloc.start()
        try:
            assert reader.feed(header + b"0123456789") == []
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert reader.payloadAwaited == (16 << 20) - 10
        assert peak < 1 << 20
