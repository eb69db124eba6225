# -*- test-case-name: tests.test_connection -*-
"""
Events the sans-I/O core reports for the bytes it receives.

Each is a frozen dataclass: the core builds it, the adapter dispatches on its
type, nobody changes it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BinaryMessage",
    "CloseReceived",
    "ConnectionFailed",
    "Event",
    "MessageData",
    "MessageEnded",
    "MessageStarted",
    "PingReceived",
    "PongReceived",
    "TextMessage",
]


@dataclass(frozen=True, slots=True)
class TextMessage:
    """
    A whole text message, decoded.

    @ivar data: the message text.
    """

    data: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    """
    A whole binary message.

    @ivar data: the message bytes.
    """

    data: bytes


@dataclass(frozen=True, slots=True)
class PingReceived:
    """
    A ping; the core's owner answers it with L{WebSocketConnection.framePong}.

    @ivar payload: the ping's application data.
    """

    payload: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    """
    A pong.

    @ivar payload: the pong's application data (may be empty).
    """

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """
    The peer's close frame.

    If we had not sent a close frame yet, the connection is now
    C{REMOTE_CLOSING} and the owner must answer with
    L{WebSocketConnection.frameClose}; otherwise the close handshake is
    complete.

    @ivar code: the status code; 1005 when the frame carried none.
    @ivar reason: the reason text, possibly empty.
    """

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """
    The peer broke the protocol; the core discards all further input.

    The owner sends L{WebSocketConnection.frameClose} with this code (once the
    events before this one have been handled) and closes the transport:
    RFC 6455 section 7.1.7, I{Fail the WebSocket Connection}.

    @ivar code: the close code that describes the failure.
    @ivar reason: a short description, safe to send to the peer.
    """

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class MessageStarted:
    """
    A streamed data message began (its first frame's header arrived): what
    a streaming reader (L{txclws._core.streamreader}) reports instead of
    a whole message.

    @ivar opcode: L{Opcode.TEXT} or L{Opcode.BINARY}, as a plain int.
    @since: 0.2.0
    """

    opcode: int


@dataclass(frozen=True, slots=True)
class MessageData:
    """
    The next piece of a streamed message's payload: unmasked, inflated,
    and for a text message decoded (a C{str} that ends at a code point:
    RFC 6455 8.1 holds for the message, and each piece is what the bytes
    so far decode to).  Never empty.

    @ivar data: C{str} for a text message, C{bytes} for a binary one.
    @since: 0.2.0
    """

    data: str | bytes


@dataclass(frozen=True, slots=True)
class MessageEnded:
    """
    The streamed message's last frame (FIN) arrived, and its payload was
    valid to the end.

    @since: 0.2.0
    """


Event = (
    TextMessage
    | BinaryMessage
    | PingReceived
    | PongReceived
    | CloseReceived
    | ConnectionFailed
    | MessageStarted
    | MessageData
    | MessageEnded
)
