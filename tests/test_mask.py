"""
Tests for L{txclws._core.mask}: RFC 6455 section 5.3, client-to-server masking.
"""

from __future__ import annotations

import pytest

from tests._frames_helpers import MASK, xorMask
from txclws._core import mask as _mask
from txclws._core.mask import applyMask, rotateMask


class TestApplyMask:
    """
    RFC 6455 section 5.3: the payload is XORed with the 4-byte key repeated.
    """

    def test_rfc_section_5_7_hello(self) -> None:
        """
        The masked "Hello" of RFC 6455 section 5.7 (key 37 fa 21 3d) gives
        the example's payload bytes, and unmasking gives "Hello" back.
        """
        assert applyMask(b"Hello", MASK) == b"\x7f\x9f\x4d\x51\x58"
        assert applyMask(b"\x7f\x9f\x4d\x51\x58", MASK) == b"Hello"

    def test_empty(self) -> None:
        """
        An empty payload masks to an empty payload.
        """
        assert applyMask(b"", MASK) == b""

    @pytest.mark.parametrize("length", range(18))
    def test_matchesBytewiseReference(self, length: int) -> None:
        """
        For every length around the 4-byte key period (including lengths
        that are not a multiple of 4), the result equals a byte-by-byte XOR.
        """
        data = bytes(range(200, 200 - length, -1))
        assert applyMask(data, MASK) == xorMask(data, MASK)

    @pytest.mark.parametrize("length", [1, 4, 5, 9])
    def test_zeroBytesKeptAtTheEnd(self, length: int) -> None:
        """
        A payload equal to the key repeated masks to all zero bytes of the
        same length: no high-order zero byte is lost (the implementation goes
        through a big integer, which would drop them).
        """
        data = (MASK * 3)[:length]
        assert applyMask(data, MASK) == b"\x00" * length

    def test_involution(self) -> None:
        """
        Masking twice with the same key gives the original bytes.
        """
        data = bytes(range(256)) * 3 + b"tail"
        assert applyMask(applyMask(data, MASK), MASK) == data

    def test_zeroKey(self) -> None:
        """
        The all-zero key leaves the payload unchanged.
        """
        assert applyMask(b"unchanged", b"\x00\x00\x00\x00") == b"unchanged"

    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    def test_bytesLikeInput(self, kind: type) -> None:
        """
        C{bytearray} and C{memoryview} payloads mask like C{bytes} and give
        C{bytes}.
        """
        result = applyMask(kind(b"Hello"), MASK)
        assert type(result) is bytes
        assert result == b"\x7f\x9f\x4d\x51\x58"


class TestRotateMask:
    """
    L{rotateMask} gives the key for a piece of payload that starts C{offset}
    bytes into the frame, so a payload can be unmasked as it streams in.
    """

    @pytest.mark.parametrize(
        ("offset", "expected"),
        [
            (0, b"\x37\xfa\x21\x3d"),
            (1, b"\xfa\x21\x3d\x37"),
            (2, b"\x21\x3d\x37\xfa"),
            (3, b"\x3d\x37\xfa\x21"),
            (4, b"\x37\xfa\x21\x3d"),
            (5, b"\xfa\x21\x3d\x37"),
            (1026, b"\x21\x3d\x37\xfa"),
        ],
    )
    def test_rotation(self, offset: int, expected: bytes) -> None:
        """
        The key rotates left by C{offset} modulo 4.
        """
        assert rotateMask(MASK, offset) == expected

    def test_piecewiseUnmaskingEqualsWhole(self) -> None:
        """
        Unmasking a masked payload in two pieces, the second with the key
        rotated by the first piece's length, gives the whole payload, at
        every split point.
        """
        payload = b"Hello, streaming world"
        masked = xorMask(payload, MASK)
        for split in range(len(payload) + 1):
            first = applyMask(masked[:split], MASK)
            second = applyMask(masked[split:], rotateMask(MASK, split))
            assert first + second == payload, split


