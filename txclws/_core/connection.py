# -*- test-case-name: tests.test_connection -*-
"""
The sans-I/O server side of one RFC 6455 connection, after the handshake.

L{WebSocketConnection} takes the client's bytes and returns events; each
C{frame*} method returns the bytes to write.  It does no I/O, keeps no clock
and calls nobody: its owner (the Twisted adapter, or a test) moves the bytes
and decides when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from txclws._core.arguments import (
    checkBinaryMessage,
    checkFrameSize,
    checkPingPayload,
    checkTextMessage,
    closePayload,
)
from txclws._core.close import serviceRestartPayload
from txclws._core.errors import ConnectionClosed, UnsupportedByProtocol
from txclws._core.eventreader import EventReader
from txclws._core.events import CloseReceived, ConnectionFailed, Event
from txclws._core.fragments import IMessageFramer, MessageFramer
from txclws._core.frames import (
    Opcode,
    serializeFrame,
    serializeMessage,
)
from txclws._core.reader import MessageReader
from txclws._core.states import (
    AFTER_CLOSE_SENT,
    AFTER_INPUT_ENDS,
    CAN_SEND,
    MAY_BROADCAST,
    ConnectionState,
)
from txclws._core.streamreader import UNLIMITED, StreamingMessageReader

if TYPE_CHECKING:
    from txclws._core.deflate import DeflateCodec


__all__ = ["PLAIN_FRAMES", "ConnectionState", "WebSocketConnection", "isCompressed"]

_S = ConnectionState

#: The L{WebSocketConnection.wireKey} of unmasked, uncompressed RFC 6455
#: frames (a server's, without permessage-deflate): a one-frame message is
#: its header followed by its payload as it is.
PLAIN_FRAMES = "rfc6455"


_RSV1 = 0x40


class _OurClose:
    """
    Our close frame, sent once: the one the owner asks for
    (L{frameClose}), or a draining server's (L{frameServiceRestart}).
    """

    __slots__ = ("state",)

    state: ConnectionState
    version: int

    def _controlFrame(self, opcode: int, payload: bytes) -> bytes:
        raise NotImplementedError

    def frameClose(self, code: int | None = 1000, reason: str = "") -> bytes:
        """
        Frame our close frame, once.

        In C{REMOTE_CLOSING} this is the reply to the peer's close: pass its
        code (or C{None}, for a close without a status) to echo it.

        @param code: the status code, or C{None} to send no status; the
            peer's 1005 (it sent no status) is echoed as no status.
        @param reason: the reason text (under 123 bytes of UTF-8).
        @return: the close frame, or nothing if ours was already sent.
        @raise TypeError: see L{checkCloseArguments}.
        @raise ValueError: the code may not be sent or the reason is too long
            (L{checkCloseArguments}).
        """
        following = AFTER_CLOSE_SENT.get(self.state)
        if following is None:
            return b""
        frame = self._closeFrame(code, reason)
        self.state = following
        return frame

    def frameServiceRestart(self) -> bytes:
        """
        Frame our close frame, once, as a draining server does: 1012
        "service restart" (1001 to hybi-07/08, the closing frame alone to
        hixie-76), a code C{frameClose} does not send.

        @return: the close frame, or nothing if ours was already sent.
        """
        following = AFTER_CLOSE_SENT.get(self.state)
        if following is None:
            return b""
        frame = self._restartFrame()
        self.state = following
        return frame

    def _restartFrame(self) -> bytes:
        return self._controlFrame(Opcode.CLOSE, serviceRestartPayload(self.version))

    def _closeFrame(self, code: int | None, reason: str) -> bytes:
        return self._controlFrame(
            Opcode.CLOSE, closePayload(code, reason, self.version)
        )


class WebSocketConnection(_OurClose):
    """
    One server-side WebSocket connection, as a state machine over bytes.

    @ivar state: the L{ConnectionState}.
    @ivar closeCode: the code of the close frame received (or, after a
        failure, the one we failed with), else C{None}.
    @ivar closeReason: the matching reason text.
    """

    __slots__ = (
        "_compression",
        "_maxFrameSize",
        "_reader",
        "_wireKey",
        "closeCode",
        "closeReason",
        "version",
    )

    #: Whether this protocol has pings (and so keepalive); hixie-76 has none.
    canPing = True

    #: The reader of the peer's frames: a server reads masked client frames
    #: (L{txclws._core.clientconnection.ClientConnection} reads unmasked).
    readerClass: type[MessageReader] = MessageReader

    #: The reader that streams data messages (L{streamMessages}), or
    #: C{None} for a protocol that delivers whole messages only.
    streamingReaderClass: type[MessageReader] | None = StreamingMessageReader

    def __init__(
        self,
        maxFrameSize: int,
        maxMessageSize: int,
        compression: DeflateCodec | None = None,
        version: int = 13,
    ) -> None:
        """
        @param maxFrameSize: the largest frame payload accepted, in bytes.
        @param maxMessageSize: the largest message accepted, in bytes (after
            decompression, if a compression extension was negotiated).
        @param compression: the negotiated permessage-deflate codec, if any.
        @param version: the C{Sec-WebSocket-Version} agreed, 13, 8 or 7: the
            framing is the same, the close codes allowed differ (see
            L{txclws._core.close.isValidCloseCode}).
        """
        self._compression = compression
        self._wireKey = PLAIN_FRAMES if compression is None else compression.wireKey
        self.version = version
        self._maxFrameSize = maxFrameSize
        self._reader: EventReader = self.readerClass(
            maxFrameSize, maxMessageSize, compression, version
        )
        self.state = ConnectionState.OPEN
        self.closeCode: int | None = None
        self.closeReason = ""

    def streamMessages(self, maxMessageSize: int | None) -> bool:
        """
        Report data messages as they arrive (L{MessageStarted},
        L{MessageData}, L{MessageEnded}) rather than whole: call before
        the first byte is received.

        @param maxMessageSize: the largest streamed message accepted (1009
            over it), or C{None} for no limit; C{maxFrameSize} still holds.
        @return: whether this protocol streams; if not (hixie-76), whole
            messages go on coming.
        @since: 0.2.0
        """
        readerClass = self.streamingReaderClass
        if readerClass is None:
            return False
        limit = UNLIMITED if maxMessageSize is None else maxMessageSize
        self._reader = readerClass(
            self._maxFrameSize, limit, self._compression, self.version
        )
        return True

    def receiveData(self, data: bytes) -> list[Event]:
        """
        Take the client's next bytes.

        @return: the events they complete, in order.
        """
        events = self._reader.feed(data)
        if events:
            last = events[-1]
            following = AFTER_INPUT_ENDS.get(type(last))
            if following is not None:
                assert isinstance(last, (CloseReceived, ConnectionFailed))
                self.state = following.get(self.state, self.state)
                self.closeCode, self.closeReason = last.code, last.reason
        return events

    @property
    def payloadAwaited(self) -> int:
        """See L{EventReader.payloadAwaited}."""
        return self._reader.payloadAwaited

    @property
    def mayBroadcast(self) -> bool:
        """Whether unsolicited messages may be sent now (L{MAY_BROADCAST})."""
        return self.state in MAY_BROADCAST

    @property
    def canSend(self) -> bool:
        """Whether data frames and pings may still be sent (L{CAN_SEND})."""
        return self.state in CAN_SEND

    def messageFramer(self, opcode: int) -> IMessageFramer:
        """
        A framer for one message sent as it comes, fragment by fragment,
        compressed with this connection's context if permessage-deflate was
        agreed.  Its messages must not interleave with others: the owner
        sends nothing else but control frames until its last frame.

        @raise UnsupportedByProtocol: the protocol has no fragments.
        @raise ConnectionClosed: a close frame was sent already.
        @since: 0.2.0
        """
        self.checkCanCarry(opcode)
        self._checkCanSend()
        compression = self._compression
        return MessageFramer(
            opcode, None if compression is None else compression.streamCompressor()
        )

    def _checkCanSend(self) -> None:
        if self.state not in CAN_SEND:
            raise ConnectionClosed(f"connection is {self.state.name}")

    def frameText(self, text: str | bytes, frameSize: int | None = None) -> bytes:
        """
        Frame a text message (a C{str}, or its UTF-8 bytes), in frames of
        at most C{frameSize} bytes if given.

        @raise TypeError: see L{checkTextMessage} and L{checkFrameSize}.
        @raise ValueError: bytes not UTF-8, or C{frameSize} not positive.
        @raise ConnectionClosed: a close frame was sent already.
        """
        return self.frameUtf8(checkTextMessage(text), checkFrameSize(frameSize))

    def frameUtf8(self, payload: bytes, frameSize: int | None = None) -> bytes:
        """
        Frame a text message whose payload is known to be UTF-8, and a
        C{frameSize} known to be valid: what L{checkTextMessage} and
        L{checkFrameSize} returned (the client API checks its arguments
        first, before it looks at the connection).

        @raise ConnectionClosed: a close frame was sent already.
        """
        state = self.state
        if state is not _S.OPEN and state not in CAN_SEND:
            raise ConnectionClosed(f"connection is {state.name}")
        if frameSize is None and len(payload) < 126 and self._compression is None:
            # The common case, framed directly: FIN + text, 7-bit length
            # (RFC 6455 5.2).
            return bytes((0x81, len(payload))) + payload
        return self._frameOrRefuse(Opcode.TEXT, payload, frameSize)

    def frameBinary(
        self, data: bytes | memoryview, frameSize: int | None = None
    ) -> bytes:
        """
        Frame a binary message.

        @raise TypeError: see L{checkBinaryMessage} and L{checkFrameSize}.
        @raise ValueError: C{frameSize} is not positive.
        @raise UnsupportedByProtocol: the protocol has no binary messages.
        @raise ConnectionClosed: a close frame was sent already.
        """
        payload = checkBinaryMessage(data)
        size = checkFrameSize(frameSize)
        self.checkCanCarry(Opcode.BINARY)
        self._checkCanSend()
        return self._frameOrRefuse(Opcode.BINARY, payload, size)

    def checkCanCarry(self, opcode: int) -> None:
        """
        Refuse what this protocol has no frames for, whatever the state: a
        misuse that no timing makes right.  RFC 6455 carries everything.

        @raise UnsupportedByProtocol: it cannot.
        """

    def _frameOrRefuse(
        self, opcode: int, payload: bytes | memoryview, frameSize: int | None
    ) -> bytes:
        frame = self.frameMessage(opcode, payload, frameSize)
        if frame is None:
            raise UnsupportedByProtocol(
                f"{type(self).__name__} cannot carry opcode {opcode}"
            )
        return frame

    @property
    def wireKey(self) -> object:
        """Equal keys, equal framed bytes: a broadcast frames once per key."""
        return self._wireKey

    def broadcastFrame(
        self,
        opcode: int,
        payload: bytes,
        frameSize: int | None,
        frames: dict[object, bytes | None],
    ) -> bytes | None:
        """
        The bytes of a broadcast message for this peer, framed once per
        L{wireKey}: reused from C{frames}, or framed and added to it.

        @return: the bytes, or C{None} if this peer may not be sent a
            broadcast now (L{mayBroadcast}) or its protocol cannot carry it.
        """
        if self.state not in MAY_BROADCAST:
            return None
        key = self._wireKey  # per client: a slot, not the property's call
        try:
            return frames[key]
        except KeyError:
            data = frames[key] = self.frameMessage(opcode, payload, frameSize)
            return data

    def frameMessage(
        self, opcode: int, payload: bytes | memoryview, frameSize: int | None = None
    ) -> bytes | None:
        """
        The bytes that carry a message to this connection's peer: what a
        broadcast calls once per L{wireKey}.  Compressed (RSV1 on the first
        frame, RFC 7692 section 6) when permessage-deflate was agreed and
        the message is not too short to gain from it.

        @return: the bytes, or C{None} if the protocol cannot carry it.
        """
        compression = self._compression
        if compression is not None and len(payload) >= compression.minSize:
            return serializeMessage(
                opcode, compression.compress(payload), frameSize, _RSV1
            )
        return serializeMessage(opcode, payload, frameSize)

    def framePing(self, payload: bytes = b"") -> bytes:
        """
        Frame a ping.

        @raise TypeError: the payload is not bytes-like.
        @raise ValueError: the payload is over 125 bytes.
        @raise UnsupportedByProtocol: the protocol has no pings.
        @raise ConnectionClosed: a close frame was sent already.
        """
        data = checkPingPayload(payload)
        self.checkCanCarry(Opcode.PING)
        self._checkCanSend()
        return self._controlFrame(Opcode.PING, data)

    def framePong(self, payload: bytes = b"") -> bytes:
        """
        Frame a pong: the answer to a ping, with its payload (RFC 6455 5.5.3).

        @return: the frame, or nothing once our close frame is sent.
        """
        if self.state not in CAN_SEND:
            return b""
        return self._controlFrame(Opcode.PONG, checkPingPayload(payload))

    def _controlFrame(self, opcode: int, payload: bytes) -> bytes:
        """
        Serialise a control frame (a server's: unmasked, RFC 6455 5.1).
        """
        return serializeFrame(opcode, payload)


def isCompressed(connection: WebSocketConnection) -> bool:
    """
    Whether permessage-deflate (RFC 7692) was agreed on C{connection}:
    what its acceptance decided, whichever entry point answered it (an
    HTTP/1.1 101 or an HTTP/2 200).
    """
    return connection._compression is not None
