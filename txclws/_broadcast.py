# -*- test-case-name: tests.test_broadcast -*-
"""
Sending one message to many clients, framing it once (CLWS's
C{write-to-clients-text} and C{write-to-clients-binary}).

Server frames are never masked (RFC 6455 section 5.1), so every client that
speaks the same wire form receives the very same bytes: the message is
encoded and framed once per distinct form (L{WebSocketConnection.wireKey}),
then written to each client, through L{IFramedWriter.writeFramed}.  Any
other L{IWebSocketClient} is sent the message with its C{writeText} or
C{writeBinary}; anything else is a C{TypeError}.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from txclws._core.arguments import (
    checkBinaryMessage,
    checkFrameSize,
    checkTextMessage,
)
from txclws._core.errors import ConnectionClosed, UnsupportedByProtocol
from txclws._core.frames import Opcode
from txclws._resource import IWebSocketClient
from txclws._session.session import IFramedWriter

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
    @raise TypeError: C{message} is neither C{str} nor bytes, or
        C{frameSize} is not an C{int} (L{txclws._core.arguments}).
    @raise ValueError: C{message} is bytes that are not UTF-8, or
        C{frameSize} is not positive.
    """
    payload = checkTextMessage(message)
    return _writeToClients(clients, Opcode.TEXT, payload, checkFrameSize(frameSize))


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
    @raise TypeError: C{data} is not bytes-like (a C{str} included), or
        C{frameSize} is not an C{int}.
    @raise ValueError: C{frameSize} is not positive.
    """
    payload = bytes(checkBinaryMessage(data))
    return _writeToClients(clients, Opcode.BINARY, payload, checkFrameSize(frameSize))


def _writeToClients(
    clients: Iterable[IWebSocketClient],
    opcode: Opcode,
    payload: bytes,
    frameSize: int | None,
) -> int:
    frames: dict[object, bytes | None] = {}
    #: By class of client seen: its IFramedWriter.writeFramed, or None.
    framed: dict[type, Callable[..., bool] | None] = {}
    sent = 0
    # Clients are nearly always all of one class: look its writeFramed up
    # again only when the class changes.
    lastKind: type | None = None
    writeFramed: Callable[..., bool] | None = None
    for client in clients:
        kind = type(client)
        if kind is not lastKind:
            lastKind = kind
            if kind in framed:
                writeFramed = framed[kind]
            else:
                writeFramed = framed[kind] = (
                    kind.writeFramed if IFramedWriter.implementedBy(kind) else None
                )
        if writeFramed is not None:
            # Framed once per wire form, not per client.
            if writeFramed(client, opcode, payload, frameSize, frames):
                sent += 1
        elif _writeMessage(client, opcode, payload, frameSize):
            sent += 1
    return sent


def _writeMessage(
    client: object, opcode: Opcode, payload: bytes, frameSize: int | None
) -> bool:
    """
    Send a broadcast message through the client's own C{writeText} or
    C{writeBinary}: for an L{IWebSocketClient} that is not an
    L{IFramedWriter} (say, a test double).
    """
    if not IWebSocketClient.providedBy(client):
        raise TypeError(f"{client!r} does not provide IWebSocketClient")
    peer = cast(Any, client)
    try:
        if opcode == Opcode.TEXT:
            peer.writeText(payload, frameSize)
        else:
            peer.writeBinary(payload, frameSize)
    except (ConnectionClosed, UnsupportedByProtocol):
        return False
    return True
