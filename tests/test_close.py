"""
Tests for L{txclws._core.close}: which close codes may travel and the form of a
close frame's payload (RFC 6455 sections 5.5.1 and 7.4).
"""

from __future__ import annotations

import pytest

from tests._frames_helpers import CLOSE, TEXT, clientFrame
from txclws._core.arguments import checkCloseArguments
from txclws._core.close import (
    MAX_CLOSE_REASON,
    echoCloseCode,
    isValidCloseCode,
    parseClosePayload,
    serializeClosePayload,
    serviceRestartPayload,
    wireCloseCode,
)
from txclws._core.connection import WebSocketConnection
from txclws._core.errors import InvalidFrame, InvalidPayload
from txclws._core.frames import CloseCode

#: Codes RFC 6455 section 7.4 allows in a close frame.
VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011]
VALID_CODES += [3000, 3999, 4000, 4999]

#: Codes that must never appear in a close frame: reserved (1004-1006,
#: 1015), unassigned by the RFC (1012-1014, 1016-2999), out of range.
INVALID_CODES = [0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016]
INVALID_CODES += [2000, 2999, 5000, 65535]


class TestIsValidCloseCode:
    """
    RFC 6455 section 7.4: the codes valid on the wire.
    """

    @pytest.mark.parametrize("code", VALID_CODES)
    def test_valid(self, code: int) -> None:
        """
        1000-1003, 1007-1011 and 3000-4999 may be sent and received.
        """
        assert isValidCloseCode(code)

    @pytest.mark.parametrize("code", INVALID_CODES)
    def test_invalid(self, code: int) -> None:
        """
        Every other code is refused, including the reserved 1005 and 1006
        that only describe a close locally.
        """
        assert not isValidCloseCode(code)

    def test_exhaustiveBelow5000(self) -> None:
        """
        Exactly the RFC's ranges are valid, over every code up to 5000.
        """
        valid = [code for code in range(5001) if isValidCloseCode(code)]
        expected = [*range(1000, 1004), *range(1007, 1012), *range(3000, 5000)]
        assert valid == expected


class TestOutgoingCloseArguments:
    """
    What a resource may ask us to send (L{checkCloseArguments}, the one
    owner of the rule): a valid code and a reason of at most 122 bytes of
    UTF-8 (CLWS's "less than 123 octets").
    """

    def test_returnsEncodedReason(self) -> None:
        """
        A valid code and reason give the reason's UTF-8 bytes.
        """
        assert checkCloseArguments(1000, "caf\u00e9")[1] == b"caf\xc3\xa9"

    @pytest.mark.parametrize("code", INVALID_CODES)
    def test_invalidCode(self, code: int) -> None:
        """
        A code not valid on the wire is a C{ValueError}.
        """
        with pytest.raises(ValueError, match=str(code)):
            checkCloseArguments(code, "")[1]

    def test_reasonAtLimit(self) -> None:
        """
        A reason of exactly 122 bytes is accepted, counted in UTF-8 bytes.
        """
        assert MAX_CLOSE_REASON == 122
        assert len(checkCloseArguments(1000, "a" * 122)[1]) == 122
        assert len(checkCloseArguments(1000, "\u00e9" * 61)[1]) == 122

    @pytest.mark.parametrize(
        "reason",
        ["a" * 123, "\u00e9" * 61 + "a", "\u20ac" * 41, "a" * 1000],
    )
    def test_reasonTooLong(self, reason: str) -> None:
        """
        A reason over 122 bytes of UTF-8 is a C{ValueError}, even when it has
        fewer than 123 characters.
        """
        with pytest.raises(ValueError, match="reason"):
            checkCloseArguments(1000, reason)[1]


