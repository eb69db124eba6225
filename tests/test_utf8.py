"""
Tests for L{txclws._core.utf8}: incremental UTF-8 validation that fails as early
as the bytes allow (RFC 6455 section 8.1, RFC 3629 section 4).
"""

from __future__ import annotations

from functools import cache

import pytest

from txclws._core.errors import InvalidPayload
from txclws._core.frames import CloseCode
from txclws._core.utf8 import Utf8Validator

VALID = [
    b"",
    b"Hello",
    "\u03ba\u1f79\u03c3\u03bc\u03b5".encode(),  # "kosme", Autobahn 6.2
    b"\xc2\x80",  # U+0080, smallest 2-byte
    b"\xdf\xbf",  # U+07FF, largest 2-byte
    b"\xe0\xa0\x80",  # U+0800, smallest 3-byte
    b"\xed\x9f\xbf",  # U+D7FF, just below the surrogates
    b"\xee\x80\x80",  # U+E000, just above the surrogates
    b"\xef\xbb\xbf",  # U+FEFF, byte order mark
    b"\xef\xbf\xbe",  # U+FFFE, a noncharacter but valid UTF-8
    b"\xef\xbf\xbf",  # U+FFFF, largest 3-byte
    b"\xf0\x90\x80\x80",  # U+10000, smallest 4-byte
    b"\xf4\x8f\xbf\xbf",  # U+10FFFF, the largest code point
    "a\u00e9\u20ac\U0001f600z".encode(),  # 1-, 2-, 3- and 4-byte in a row
]

INVALID = [
    b"\xed\xa0\x80",  # U+D800, a surrogate
    b"\xed\xbf\xbf",  # U+DFFF, a surrogate
    b"\xed\xa0\x80\xed\xb0\x80",  # a surrogate pair, CESU-8 style
    b"abc\xed\xa0\x80def",  # a surrogate inside text
    b"\xc0\x80",  # overlong U+0000
    b"\xc1\xbf",  # overlong U+007F
    b"\xe0\x80\x80",  # overlong U+0000 in 3 bytes
    b"\xe0\x9f\xbf",  # overlong U+07FF in 3 bytes
    b"\xf0\x80\x80\x80",  # overlong U+0000 in 4 bytes
    b"\xf0\x8f\xbf\xbf",  # overlong U+FFFF in 4 bytes
    b"\xf4\x90\x80\x80",  # U+110000, above the largest code point
    b"\xf5\x80\x80\x80",  # lead byte F5: always above U+10FFFF
    b"\xf7\xbf\xbf\xbf",
    b"\xf8\x88\x80\x80\x80",  # old 5-byte form
    b"\xfc\x84\x80\x80\x80\x80",  # old 6-byte form
    b"\xfe",
    b"\xff",
    b"\x80",  # a lone continuation byte
    b"\xbf",
    b"\xc2\x41",  # lead byte then ASCII
    b"\xe2\x82\x41",  # 2 of 3 bytes then ASCII
    b"\xf0\x9f\x98\x41",  # 3 of 4 bytes then ASCII
    b"\xe2\x82",  # ends inside a character
    b"\xf0\x9f\x98",  # ends inside a character
    "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xf4\x90\x80\x80edited",
]


@cache
def _prefixTable() -> dict[bytes, int]:
    """
    Every proper prefix of the UTF-8 encoding of every scalar value, mapped
    to the length of the whole encoding; built with the encoder, so the
    reference below does not rely on the decoder under test.

    A multi-byte encoding's last byte carries the code point's low 6 bits,
    so one code point in 64 already gives every distinct proper prefix.
    """
    table: dict[bytes, int] = {}
    for codePoint in range(0x80, 0x110000, 64):
        if 0xD800 <= codePoint <= 0xDFFF:
            continue
        encoded = chr(codePoint).encode("utf-8")
        for size in range(1, len(encoded)):
            table[encoded[:size]] = len(encoded)
    return table