class TestMaskingPaths:
    """
    Both whole-buffer ways of masking, pure Python and NumPy, give the
    per-byte XOR for every length around the NumPy threshold, every tail
    length and every alignment.
    """

    LENGTHS = [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 1000]
    LENGTHS += [_mask.NUMPY_THRESHOLD + d for d in range(-9, 10)]
    LENGTHS += [65536 + 5]

    @staticmethod
    def reference(data: bytes, mask: bytes) -> bytes:
        """Mask one byte at a time, as RFC 6455 section 5.3 states it."""
        return bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def test_pureFallback(self, monkeypatch) -> None:
        """
        Without NumPy, every length is masked by the big-integer way, and
        correctly.
        """
        monkeypatch.setattr(_mask, "_np", None)
        assert not _mask.usingNumpy()
        for length in self.LENGTHS:
            data = bytes(range(256)) * (length // 256 + 1)
            data = data[:length]
            assert _mask.applyMask(data, b"\x37\xfa\x21\x3d") == self.reference(
                data, b"\x37\xfa\x21\x3d"
            )

    def test_numpyPath(self) -> None:
        """
        With NumPy (a test dependency), large payloads go through it, tails
        of 1-7 bytes included, and small ones through the integer way; all
        agree with the reference, for bytes, bytearray and memoryview input.
        """
        assert _mask.usingNumpy()
        for length in self.LENGTHS:
            data = (bytes(range(251)) * (length // 251 + 1))[:length]
            expected = self.reference(data, b"\x01\xfe\x80\x7f")
            for given in (data, bytearray(data), memoryview(data)):
                result = _mask.applyMask(given, b"\x01\xfe\x80\x7f")
                assert type(result) is bytes
                assert result == expected


class TestUnmaskPiece:
    """
    L{unmaskPiece}, for pieces of a message that is joined later: the
    same bytes as L{applyMask}; a large piece left in NumPy's buffer (a
    C{memoryview} of exactly its bytes), a small one, or any without
    NumPy, as C{bytes}.
    """

    LENGTHS = [0, 5, _mask.NUMPY_THRESHOLD - 1, _mask.NUMPY_THRESHOLD, 65536 + 3]

    @pytest.mark.parametrize("length", LENGTHS)
    def test_sameBytesAsApplyMask(self, length: int) -> None:
        """
        Whatever its length and input type, the result holds the bytes
        L{applyMask} gives, in a buffer of exactly that length.
        """
        data = (bytes(range(251)) * (length // 251 + 1))[:length]
        for given in (data, memoryview(data)):
            result = _mask.unmaskPiece(given, MASK)
            assert len(result) == length
            assert bytes(result) == applyMask(data, MASK)

    def test_largePieceNotCopiedToBytes(self) -> None:
        """
        With NumPy, a piece at the threshold or over comes back as a
        C{memoryview} of a buffer of its own (writing to it leaves the
        input alone), one under it as C{bytes}.
        """
        data = bytes(_mask.NUMPY_THRESHOLD)
        result = _mask.unmaskPiece(data, MASK)
        assert isinstance(result, memoryview)
        assert not result.readonly
        result[0] = 0xFF
        assert data[0] == 0
        assert type(_mask.unmaskPiece(data[:-1], MASK)) is bytes

    def test_pureGivesBytes(self, monkeypatch) -> None:
        """
        Without NumPy, every piece comes back as C{bytes}.
        """
        monkeypatch.setattr(_mask, "_np", None)
        data = bytes(range(256)) * 64
        result = _mask.unmaskPiece(data, MASK)
        assert type(result) is bytes
        assert result == applyMask(data, MASK)


class TestMaskedFrame:
    """
    L{txclws._core.mask.maskedFrame}: a frame's head followed by its
    masked payload, as one C{bytes}, the same with NumPy (the payload
    XORed into the frame's buffer after the head, its words unaligned) and
    without, for every length around the threshold and every head size
    RFC 6455 5.2 gives (2, 4 or 10 bytes, plus the 4-byte key).
    """

    LENGTHS = TestMaskingPaths.LENGTHS

    @pytest.mark.parametrize("headSize", [6, 8, 14])
    def test_headThenMaskedPayload(self, headSize: int, monkeypatch) -> None:
        """
        Equal to the head joined to L{applyMask}'s bytes, with NumPy and
        without, for bytes, bytearray and memoryview payloads.
        """
        head = bytes(range(0x80, 0x80 + headSize))
        for numpy in (True, False):
            if not numpy:
                monkeypatch.setattr(_mask, "_np", None)
            for length in self.LENGTHS:
                data = (bytes(range(251)) * (length // 251 + 1))[:length]
                expected = head + TestMaskingPaths.reference(data, MASK)
                for given in (data, bytearray(data), memoryview(data)):
                    frame = _mask.maskedFrame(head, given, MASK)
                    assert type(frame) is bytes
                    assert frame == expected
