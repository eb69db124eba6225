"""
Tests for L{txclws._core.arguments}: the client API's argument checks, the
same for every client kind (issue 12, defects 7 and 8), byte for byte.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from txclws._core.arguments import (
    checkBinaryMessage,
    checkCloseArguments,
    checkFrameSize,
    checkPingPayload,
    checkTextMessage,
)
from txclws._core.close import isValidCloseCode
from txclws._core.frames import CloseCode

#: Every protocol version a client may speak: hixie-76, hybi-07/08, RFC 6455.
VERSIONS = [0, 7, 8, 13]


class TestCloseCode:
    """
    C{close(code, reason)}: which codes, and of which type.
    """

    @pytest.mark.parametrize("version", VERSIONS)
    @pytest.mark.parametrize("code", [1000, 1001, 1003, 1008, 1011, 3000, 4999])
    def test_valid(self, code: int, version: int) -> None:
        """
        A code valid on the wire is returned with the reason in UTF-8.
        """
        assert checkCloseArguments(code, "caf\u00e9", version) == (
            code,
            b"caf\xc3\xa9",
        )

    def test_enumIsPlainInt(self) -> None:
        """
        A L{CloseCode} member is accepted and returned as a plain C{int}.
        """
        code, _ = checkCloseArguments(CloseCode.GOING_AWAY, "")
        assert (type(code), code) == (int, 1001)

    @pytest.mark.parametrize("version", VERSIONS)
    @pytest.mark.parametrize(
        "code", [1005, 1006, 1015, 999, 0, -1, 1012, 2000, 5000, 65536]
    )
    def test_mayNotBeSent(self, code: int, version: int) -> None:
        """
        1005 (RFC 6455 7.4.1: never sent; it used to send a status-less
        close) and every code that may not travel are C{ValueError}, on
        every version, hixie-76 included.
        """
        with pytest.raises(ValueError, match=str(code)):
            checkCloseArguments(code, "bad", version)

    @pytest.mark.parametrize(
        ("version", "allowed"), [(0, False), (7, True), (8, True), (13, False)]
    )
    def test_1004(self, version: int, allowed: bool) -> None:
        """
        1004 may be sent only to hybi-07/08 peers (their section 7.4.1).
        """
        if allowed:
            assert checkCloseArguments(1004, "", version) == (1004, b"")
        else:
            with pytest.raises(ValueError):
                checkCloseArguments(1004, "", version)

    @pytest.mark.parametrize("version", VERSIONS)
    @pytest.mark.parametrize(
        "code", [1000.0, "1000", b"1000", True, False, [1000], 1000j]
    )
    def test_notAnInt(self, code: object, version: int) -> None:
        """
        A code that is not an C{int} (a float, a string, a bool) is
        C{TypeError}; C{1000.0} used to raise C{struct.error}.
        """
        with pytest.raises(TypeError, match="close code"):
            checkCloseArguments(code, "", version)

    def test_noCode(self) -> None:
        """
        No code and no reason is a close without a status.
        """
        assert checkCloseArguments(None, "") == (None, b"")

    def test_reasonWithoutCode(self) -> None:
        """
        A reason without a code cannot be framed (RFC 6455 5.5.1): it is a
        C{ValueError} rather than a reason silently dropped.
        """
        with pytest.raises(ValueError, match="needs a close code"):
            checkCloseArguments(None, "why")


class TestCloseReason:
    """
    The reason: a C{str} of at most 122 bytes of UTF-8.
    """

    @pytest.mark.parametrize("reason", [b"bytes", None, 1, bytearray(b"x")])
    def test_notAStr(self, reason: object) -> None:
        """
        A reason that is not a C{str} is C{TypeError}.
        """
        with pytest.raises(TypeError, match="close reason"):
            checkCloseArguments(1000, reason)

    def test_atLimit(self) -> None:
        """
        122 bytes of UTF-8 are accepted, counted in bytes.
        """
        assert checkCloseArguments(1000, "\u00e9" * 61)[1] == b"\xc3\xa9" * 61

    @pytest.mark.parametrize("version", VERSIONS)
    @pytest.mark.parametrize("reason", ["a" * 123, "\u20ac" * 41, "a" * 1000])
    def test_tooLong(self, reason: str, version: int) -> None:
        """
        Over 122 bytes is C{ValueError}, on every version.
        """
        with pytest.raises(ValueError, match="reason"):
            checkCloseArguments(1000, reason, version)

    def test_loneSurrogate(self) -> None:
        """
        A reason that cannot be encoded is C{ValueError}.
        """
        with pytest.raises(ValueError, match="UTF-8"):
            checkCloseArguments(1000, "\ud800")

    @given(
        code=st.integers(-10, 70000),
        reason=st.text(max_size=130),
        version=st.sampled_from(VERSIONS),
    )
    def test_anyIntAnyText(self, code: int, reason: str, version: int) -> None:
        """
        For any int and any text: accepted exactly when the code may be
        sent and the reason fits, and then returned as given.
        """
        try:
            encoded = reason.encode("utf-8")
        except UnicodeEncodeError:
            encoded = None
        rules = version if version in (7, 8) else 13
        ok = (
            encoded is not None
            and isValidCloseCode(code, rules)
            and len(encoded) <= 122
        )
        if ok:
            assert checkCloseArguments(code, reason, version) == (code, encoded)
        else:
            with pytest.raises(ValueError):
                checkCloseArguments(code, reason, version)


class TestPingPayload:
    """
    C{ping(payload)}: bytes-like, at most 125 bytes (RFC 6455 5.5).
    """

    @pytest.mark.parametrize(
        "payload", [b"", b"x" * 125, bytearray(b"ab"), memoryview(b"abc")]
    )
    def test_valid(self, payload: bytes) -> None:
        """
        Bytes-like payloads of up to 125 bytes come back as C{bytes}.
        """
        out = checkPingPayload(payload)
        assert type(out) is bytes and out == bytes(payload)

    @pytest.mark.parametrize("payload", [b"x" * 126, bytearray(200)])
    def test_tooLong(self, payload: bytes) -> None:
        """
        126 bytes or more is C{ValueError}.
        """
        with pytest.raises(ValueError, match="125"):
            checkPingPayload(payload)

    @pytest.mark.parametrize("payload", ["text", None, 1, [1, 2]])
    def test_notBytes(self, payload: object) -> None:
        """
        Anything not bytes-like (a C{str} included) is C{TypeError}.
        """
        with pytest.raises(TypeError, match="ping payload"):
            checkPingPayload(payload)

    @given(st.binary(max_size=200))
    def test_anyBytes(self, payload: bytes) -> None:
        """
        Any bytes: returned when at most 125, else C{ValueError}.
        """
        if len(payload) <= 125:
            assert checkPingPayload(payload) == payload
        else:
            with pytest.raises(ValueError):
                checkPingPayload(payload)


class TestTextMessage:
    """
    C{writeText(message)}: a C{str} or its UTF-8 bytes.
    """

    def test_str(self) -> None:
        """
        A C{str} gives its UTF-8 encoding.
        """
        assert checkTextMessage("h\u00e9 \u2713") == b"h\xc3\xa9 \xe2\x9c\x93"

    @pytest.mark.parametrize(
        "data", [b"h\xc3\xa9", bytearray(b"h\xc3\xa9"), memoryview(b"h\xc3\xa9")]
    )
    def test_utf8Bytes(self, data: bytes) -> None:
        """
        UTF-8 given as bytes-like comes back as those C{bytes}.
        """
        assert checkTextMessage(data) == b"h\xc3\xa9"

    @pytest.mark.parametrize("data", [b"\xff", b"\xc3", b"\xed\xa0\x80", "\ud800"])
    def test_notUtf8(self, data: bytes | str) -> None:
        """
        Bytes that are not UTF-8 (a truncated sequence, an encoded
        surrogate) and a C{str} with a lone surrogate are C{ValueError}.
        """
        with pytest.raises(ValueError, match="UTF-8"):
            checkTextMessage(data)

    @pytest.mark.parametrize("data", [None, 1, 1.5, ["a"]])
    def test_wrongType(self, data: object) -> None:
        """
        Anything else is C{TypeError}.
        """
        with pytest.raises(TypeError, match="text message"):
            checkTextMessage(data)

    @given(st.text())
    def test_anyText(self, text: str) -> None:
        """
        Any text without surrogates round-trips, as C{str} or as bytes.
        """
        try:
            encoded = text.encode("utf-8")
        except UnicodeEncodeError:
            with pytest.raises(ValueError):
                checkTextMessage(text)
            return
        assert checkTextMessage(text) == checkTextMessage(encoded) == encoded

    @given(st.binary(max_size=50))
    def test_anyBytesMatchesDecode(self, data: bytes) -> None:
        """
        Bytes are accepted exactly when C{bytes.decode("utf-8")} accepts
        them.
        """
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            with pytest.raises(ValueError):
                checkTextMessage(data)
        else:
            assert checkTextMessage(data) == data


class TestBinaryMessage:
    """
    C{writeBinary(data)}: bytes-like only.
    """

    def test_bytesAsThey(self) -> None:
        """
        C{bytes} come back as the same object.
        """
        data = b"\x00\xff"
        assert checkBinaryMessage(data) is data

    def test_bytearrayCopied(self) -> None:
        """
        A C{bytearray} is copied: changing it afterwards changes nothing.
        """
        data = bytearray(b"ab")
        out = checkBinaryMessage(data)
        data[0] = 0x7A
        assert out == b"ab" and type(out) is bytes

    def test_memoryviewAsBytes(self) -> None:
        """
        A contiguous C{memoryview} of any format is a view of its bytes;
        a strided one is copied.
        """
        words = memoryview(bytearray(b"\x01\x00\x02\x00")).cast("H")
        out = checkBinaryMessage(words)
        assert isinstance(out, memoryview) and out.format == "B"
        assert bytes(out) == b"\x01\x00\x02\x00"
        strided = memoryview(b"abcdef")[::2]
        assert checkBinaryMessage(strided) == b"ace"

    @pytest.mark.parametrize("data", ["text", None, 1, [1]])
    def test_notBytes(self, data: object) -> None:
        """
        Anything not bytes-like (a C{str} included) is C{TypeError}.
        """
        with pytest.raises(TypeError, match="binary message"):
            checkBinaryMessage(data)


class TestFrameSize:
    """
    C{frameSize}: L{None} or a positive C{int}.
    """

    @pytest.mark.parametrize("size", [None, 1, 125, 1 << 40])
    def test_valid(self, size: int | None) -> None:
        """
        L{None} and positive ints are returned.
        """
        assert checkFrameSize(size) == size

    @pytest.mark.parametrize("size", [0, -1])
    def test_notPositive(self, size: int) -> None:
        """
        Zero or less is C{ValueError}.
        """
        with pytest.raises(ValueError, match="positive"):
            checkFrameSize(size)

    @pytest.mark.parametrize("size", [1.0, "10", True, b"1"])
    def test_notAnInt(self, size: object) -> None:
        """
        A float, a string or a bool is C{TypeError}.
        """
        with pytest.raises(TypeError, match="frameSize"):
            checkFrameSize(size)