def firstImpossibleIndex(data: bytes) -> int | None:
    """
    The brute-force reference for fail-fast: the index of the first byte
    after which C{data[: index + 1]} is no prefix of any valid UTF-8, or
    L{None} if every prefix of C{data} can still be completed.
    """
    table = _prefixTable()
    pos = 0
    while pos < len(data):
        if data[pos] < 0x80:
            pos += 1
            continue
        size = table.get(data[pos : pos + 1])
        if size is None:
            return pos  # a continuation byte, C0, C1 or F5..FF
        for end in range(pos + 2, pos + size + 1):
            if end > len(data):
                return None  # ends inside a character that can complete
            if end < pos + size:
                if data[pos:end] not in table:
                    return end - 1
            elif not 0x80 <= data[end - 1] <= 0xBF:
                return end - 1
        pos += size
    return None


#: The invalid examples that hold a byte no valid UTF-8 can continue with
#: (the others only end inside a character).
IMPOSSIBLE = [d for d in INVALID if firstImpossibleIndex(d) is not None]


def validates(*pieces: bytes) -> bool:
    """
    Whether L{Utf8Validator} accepts the concatenation of C{pieces}, fed one
    by one, then finished.
    """
    validator = Utf8Validator()
    try:
        for piece in pieces:
            validator.feed(piece)
        validator.finish()
    except InvalidPayload:
        return False
    return True


