# -*- test-case-name: tests.test_handshake -*-
"""
The bytes of the server's answer to an opening handshake: the 101 of RFC 6455
section 4.2.2 (L{acceptResponse}), or an HTTP refusal (L{rejectResponse}).
"""

from __future__ import annotations

from txclws._core.errors import HandshakeError
from txclws._core.handshake import acceptKey

__all__ = ["acceptResponse", "reasonPhrase", "rejectResponse"]

_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


def acceptResponse(
    key: str,
    subprotocol: str | None = None,
    extensions: str | None = None,
    extraHeaders: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """
    The bytes of a C{101 Switching Protocols} answer.

    @param key: the client's C{Sec-WebSocket-Key}.
    @param subprotocol: the subprotocol chosen, if any.
    @param extensions: the C{Sec-WebSocket-Extensions} value, if any.
    """
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {acceptKey(key)}",
    ]
    if subprotocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    lines.extend(f"{name}: {value}" for name, value in extraHeaders)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def reasonPhrase(status: int) -> str | None:
    """
    The reason phrase of an HTTP status this module answers with (RFC 9110
    section 15), or C{None} for another status.
    """
    return _REASONS.get(status)


def rejectResponse(error: HandshakeError) -> bytes:
    """
    The bytes of an HTTP answer refusing the handshake, with a plain-text
    body that says why; the connection is closed after it.
    """
    body = (error.reason + "\n").encode("utf-8")
    status = error.status
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    lines.extend(f"{name}: {value}" for name, value in error.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
