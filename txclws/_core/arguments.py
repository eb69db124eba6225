# -*- test-case-name: tests.test_arguments -*-
"""
Validation of the client API's arguments, as pure functions.

Each client kind (RFC 6455, hybi-07/08, hixie-76, the in-memory test
client) calls these before any protocol-specific code, so that a misuse
raises the same exception whatever the peer speaks: C{TypeError} for an
argument of the wrong type, C{ValueError} for a value the protocol cannot
carry.  They return the argument in the form the framing needs (UTF-8
bytes, a close code or C{None}), so nothing is checked or encoded twice.

@since: 0.2.0
"""

from __future__ import annotations

from txclws._core.close import (
    MAX_CLOSE_REASON,
    isValidCloseCode,
    serializeClosePayload,
    wireCloseCode,
)
from txclws._core.frames import MAX_CONTROL_PAYLOAD, CloseCode

__all__ = [
    "checkBinaryMessage",
    "checkCloseArguments",
    "checkFrameSize",
    "checkPingPayload",
    "checkTextMessage",
    "closePayload",
]

_BYTES_LIKE = (bytes, bytearray, memoryview)


def _isInteger(value: object) -> bool:
    # bool is an int subclass, but True is no close code or frame size.
    return isinstance(value, int) and not isinstance(value, bool)


def checkCloseArguments(
    code: object, reason: object, version: int = 13
) -> tuple[int | None, bytes]:
    """
    Check the arguments of C{close(code, reason)}.

    @param code: the status code, or C{None} for a close with no status.
    @param reason: the reason text.
    @param version: the connection's C{Sec-WebSocket-Version}: 7 and 8 may
        send 1004 as well (hybi-07/08 section 7.4.1).  Version 0 (hixie-76,
        which carries no code) is held to RFC 6455's rules, so that a
        resource's error handling does not depend on its peer's protocol.
    @return: the code (a plain C{int}) or C{None}, and the reason as UTF-8.
    @raise TypeError: C{code} is neither an C{int} nor C{None} (C{1000.0},
        C{"1000"} and C{True} included), or C{reason} is not a C{str}.
    @raise ValueError: C{code} may not be sent (1005 and 1006 never are,
        RFC 6455 7.4.1), C{reason} is over L{MAX_CLOSE_REASON} bytes of
        UTF-8 or cannot be encoded, or a reason comes without a code
        (RFC 6455 5.5.1: a reason follows a code).
    """
    if code is not None and not _isInteger(code):
        raise TypeError(f"close code must be an int or None, not {type(code).__name__}")
    if not isinstance(reason, str):
        raise TypeError(f"close reason must be a str, not {type(reason).__name__}")
    encoded = _encodeUtf8(reason, "close reason")
    if code is None:
        if encoded:
            raise ValueError("a close reason needs a close code (RFC 6455 5.5.1)")
        return None, b""
    assert isinstance(code, int)
    if code == CloseCode.NO_STATUS_RCVD or not isValidCloseCode(
        code, version if version in (7, 8) else 13
    ):
        raise ValueError(f"close code {code} may not be sent (RFC 6455 7.4)")
    if len(encoded) > MAX_CLOSE_REASON:
        raise ValueError(
            f"close reason is {len(encoded)} bytes in UTF-8;"
            f" it must be under {MAX_CLOSE_REASON + 1}"
        )
    return int(code), encoded


def checkPingPayload(payload: object) -> bytes:
    """
    Check the payload of a ping.

    @return: the payload as C{bytes}.
    @raise TypeError: it is not C{bytes}, C{bytearray} or C{memoryview}.
    @raise ValueError: it is over 125 bytes (RFC 6455 5.5).
    """
    if not isinstance(payload, _BYTES_LIKE):
        raise TypeError(f"ping payload must be bytes, not {type(payload).__name__}")
    data = bytes(payload)
    if len(data) > MAX_CONTROL_PAYLOAD:
        raise ValueError(f"control frame payload of {len(data)} bytes; the most is 125")
    return data


def checkTextMessage(message: object) -> bytes:
    """
    Check a text message.

    @param message: a C{str}, or its UTF-8 encoding as bytes.
    @return: the message's UTF-8 bytes.
    @raise TypeError: it is neither a C{str} nor bytes-like.
    @raise ValueError: it is bytes that are not UTF-8, or a C{str} that
        cannot be encoded (a lone surrogate): RFC 6455 5.6, text is UTF-8.
    """
    if isinstance(message, str):
        # _encodeUtf8, inlined: every text message sent comes this way.
        try:
            return message.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("text message cannot be encoded as UTF-8") from exc
    if not isinstance(message, _BYTES_LIKE):
        raise TypeError(
            f"a text message must be str or bytes, not {type(message).__name__}"
        )
    data = bytes(message)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("a text message given as bytes must be UTF-8") from exc
    return data


def checkBinaryMessage(data: object) -> bytes | memoryview:
    """
    Check a binary message.

    @return: C{bytes} as they are; a C{bytearray} copied (the caller may
        change it while the message waits to be sent); a C{memoryview} as
        a view of unsigned bytes, not copied (a contiguous one) or copied
        (any other).
    @raise TypeError: it is not bytes-like (a C{str} included: text goes
        in a text message).
    """
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray):
        return bytes(data)
    if isinstance(data, memoryview):
        return data.cast("B") if data.c_contiguous else data.tobytes()
    raise TypeError(f"a binary message must be bytes, not {type(data).__name__}")


def checkFrameSize(frameSize: object) -> int | None:
    """
    Check the C{frameSize} a message is to be split by.

    @return: it, as a plain C{int}, or C{None} (one frame).
    @raise TypeError: it is neither an C{int} nor C{None}.
    @raise ValueError: it is not positive.
    """
    if frameSize is None:
        return None
    if not _isInteger(frameSize):
        raise TypeError(
            f"frameSize must be an int or None, not {type(frameSize).__name__}"
        )
    assert isinstance(frameSize, int)
    if frameSize <= 0:
        raise ValueError(f"frameSize must be positive, not {frameSize}")
    return int(frameSize)


def _encodeUtf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} cannot be encoded as UTF-8") from exc


def closePayload(code: int | None, reason: str, version: int) -> bytes:
    """
    The payload of our close frame to a peer of C{version}: the arguments
    checked (L{checkCloseArguments}), the code as that version's draft
    knows it (L{txclws._core.close.wireCloseCode}), then serialised.  The
    peer's own 1005 (it sent no status) is echoed as no status (RFC 6455
    5.5.1).

    @raise TypeError: see L{checkCloseArguments}.
    @raise ValueError: see L{checkCloseArguments}.
    """
    if code == CloseCode.NO_STATUS_RCVD and not reason:
        code = None
    checked, reasonBytes = checkCloseArguments(code, reason, version)
    if checked is None:
        return serializeClosePayload(None)
    return serializeClosePayload(wireCloseCode(checked, version), reasonBytes)