class TestSerializeClosePayload:
    """
    RFC 6455 section 5.5.1: nothing, or a 2-byte code in network order
    followed by the reason.
    """

    def test_noStatus(self) -> None:
        """
        No code gives an empty payload.
        """
        assert serializeClosePayload(None) == b""

    @pytest.mark.parametrize(
        ("code", "reason", "expected"),
        [
            (1000, b"", b"\x03\xe8"),  # 0x03e8 = 1000
            (1001, b"bye", b"\x03\xe9bye"),  # 0x03e9 = 1001
            (4999, b"", b"\x13\x87"),  # 0x1387 = 4999
        ],
    )
    def test_codeAndReason(self, code: int, reason: bytes, expected: bytes) -> None:
        """
        The code is big-endian, the reason follows it.
        """
        assert serializeClosePayload(code, reason) == expected


class TestParseClosePayload:
    """
    RFC 6455 sections 5.5.1 and 7.1.5: parsing and checking a received
    close payload.
    """

    def test_empty(self) -> None:
        """
        An empty payload is a close with no status: 1005, no reason.
        """
        assert parseClosePayload(b"") == (CloseCode.NO_STATUS_RCVD, "")

    def test_oneByte(self) -> None:
        """
        A 1-byte payload cannot hold a code: a protocol error, 1002.
        """
        with pytest.raises(InvalidFrame) as info:
            parseClosePayload(b"\x03")
        assert info.value.closeCode == 1002

    @pytest.mark.parametrize("code", VALID_CODES)
    def test_validCode(self, code: int) -> None:
        """
        A valid code is returned, with its reason decoded.
        """
        payload = code.to_bytes(2, "big") + "\u00e9t\u00e9".encode()
        assert parseClosePayload(payload) == (code, "\u00e9t\u00e9")

    @pytest.mark.parametrize("code", [c for c in INVALID_CODES if c != 1012])
    def test_invalidCode(self, code: int) -> None:
        """
        A code that may not travel is a protocol error, 1002.
        """
        with pytest.raises(InvalidFrame) as info:
            parseClosePayload(code.to_bytes(2, "big"))
        assert info.value.closeCode == 1002

    def test_serviceRestartRead(self) -> None:
        """
        1012 "service restart" (IANA, after RFC 6455) is read, though
        C{close()} may not send it: a draining server sends it, and its
        clients echo it back.  It is echoed as 1000 by an endpoint that may
        not send it.
        """
        payload = b"\x03\xf4service restart"  # 0x03f4: 1012
        assert parseClosePayload(payload) == (1012, "service restart")
        assert echoCloseCode(1012) == 1000
        assert echoCloseCode(1001) == 1001

    @pytest.mark.parametrize(
        "reason", [b"\xff", b"ok\xed\xa0\x80", b"\xc0\x80", b"trunc\xe2\x82"]
    )
    def test_reasonNotUtf8(self, reason: bytes) -> None:
        """
        A reason that is not UTF-8 is invalid payload data, 1007.
        """
        with pytest.raises(InvalidPayload) as info:
            parseClosePayload(b"\x03\xe8" + reason)
        assert info.value.closeCode == 1007

    def test_codeOnly(self) -> None:
        """
        A 2-byte payload is a code with an empty reason.
        """
        assert parseClosePayload(b"\x03\xe9") == (1001, "")


#: Codes hybi-07/08 section 7.4.1 define for a close frame (1005 and 1006,
#: which draft 08 adds, are never sent), and their section 7.4.2 ranges.
DRAFT_CODES = [1000, 1001, 1002, 1003, 1004, *range(3000, 5000)]