def decodes(data: bytes) -> bool:
    """
    Whether C{bytes.decode} accepts C{data} as UTF-8.
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class TestReference:
    """
    The brute-force reference agrees with the examples above, so the
    fail-fast tests below stand on it.
    """

    @pytest.mark.parametrize("data", VALID)
    def test_validHasNoImpossibleIndex(self, data: bytes) -> None:
        """
        Valid UTF-8 has no impossible byte.
        """
        assert decodes(data)
        assert firstImpossibleIndex(data) is None

    @pytest.mark.parametrize(
        ("data", "index"),
        [
            (b"\xed\xa0\x80", 1),  # ED A0 can only begin a surrogate
            (b"\xc0\x80", 0),  # C0 begins nothing
            (b"\xe0\x80\x80", 1),  # E0 80 can only begin an overlong
            (b"\xf0\x80\x80\x80", 1),
            (b"\xf4\x90\x80\x80", 1),  # F4 90 is above U+10FFFF
            (b"\xf5", 0),
            (b"abc\xe2\x82\x41", 5),
            (b"\xe2\x82", None),  # could still complete
        ],
    )
    def test_knownIndexes(self, data: bytes, index: int | None) -> None:
        """
        The reference finds the first impossible byte of hand-checked cases.
        """
        assert firstImpossibleIndex(data) == index


class TestAgainstDecode:
    """
    The validator agrees with C{bytes.decode} however the bytes are split.
    """

    @pytest.mark.parametrize("data", VALID + INVALID)
    def test_everySplitPoint(self, data: bytes) -> None:
        """
        Fed in two pieces, split at every index, the validator's verdict is
        that of C{bytes.decode} on the whole.
        """
        expected = decodes(data)
        for split in range(len(data) + 1):
            assert validates(data[:split], data[split:]) == expected, split

    @pytest.mark.parametrize("data", VALID + INVALID)
    def test_everyPairOfSplitPoints(self, data: bytes) -> None:
        """
        Fed in three pieces, split at every pair of indexes, the verdict is
        that of C{bytes.decode}.
        """
        expected = decodes(data)
        for first in range(len(data) + 1):
            for second in range(first, len(data) + 1):
                pieces = data[:first], data[first:second], data[second:]
                assert validates(*pieces) == expected, (first, second)

    @pytest.mark.parametrize("data", VALID + INVALID)
    def test_byteByByte(self, data: bytes) -> None:
        """
        Fed one byte at a time, the verdict is that of C{bytes.decode}.
        """
        pieces = [data[i : i + 1] for i in range(len(data))]
        assert validates(*pieces) == decodes(data)

    @pytest.mark.parametrize("kind", [bytearray, memoryview])
    def test_bytesLike(self, kind: type) -> None:
        """
        C{bytearray} and C{memoryview} pieces are checked like C{bytes}.
        """
        validator = Utf8Validator()
        validator.feed(kind(b"\xe2\x82"))
        validator.feed(kind(b"\xac"))
        validator.finish()
        with pytest.raises(InvalidPayload):
            Utf8Validator().feed(kind(b"\xed\xa0"))


class TestFailFast:
    """
    RFC 6455 section 8.1 with Autobahn 6.4: the validator fails on the first
    byte that cannot begin valid UTF-8, not at the end of the message.
    """

    @pytest.mark.parametrize("data", IMPOSSIBLE)
    def test_failsAtFirstImpossibleByte(self, data: bytes) -> None:
        """
        Fed one byte at a time, the validator accepts every byte before the
        first impossible one and raises on exactly that byte.
        """
        bad = firstImpossibleIndex(data)
        assert bad is not None
        validator = Utf8Validator()
        for index in range(len(data)):
            byte = data[index : index + 1]
            if index < bad:
                validator.feed(byte)
            else:
                with pytest.raises(InvalidPayload):
                    validator.feed(byte)
                return
        raise AssertionError("no impossible byte")  # pragma: no cover

    @pytest.mark.parametrize("data", IMPOSSIBLE)
    def test_failsInTheChunkHoldingTheImpossibleByte(self, data: bytes) -> None:
        """
        Fed in two chunks, the validator raises on the chunk holding the
        first impossible byte, before any later chunk.
        """
        bad = firstImpossibleIndex(data)
        assert bad is not None
        for split in range(len(data) + 1):
            validator = Utf8Validator()
            if split > bad:
                with pytest.raises(InvalidPayload):
                    validator.feed(data[:split])
            else:
                validator.feed(data[:split])
                with pytest.raises(InvalidPayload):
                    validator.feed(data[split:])

    def test_surrogateStartFailsAfterTwoBytes(self) -> None:
        """
        C{ED A0}, the start of an encoded surrogate, fails as soon as both
        bytes are in, even in one piece with nothing after (the stdlib
        decoder alone holds it back for a third byte).
        """
        with pytest.raises(InvalidPayload):
            Utf8Validator().feed(b"\xed\xa0")
        validator = Utf8Validator()
        validator.feed(b"ok \xed")
        with pytest.raises(InvalidPayload):
            validator.feed(b"\xbf")

    def test_everyNextByteAfterEveryShortPrefix(self) -> None:
        """
        Exhaustively, for every viable prefix of one or two bytes of a
        character (plus the empty prefix and a 3-byte prefix of each 4-byte
        lead), and every next byte fed separately: the validator raises
        exactly when the reference says no valid continuation exists.
        """
        table = _prefixTable()
        prefixes = [b""] + [p for p in table if len(p) <= 2]
        prefixes += {p[:1]: p for p in table if len(p) == 3}.values()
        for prefix in prefixes:
            for value in range(256):
                data = prefix + bytes((value,))
                validator = Utf8Validator()
                validator.feed(prefix)
                try:
                    validator.feed(data[-1:])
                except InvalidPayload:
                    raised = True
                else:
                    raised = False
                assert raised == (firstImpossibleIndex(data) is not None), data


class TestFinish:
    """
    L{Utf8Validator.finish}: the stream must not end inside a character.
    """

    @pytest.mark.parametrize("data", [b"\xc2", b"\xe2\x82", b"\xf0\x9f\x98", b"a\xe2"])
    def test_endsInsideCharacter(self, data: bytes) -> None:
        """
        A stream that ends inside a character passes C{feed} (it could still
        complete) but fails C{finish}.
        """
        validator = Utf8Validator()
        validator.feed(data)
        with pytest.raises(InvalidPayload):
            validator.finish()

    def test_complete(self) -> None:
        """
        A stream that ends on a character boundary finishes cleanly, also
        when the last character was split between pieces.
        """
        assert validates(b"\xf0\x9f", b"\x98\x80")
        assert validates(b"\xf0\x9f\x98", b"\x80", b"")
        assert validates()

    def test_closeCode(self) -> None:
        """
        The failure carries close code 1007 (RFC 6455 section 7.4.1).
        """
        with pytest.raises(InvalidPayload) as info:
            Utf8Validator().feed(b"\xff")
        assert info.value.closeCode == CloseCode.INVALID_PAYLOAD == 1007
