"""
Tests for L{txclws._core.frames}: opcodes, close codes and server-side frame
serialisation, byte for byte (RFC 6455 section 5).
"""

from __future__ import annotations

import pytest

from tests._frames_helpers import MASK, parseServerFrames
from txclws._core.frames import CloseCode, Opcode, serializeFrame, serializeMessage


class TestOpcode:
    """
    RFC 6455 section 5.2: the opcode values.
    """

    def test_values(self) -> None:
        """
        Each opcode has the value the RFC assigns, and no other opcode is
        defined.
        """
        assert {op.name: op.value for op in Opcode} == {
            "CONTINUATION": 0x0,
            "TEXT": 0x1,
            "BINARY": 0x2,
            "CLOSE": 0x8,
            "PING": 0x9,
            "PONG": 0xA,
        }


class TestCloseCode:
    """
    RFC 6455 section 7.4.1: the defined status codes.
    """

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("NORMAL_CLOSURE", 1000),
            ("GOING_AWAY", 1001),
            ("PROTOCOL_ERROR", 1002),
            ("UNSUPPORTED_DATA", 1003),
            ("NO_STATUS_RCVD", 1005),
            ("ABNORMAL_CLOSURE", 1006),
            ("INVALID_PAYLOAD", 1007),
            ("POLICY_VIOLATION", 1008),
            ("MESSAGE_TOO_BIG", 1009),
            ("MANDATORY_EXTENSION", 1010),
            ("INTERNAL_ERROR", 1011),
            ("TLS_HANDSHAKE", 1015),
        ],
    )
    def test_value(self, name: str, value: int) -> None:
        """
        Each named close code has the RFC's value.
        """
        assert CloseCode[name] == value


class TestSerializeFrameLength:
    """
    RFC 6455 section 5.2, "Payload length": 7 bits up to 125, 126 then a
    16-bit length up to 65535, 127 then a 64-bit length.
    """

    def test_length0(self) -> None:
        """
        An empty payload is a 2-byte header.
        """
        # 0x81: FIN, RSV 000, opcode 1 (text); 0x00: MASK 0, length 0.
        assert serializeFrame(Opcode.TEXT, b"") == b"\x81\x00"

    def test_length125(self) -> None:
        """
        125 bytes, the largest 7-bit length, still fits the second byte.
        """
        payload = b"x" * 125
        # 0x82: FIN, opcode 2 (binary); 0x7d: MASK 0, length 125.
        assert serializeFrame(Opcode.BINARY, payload) == b"\x82\x7d" + payload

    def test_length126(self) -> None:
        """
        126 bytes, the smallest 16-bit length, uses the 126 marker.
        """
        payload = b"x" * 126
        # 0x7e: MASK 0, length 126 = "16-bit length follows"; 00 7e = 126.
        expected = b"\x82\x7e\x00\x7e" + payload
        assert serializeFrame(Opcode.BINARY, payload) == expected

    def test_length65535(self) -> None:
        """
        65535 bytes, the largest 16-bit length.
        """
        payload = b"x" * 65535
        # 0x7e: 16-bit length follows; ff ff = 65535.
        expected = b"\x82\x7e\xff\xff" + payload
        assert serializeFrame(Opcode.BINARY, payload) == expected

    def test_length65536(self) -> None:
        """
        65536 bytes, the smallest 64-bit length, uses the 127 marker.
        """
        payload = b"x" * 65536
        # 0x7f: 64-bit length follows; 00 00 00 00 00 01 00 00 = 65536.
        expected = b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00" + payload
        assert serializeFrame(Opcode.BINARY, payload) == expected

    def test_rfc_section_5_7_256_bytes(self) -> None:
        """
        The RFC 6455 section 5.7 example: a 256-byte binary message.
        """
        payload = bytes(256)
        # 0x82: FIN, binary; 0x7e: 16-bit length; 01 00 = 256.
        assert serializeFrame(Opcode.BINARY, payload)[:4] == b"\x82\x7e\x01\x00"

    def test_rfc_section_5_7_64_kib(self) -> None:
        """
        The RFC 6455 section 5.7 example: a 64 KiB binary message.
        """
        payload = bytes(65536)
        frame = serializeFrame(Opcode.BINARY, payload)
        # 0x82: FIN, binary; 0x7f: 64-bit length; ...01 00 00 = 65536.
        assert frame[:10] == b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"
        assert len(frame) == 10 + 65536


