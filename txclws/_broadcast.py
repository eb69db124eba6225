# -*- test-case-name: tests.test_broadcast -*-
"""
Sending one message to many clients, framing it once (CLWS's
C{write-to-clients-text} and C{write-to-clients-binary}).

Server frames are never masked (RFC 6455 section 5.1), so every client that
speaks the same wire form receives the very same bytes: the message is
encoded and framed once per distinct form (L{WebSocketConnection.wireKey}),
then written to each client.
"""

from __future__ import annotations

from collections.abc import Iterable

from txclws._core.connection import encodeText
from txclws._core.frames import Opcode
from txclws._resource import IWebSocketClient

__all__ = ["writeToClientsBinary", "writeToClientsText"]


def writeToClientsText(
    clients: Iterable[IWebSocketClient],
    message: str | bytes,
    frameSize: int | None = None,
) -> int:
    """
    Send a text message to every open client in C{clients}.

    Clients that are closing or gone are skipped, not raised about: a
    broadcast races with disconnections by nature.

    @param message: a C{str}, or C{bytes} holding UTF-8.
    @param frameSize: as for L{IWebSocketClient.writeText}.
    @return: how many clients were written to.
    @raise ValueError: C{message} is bytes that are not UTF-8.
    """
    return _writeToClients(clients, Opcode.TEXT, encodeText(message), frameSize)


def writeToClientsBinary(
    clients: Iterable[IWebSocketClient],
    data: bytes,
    frameSize: int | None = None,
) -> int:
    """
    Send a binary message to every open client in C{clients}.

    hixie-76 clients (C{websocketVersion} 0) are skipped, not raised about:
    their protocol has no binary messages.

    @return: how many clients were written to.
    """
    return _writeToClients(clients, Opcode.BINARY, bytes(data), frameSize)


def _writeToClients(
    clients: Iterable[IWebSocketClient],
    opcode: Opcode,
    payload: bytes,
    frameSize: int | None,
) -> int:
    frames: dict[object, bytes | None] = {}
    sent = 0
    for client in clients:
        # A private fast path of WebSocketServerProtocol, outside the
        # interface: a message is framed once per wire format, not per client.
        if client._writePrepared(opcode, payload, frameSize, frames):  # type: ignore[attr-defined]
            sent += 1
    return sent
