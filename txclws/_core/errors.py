# -*- test-case-name: tests.test_reader,tests.test_handshake -*-
"""
Exceptions raised by the sans-I/O core, each carrying what the peer sees.

A L{WebSocketProtocolError} subclass carries the close code the connection is
failed with (RFC 6455 section 7.4.1); a L{HandshakeError} carries the HTTP
status the opening handshake is refused with.  Each is turned into what the
peer sees in exactly one place: a protocol error becomes a
L{txclws._core.events.ConnectionFailed} event in
L{txclws._core.eventreader.EventReader.feed}, whose code the session sends back
in its close frame (L{txclws._core.connection.WebSocketConnection.frameClose});
a handshake error becomes a L{txclws._core.accept.Refused}, whose bytes
L{txclws._core.responses.rejectResponse} builds.
"""

from __future__ import annotations

from collections.abc import Mapping

from txclws._core.frames import CloseCode


class WebSocketError(Exception):
    """
    Base class of every error txclws raises on purpose.
    """


class WebSocketProtocolError(WebSocketError):
    """
    The peer broke RFC 6455; the connection is failed with L{closeCode}.

    @cvar closeCode: the close code sent to the peer.
    """

    closeCode: CloseCode = CloseCode.PROTOCOL_ERROR


class InvalidFrame(WebSocketProtocolError):
    """
    A frame header or sequence the RFC forbids (close code 1002).
    """

    closeCode = CloseCode.PROTOCOL_ERROR


class InvalidPayload(WebSocketProtocolError):
    """
    A text message or close reason that is not valid UTF-8 (close code 1007).
    """

    closeCode = CloseCode.INVALID_PAYLOAD


class MessageTooBig(WebSocketProtocolError):
    """
    A frame or message larger than the configured limit (close code 1009).
    """

    closeCode = CloseCode.MESSAGE_TOO_BIG


class ConnectionClosed(WebSocketError):
    """
    A message was written to a client whose connection is closing or closed.
    """


class UnsupportedByProtocol(WebSocketError):
    """
    The client's protocol version cannot carry what was asked: a binary
    message or a ping to a hixie-76 client.
    """


class HandshakeError(WebSocketError):
    """
    The opening handshake is refused with HTTP status L{status}.

    @ivar status: the HTTP status code of the refusal.
    @ivar reason: a short, human-readable explanation sent as the body.
    @ivar headers: extra response headers, as C{(name, value)} pairs.
    """

    def __init__(
        self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


class HandshakeFailed(WebSocketError):
    """
    Our opening handshake, as a client, did not open a WebSocket connection:
    the server refused it, answered something that is not a valid
    acceptance (RFC 6455 section 4.1's checks), or did not answer in time.

    @ivar reason: what went wrong, in words (with the status line's
        reason phrase, for a refusal).
    @ivar status: the HTTP status the server (or an HTTP proxy) answered,
        or C{None} when there was no status line.
    @ivar headers: the response's headers: a case-insensitive, read-only
        mapping (empty when there was no response head).
    @ivar body: the start of the response's body, as bytes (at most 64
        KiB).
    @since: 0.2.0
    """

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(reason, status)
        self.reason = reason
        self.status = status
        self.headers: Mapping[str, str] = {} if headers is None else headers
        self.body = body

    def __str__(self) -> str:
        return self.reason