class TestWireCloseCode:
    """
    hybi-07/08 peers (versions 7 and 8) are only sent codes their drafts
    define (section 7.4.1); RFC 6455 peers get every code as it is.
    """

    @pytest.mark.parametrize(
        "code, draft",
        [(1007, 1002), (1009, 1004), (1008, 1001), (1010, 1001), (1011, 1001)],
    )
    @pytest.mark.parametrize("version", [7, 8])
    def test_mapped(self, version: int, code: int, draft: int) -> None:
        """
        The RFC 6455 codes the drafts lack map to the drafts' nearest:
        invalid payload to protocol error, too big to frame too large, the
        server's own reasons to going away.
        """
        assert wireCloseCode(code, version) == draft

    @pytest.mark.parametrize("version", [7, 8])
    def test_serviceRestartPayload(self, version: int) -> None:
        """
        A draining server's close is 1012 "service restart" to RFC 6455
        peers, and 1001 (going away) to hybi-07/08, whose drafts lack 1012.
        """
        assert serviceRestartPayload(13) == b"\x03\xf4service restart"
        assert serviceRestartPayload(version) == b"\x03\xe9service restart"

    @pytest.mark.parametrize("version", [7, 8])
    def test_onlyDraftCodesSent(self, version: int) -> None:
        """
        Every code a version 7 or 8 connection may be asked to send goes
        out as a code of the drafts.
        """
        sendable = [c for c in range(5001) if isValidCloseCode(c, version)]
        assert {wireCloseCode(c, version) for c in sendable} <= set(DRAFT_CODES)

    def test_rfc6455Unchanged(self) -> None:
        """
        Version 13 sends every valid code as it is.
        """
        sendable = [c for c in range(5001) if isValidCloseCode(c)]
        assert [wireCloseCode(c, 13) for c in sendable] == sendable


def _closeSentAfter(version: int, data: bytes, maxSize: int = 1 << 16) -> bytes:
    """
    The close frame a connection of C{version} sends when it fails on
    C{data}: the failure's code, echoed by the owner as the adapter does.
    """
    connection = WebSocketConnection(maxSize, maxSize, version=version)
    [failed] = connection.receiveData(data)
    return connection.frameClose(failed.code, "")


class TestFailureCodesByVersion:
    """
    The close frame that fails a connection, byte for byte, for versions
    7, 8 and 13 (the framing is the same; the code differs).
    """

    @pytest.mark.parametrize(
        "version, expected",
        # 0x88: FIN, close; 0x02: length 2; then the code.
        [(13, b"\x88\x02\x03\xef"), (8, b"\x88\x02\x03\xea"), (7, b"\x88\x02\x03\xea")],
        ids=["13-1007", "8-1002", "7-1002"],
    )
    def test_invalidUtf8(self, version: int, expected: bytes) -> None:
        """
        Invalid UTF-8 in a text frame: 1007 (03 ef) for RFC 6455, 1002
        (03 ea) for the drafts.
        """
        assert _closeSentAfter(version, clientFrame(TEXT, b"\xff")) == expected

    @pytest.mark.parametrize(
        "version, expected",
        [(13, b"\x88\x02\x03\xf1"), (8, b"\x88\x02\x03\xec"), (7, b"\x88\x02\x03\xec")],
        ids=["13-1009", "8-1004", "7-1004"],
    )
    def test_tooBig(self, version: int, expected: bytes) -> None:
        """
        A frame over the limit: 1009 (03 f1) for RFC 6455, 1004 (03 ec),
        "frame too large", for the drafts.
        """
        data = clientFrame(TEXT, b"x" * 11)
        assert _closeSentAfter(version, data, maxSize=10) == expected

    @pytest.mark.parametrize(
        "version, expected",
        [(13, b"\x88\x02\x03\xf3"), (8, b"\x88\x02\x03\xe9"), (7, b"\x88\x02\x03\xe9")],
        ids=["13-1011", "8-1001", "7-1001"],
    )
    def test_internalError(self, version: int, expected: bytes) -> None:
        """
        A close the server starts with 1011 goes to the drafts as 1001.
        """
        connection = WebSocketConnection(1 << 16, 1 << 16, version=version)
        assert connection.frameClose(1011) == expected

    @pytest.mark.parametrize("version", [7, 8, 13])
    def test_echoKeepsDraftCodes(self, version: int) -> None:
        """
        The peer's 1000 (and a draft peer's 1004) is echoed unchanged.
        """
        connection = WebSocketConnection(1 << 16, 1 << 16, version=version)
        code = 1004 if version != 13 else 1000
        [closed] = connection.receiveData(clientFrame(CLOSE, code.to_bytes(2, "big")))
        assert connection.frameClose(closed.code) == b"\x88\x02" + code.to_bytes(
            2, "big"
        )
