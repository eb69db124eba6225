# -*- test-case-name: tests.test_close -*-
"""
Close-frame rules: which codes may travel, and the close payload's form.

RFC 6455 sections 5.5.1 and 7.4.  One owner for every close-code decision,
both for codes we receive and for codes a resource asks us to send.

The hybi drafts 07 and 08 (C{Sec-WebSocket-Version} 7 and 8) define the
close frame's payload exactly as RFC 6455 5.5.1 does (their section
4.5.1: an optional two-byte code in network byte order, then a UTF-8
reason), and reserve ranges to the same effect (their section 7.4.2:
1000-1999 for the protocol, 2000-2999 for extensions, 3000-3999 for
libraries, 4000-4999 for private use; RFC 6455 7.4.2 merges the first
two).  They differ in one code: their section 7.4.1 defines 1004,
"received a frame that is too large", which RFC 6455 7.4.1 reserves, so a
version 7 or 8 peer may send it and we may echo it.  Draft 08 adds 1005
and 1006 as values never to be sent, as RFC 6455 does.  The codes the
later drafts added (1007-1011) are accepted from every version: drafts 09
to 12 still send version 8, and define 1007 onwards from draft 10.

What we send to a version 7 or 8 peer is held to the codes hybi-07/08
section 7.4.1 define (1000-1004; 1005 and 1006 are never sent) and the
ranges of their section 7.4.2 (3000-4999): L{wireCloseCode} maps the
RFC 6455 codes those drafts lack onto their nearest draft code, in one
place, for the close frames of failures and of resources alike.
"""

from __future__ import annotations

from struct import Struct

from txclws._core.errors import InvalidFrame, InvalidPayload
from txclws._core.frames import CloseCode

__all__ = [
    "MAX_CLOSE_REASON",
    "echoCloseCode",
    "isValidCloseCode",
    "parseClosePayload",
    "serializeClosePayload",
    "serviceRestartPayload",
    "wireCloseCode",
]

#: Largest close reason, in UTF-8 bytes.  RFC 6455 allows 123 (125 less the
#: two code bytes); CLWS documents "less than 123 octets" and we keep its rule.
MAX_CLOSE_REASON = 122

_CODE = Struct("!H")


#: Protocol versions whose drafts define 1004 ("frame too large"): hybi-07
#: and hybi-08, section 7.4.1 of each.
_FRAME_TOO_LARGE_VERSIONS = frozenset({7, 8})


def isValidCloseCode(code: int, version: int = 13) -> bool:
    """
    Whether C{code} may appear in a close frame on the wire.

    RFC 6455 section 7.4: 1000-1003 and 1007-1011 are defined for use on the
    wire, 3000-4999 are for libraries and applications.  1004, 1005, 1006
    and 1015 are reserved and must never be sent; every other value below
    3000 is unassigned and so equally a protocol error.

    @param version: the connection's C{Sec-WebSocket-Version}; with 7 or 8,
        1004 is valid too (hybi-07/08 section 7.4.1).
    """
    if code == 1004:
        return version in _FRAME_TOO_LARGE_VERSIONS
    return 1000 <= code <= 1003 or 1007 <= code <= 1011 or 3000 <= code <= 4999


#: The draft code sent to a version 7 or 8 peer in place of each RFC 6455
#: code that hybi-07/08 section 7.4.1 does not define.
_DRAFT_CODES: dict[int, int] = {
    # Invalid UTF-8: the drafts' text frames carry UTF-8 (hybi-07/08
    # section 4.6, RFC 6455 5.6) but they give no code for breaking that;
    # a payload that breaks its frame type's rule is a protocol error,
    # 1002.  Their 1003 ("a type of data it cannot accept", e.g. binary at
    # a text-only endpoint) is about the message's type, which was right.
    CloseCode.INVALID_PAYLOAD: CloseCode.PROTOCOL_ERROR,
    # Too big: their 1004, "received a frame that is too large".
    CloseCode.MESSAGE_TOO_BIG: 1004,
    # The server ends the connection for its own reasons (a policy such as
    # a slow reader or a resource's REJECT, an extension the client lacks,
    # an internal error): the drafts' 1001, an endpoint "going away".  The
    # reason text still says which.
    CloseCode.POLICY_VIOLATION: CloseCode.GOING_AWAY,
    CloseCode.MANDATORY_EXTENSION: CloseCode.GOING_AWAY,
    CloseCode.INTERNAL_ERROR: CloseCode.GOING_AWAY,
    # The server restarts (its drain): the drafts' 1001, "going away".
    CloseCode.SERVICE_RESTART: CloseCode.GOING_AWAY,
}