class TestSerializeFrameBits:
    """
    RFC 6455 section 5.2: FIN, RSV1-3 and opcode in the first byte.
    """

    @pytest.mark.parametrize(
        ("opcode", "first"),
        [
            (Opcode.CONTINUATION, 0x80),
            (Opcode.TEXT, 0x81),
            (Opcode.BINARY, 0x82),
            (Opcode.CLOSE, 0x88),
            (Opcode.PING, 0x89),
            (Opcode.PONG, 0x8A),
        ],
    )
    def test_opcode(self, opcode: Opcode, first: int) -> None:
        """
        The opcode is the low nibble of the first byte, under FIN (0x80).
        """
        assert serializeFrame(opcode, b"ab") == bytes((first, 0x02)) + b"ab"

    def test_finClear(self) -> None:
        """
        C{fin=False} clears the top bit.
        """
        # 0x01: FIN 0, RSV 000, opcode 1 (text).
        assert serializeFrame(Opcode.TEXT, b"Hel", fin=False) == b"\x01\x03Hel"

    @pytest.mark.parametrize(
        ("rsv", "first"),
        [
            (0x40, 0xC1),  # RSV1
            (0x20, 0xA1),  # RSV2
            (0x10, 0x91),  # RSV3
            (0x70, 0xF1),  # all three
        ],
    )
    def test_rsv(self, rsv: int, first: int) -> None:
        """
        The RSV bits, given already in place, land in bits 6-4.
        """
        assert serializeFrame(Opcode.TEXT, b"", rsv=rsv) == bytes((first, 0x00))

    def test_serverFramesUnmasked(self) -> None:
        """
        Without a key the MASK bit (top bit of byte 2) is clear and no key is
        written (RFC 6455 section 5.1: a server never masks).
        """
        frame = serializeFrame(Opcode.TEXT, b"Hello")
        assert frame == b"\x81\x05Hello"
        assert not frame[1] & 0x80

    def test_rfc_section_5_7_unmaskedHello(self) -> None:
        """
        The RFC 6455 section 5.7 unmasked "Hello" text frame.
        """
        assert serializeFrame(Opcode.TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")

    def test_rfc_section_5_7_maskedHello(self) -> None:
        """
        The RFC 6455 section 5.7 masked "Hello" text frame, key 37 fa 21 3d.
        """
        # 0x81: FIN, text; 0x85: MASK 1, length 5; key; masked payload.
        expected = bytes.fromhex("818537fa213d7f9f4d5158")
        assert serializeFrame(Opcode.TEXT, b"Hello", mask=MASK) == expected

    def test_rfc_section_5_7_fragmentedHello(self) -> None:
        """
        The RFC 6455 section 5.7 fragmented unmasked text message "Hel" "lo".
        """
        first = serializeFrame(Opcode.TEXT, b"Hel", fin=False)
        second = serializeFrame(Opcode.CONTINUATION, b"lo")
        # 0x01: FIN 0, text; 0x80: FIN 1, continuation.
        assert first == bytes.fromhex("010348656c")
        assert second == bytes.fromhex("80026c6f")

    def test_rfc_section_5_7_pingPong(self) -> None:
        """
        The RFC 6455 section 5.7 unmasked ping and masked pong, "Hello".
        """
        # 0x89: FIN, ping; 0x05: length 5.
        assert serializeFrame(Opcode.PING, b"Hello") == bytes.fromhex("890548656c6c6f")
        # 0x8a: FIN, pong; 0x85: MASK 1, length 5; key; masked payload.
        expected = bytes.fromhex("8a8537fa213d7f9f4d5158")
        assert serializeFrame(Opcode.PONG, b"Hello", mask=MASK) == expected

    def test_maskedExtendedLength(self) -> None:
        """
        With a key, the MASK bit joins the 126 marker and the key follows the
        16-bit length.
        """
        frame = serializeFrame(Opcode.BINARY, bytes(200), mask=MASK)
        # 0xfe: MASK 1 | 126; 00 c8 = 200; then the key.
        assert frame[:8] == b"\x82\xfe\x00\xc8" + MASK
        assert frame[8:] == (MASK * 50)

    def test_memoryviewPayload(self) -> None:
        """
        A C{memoryview} payload gives the same C{bytes} as C{bytes}.
        """
        frame = serializeFrame(Opcode.BINARY, memoryview(b"abc"))  # type: ignore[arg-type]
        assert type(frame) is bytes
        assert frame == b"\x82\x03abc"


class TestSerializeMessage:
    """
    RFC 6455 section 5.4: a message in several frames; the first carries the
    opcode, the others are continuations, and only the last has FIN.
    """

    def test_unfragmented(self) -> None:
        """
        Without C{frameSize} a message is one frame.
        """
        assert serializeMessage(Opcode.TEXT, b"Hello") == b"\x81\x05Hello"

    def test_frameSizeAtLeastLength(self) -> None:
        """
        A payload no longer than C{frameSize} is one frame.
        """
        assert serializeMessage(Opcode.TEXT, b"Hello", 5) == b"\x81\x05Hello"
        assert serializeMessage(Opcode.TEXT, b"Hello", 6) == b"\x81\x05Hello"

    def test_fragmented(self) -> None:
        """
        Seven bytes in frames of 3: binary, continuation, final continuation.
        """
        expected = (
            b"\x02\x03abc"  # FIN 0, opcode 2 (binary), length 3
            b"\x00\x03def"  # FIN 0, opcode 0 (continuation), length 3
            b"\x80\x01g"  # FIN 1, opcode 0, length 1
        )
        assert serializeMessage(Opcode.BINARY, b"abcdefg", 3) == expected

    def test_fragmentedExactMultiple(self) -> None:
        """
        A payload that is an exact multiple of C{frameSize} ends with a full
        frame carrying FIN, and no empty trailing frame.
        """
        expected = (
            b"\x01\x03abc"  # FIN 0, opcode 1 (text), length 3
            b"\x80\x03def"  # FIN 1, continuation, length 3
        )
        assert serializeMessage(Opcode.TEXT, b"abcdef", 3) == expected

    def test_frameSize1(self) -> None:
        """
        C{frameSize=1} gives one frame per byte.
        """
        # 0x01: text, FIN 0; 0x00: continuation, FIN 0; 0x80: FIN 1.
        assert serializeMessage(Opcode.TEXT, b"abc", 1) == (
            b"\x01\x01a\x00\x01b\x80\x01c"
        )

    def test_emptyPayloadWithFrameSize(self) -> None:
        """
        An empty message is one empty frame, whatever C{frameSize}.
        """
        assert serializeMessage(Opcode.BINARY, b"", 4) == b"\x82\x00"

    def test_rsvOnFirstFrameOnly(self) -> None:
        """
        RSV bits (RSV1 marks a compressed message, RFC 7692 section 6) go on
        the first frame only.
        """
        expected = (
            b"\x42\x02ab"  # FIN 0, RSV1, opcode 2
            b"\x00\x02cd"  # FIN 0, RSV 000, continuation
            b"\x80\x01e"  # FIN 1, RSV 000, continuation
        )
        assert serializeMessage(Opcode.BINARY, b"abcde", 2, rsv=0x40) == expected

    def test_rsvUnfragmented(self) -> None:
        """
        A single-frame message carries its RSV bits.
        """
        # 0xc1: FIN, RSV1, text.
        assert serializeMessage(Opcode.TEXT, b"x", rsv=0x40) == b"\xc1\x01x"

    def test_largeFragmentsUseExtendedLengths(self) -> None:
        """
        Fragments pick their own length form: 70000 bytes in frames of
        65536 are a 64-bit-length frame then a 16-bit-length one.
        """
        payload = bytes(range(256)) * 273 + bytes(112)
        assert len(payload) == 70000
        data = serializeMessage(Opcode.BINARY, payload, 65536)
        # 0x02: FIN 0, binary; 0x7f: 64-bit length 65536.
        assert data[:10] == b"\x02\x7f\x00\x00\x00\x00\x00\x01\x00\x00"
        # 0x80: FIN 1, continuation; 0x7e: 16-bit length 4464 = 0x1170.
        second = 10 + 65536
        assert data[second : second + 4] == b"\x80\x7e\x11\x70"
        assert data[10:second] + data[second + 4 :] == payload

    @pytest.mark.parametrize("frameSize", [1, 2, 3, 7, 10, 11, 100])
    def test_reassembles(self, frameSize: int) -> None:
        """
        Parsed independently, the fragments have the message's opcode first,
        continuations after, FIN on the last only, no frame larger than
        C{frameSize}, and join to the payload.
        """
        payload = bytes(range(40))
        frames = parseServerFrames(serializeMessage(Opcode.BINARY, payload, frameSize))
        assert [opcode for _, _, opcode, _ in frames] == [2] + [0] * (len(frames) - 1)
        assert [fin for fin, _, _, _ in frames] == [False] * (len(frames) - 1) + [True]
        assert all(len(part) <= frameSize for _, _, _, part in frames)
        assert all(part for _, _, _, part in frames)
        assert b"".join(part for _, _, _, part in frames) == payload

    @pytest.mark.parametrize("frameSize", [0, -1])
    @pytest.mark.parametrize("payload", [b"", b"a", b"abc"])
    def test_frameSizeNotPositive(self, frameSize: int, payload: bytes) -> None:
        """
        A C{frameSize} under 1 is a C{ValueError}, whatever the payload.
        """
        with pytest.raises(ValueError, match="frameSize"):
            serializeMessage(Opcode.BINARY, payload, frameSize)
