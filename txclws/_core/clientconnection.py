# -*- test-case-name: tests.test_clientconnection -*-
"""
The sans-I/O client side of one RFC 6455 connection, after the handshake.

L{ClientConnection} is L{WebSocketConnection} in the other role: every
frame it sends is masked with a fresh 4-byte key (RFC 6455 5.3: "the
masking key is a 32-bit value chosen at random ... MUST pick a fresh
masking key for each frame"), and it reads the server's frames with
L{UnmaskedMessageReader}, which fails the connection on a masked one (5.1).
The state machine, the close rules of the core and the codec are the
server's: only the bytes differ.  Who closes the TCP connection is the
session's business (7.1.1: the server does, first).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from txclws._core.clientreader import UnmaskedMessageReader, UnmaskedStreamingReader
from txclws._core.connection import WebSocketConnection
from txclws._core.fragments import MessageFramer
from txclws._core.frames import Opcode, serializeFrame, serializeMessage
from txclws._core.reader import MessageReader

if TYPE_CHECKING:
    from txclws._core.deflate import DeflateCodec

__all__ = ["ClientConnection", "newMaskKey"]

_RSV1 = 0x40


def newMaskKey() -> bytes:
    """
    A fresh masking key from the operating system's CSPRNG (RFC 6455 10.3:
    the key must not be predictable by the application's peer).
    """
    return os.urandom(4)


class ClientConnection(WebSocketConnection):
    """
    One client-side WebSocket connection, as a state machine over bytes.
    """

    __slots__ = ("_newMask",)

    readerClass: type[MessageReader] = UnmaskedMessageReader
    streamingReaderClass: type[MessageReader] | None = UnmaskedStreamingReader

    def __init__(
        self,
        maxFrameSize: int,
        maxMessageSize: int,
        compression: DeflateCodec | None = None,
        newMask: Callable[[], bytes] = newMaskKey,
    ) -> None:
        """
        @param maxFrameSize: the largest frame payload accepted, in bytes.
        @param maxMessageSize: the largest message accepted, in bytes (after
            decompression).
        @param compression: the agreed permessage-deflate codec, built for
            the client role (L{txclws._core.clientdeflate}), if any.
        @param newMask: returns a fresh masking key per frame; tests inject
            a fixed one.
        """
        super().__init__(maxFrameSize, maxMessageSize, compression, 13)
        self._newMask = newMask
        # Every frame carries a mask key of its own, so no two client
        # connections share framed bytes: a key equal only to itself makes
        # a broadcast frame once per connection.
        self._wireKey = object()

    def frameUtf8(self, payload: bytes, frameSize: int | None = None) -> bytes:
        """
        Frame a text message already checked (see
        L{WebSocketConnection.frameUtf8}), masked: the server's direct
        framing of short messages does not apply.

        @raise ConnectionClosed: a close frame was sent already.
        """
        self._checkCanSend()
        return self._frameOrRefuse(Opcode.TEXT, payload, frameSize)

    def frameMessage(
        self, opcode: int, payload: bytes | memoryview, frameSize: int | None = None
    ) -> bytes | None:
        """
        The masked frames of a message, compressed as the server's
        L{WebSocketConnection.frameMessage} would be.
        """
        compression = self._compression
        if compression is not None and len(payload) >= compression.minSize:
            return serializeMessage(
                opcode, compression.compress(payload), frameSize, _RSV1, self._newMask
            )
        return serializeMessage(opcode, payload, frameSize, 0, self._newMask)

    def messageFramer(self, opcode: int) -> MessageFramer:
        """
        The server's L{WebSocketConnection.messageFramer}, masking each
        frame with a fresh key.
        """
        self._checkCanSend()
        compression = self._compression
        return MessageFramer(
            opcode,
            None if compression is None else compression.streamCompressor(),
            self._newMask,
        )

    def _controlFrame(self, opcode: int, payload: bytes) -> bytes:
        return serializeFrame(opcode, payload, mask=self._newMask())
