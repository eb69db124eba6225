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