def wireCloseCode(code: int, version: int = 13) -> int:
    """
    The code to put in a close frame to a peer of C{version}, for a code
    that L{isValidCloseCode} allows.

    @return: C{code} itself for RFC 6455 (version 13); for hybi-07/08
        (versions 7 and 8), the draft's code where the draft lacks C{code}:
        1007 gives 1002, 1009 gives 1004, 1008, 1010 and 1011 give 1001.
    """
    if version in _FRAME_TOO_LARGE_VERSIONS:
        return _DRAFT_CODES.get(code, code)
    return code


#: Codes read from a peer but not sent by C{close()}: 1012, which a
#: draining server sends and its clients echo (RFC 6455 5.5.1).
_READ_NOT_SENT = frozenset({CloseCode.SERVICE_RESTART})


def echoCloseCode(code: int) -> int:
    """
    The code to echo for a close frame read with C{code}: itself, or 1000
    for one that is read but not sent (1012, L{serviceRestartPayload}).
    """
    return CloseCode.NORMAL_CLOSURE if code in _READ_NOT_SENT else code


#: The reason of the server's own 1012.
SERVICE_RESTART_REASON = b"service restart"


def serviceRestartPayload(version: int = 13) -> bytes:
    """
    The payload of the close frame a draining server sends each client:
    1012, "service restart" (registered with IANA after RFC 6455, in the
    registry of its section 11.7), or 1001 to a hybi-07/08 peer, whose
    drafts lack it (L{wireCloseCode}).

    Only the server itself sends it (L{txclws.WebSocketFactory.drain}):
    L{isValidCloseCode} still refuses it to C{close()}, whose contract is
    RFC 6455's codes; L{parseClosePayload} reads it (a client's echo of
    it, or a server's restart read by a client).
    """
    code = wireCloseCode(CloseCode.SERVICE_RESTART, version)
    return serializeClosePayload(code, SERVICE_RESTART_REASON)


def serializeClosePayload(code: int | None, reason: bytes = b"") -> bytes:
    """
    The payload of a close frame: nothing, or a code then a UTF-8 reason.

    @param code: the status code, or C{None} for a close with no status.
    """
    if code is None:
        return b""
    return _CODE.pack(code) + reason


def parseClosePayload(payload: bytes, version: int = 13) -> tuple[int, str]:
    """
    Parse and check the payload of a received close frame.

    @param version: as for L{isValidCloseCode}.
    @return: C{(code, reason)}; an empty payload gives
        C{(CloseCode.NO_STATUS_RCVD, "")} (RFC 6455 section 7.1.5).
    @raise InvalidFrame: a one-byte payload or a code not valid on the wire.
    @raise InvalidPayload: a reason that is not UTF-8.
    """
    if not payload:
        return CloseCode.NO_STATUS_RCVD, ""
    if len(payload) == 1:
        # RFC 6455 5.5.1: a body, if any, starts with a two-byte code.
        raise InvalidFrame("close frame payload of 1 byte")
    (code,) = _CODE.unpack_from(payload)
    if not (isValidCloseCode(code, version) or code in _READ_NOT_SENT):
        raise InvalidFrame(f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload("close reason is not UTF-8") from exc
    return code, reason
