# -*- test-case-name: tests.test_testing -*-
"""
The client's side of an in-memory connection, under L{InMemoryClient}'s
test API: the opening handshake, the loop that lets both sides catch up,
and the server's frames answered as a browser answers them (RFC 6455).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from twisted.internet.interfaces import IProtocol

from txclws._core.arguments import checkCloseArguments
from txclws._core.close import parseClosePayload, serializeClosePayload
from txclws._core.frames import Opcode, serializeFrame
from txclws._core.handshake import acceptKey
from txclws.testing._transport import InMemoryTransport
from txclws.testing._wire import (
    KEY,
    MASK,
    READ_SIZE,
    Reading,
    ServerFrameReader,
    ServerProtocolError,
    checkReading,
)


class ClientPeer:
    """
    The bytes of one in-memory client, both ways: what it sends (masked
    with L{MASK}), its opening handshake, and what it reads of the server's
    (checked, decoded; pings answered, close frames echoed with
    C{autoClose}).  L{InMemoryClient} adds the test API.
    """

    def __init__(
        self,
        protocol: IProtocol,
        transport: InMemoryTransport,
        autoClose: bool,
        reading: Reading = True,
    ) -> None:
        self.protocol = protocol
        self.transport = transport
        self.status = 0
        self.responseHeaders: dict[str, str] = {}
        self.responseBody = b""
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self._autoClose = autoClose
        self._reading: Reading = True
        self._afterHandshake = checkReading(reading)
        self._messages: list[str | bytes] = []
        self._reader = ServerFrameReader()
        self._head: bytearray | None = bytearray()
        self._closeSent = False
        self._closeReceived: tuple[int, str] | None = None
        self._lost = False
        self._sawEOF = False
        self._writeShut = False
        self._pumping = False

    def sendClose(self, code: int | None = 1000, reason: str = "") -> None:
        """
        Send a close frame; C{None} sends one without a status code.

        @raise TypeError: C{code} is neither an C{int} nor C{None}, or
            C{reason} is not a C{str}.
        @raise ValueError: C{code} may not be sent (1005 included), or
            C{reason} is over 122 bytes of UTF-8 (see
            L{txclws._core.arguments.checkCloseArguments}); to send such a
            frame anyway, use L{sendFrame}.
        """
        checked, encoded = checkCloseArguments(code, reason)
        self._closeSent = True
        self.sendFrame(Opcode.CLOSE, serializeClosePayload(checked, encoded))

    def sendFrame(
        self, opcode: int, payload: bytes, fin: bool = True, rsv: int = 0
    ) -> None:
        """
        Send one frame exactly as described, masked; nothing is checked, so
        a test can send what the RFC forbids.
        """
        self.sendBytes(serializeFrame(opcode, payload, fin, rsv, MASK))

    def sendBytes(self, data: bytes) -> None:
        """
        Send raw bytes to the server, then let it answer.  While the server
        is not reading (L{serverReading}) they wait, in order; once the
        connection is gone, or our side shut (L{shutdownWrite}), they are
        dropped.
        """
        if self._lost or self._writeShut:
            return
        self.transport._peerSend(data)
        self._pump()

    def disconnect(self) -> None:
        """
        Read what is there to read, then drop the connection without a
        close handshake, as a client that vanishes does (see L{vanish}).
        """
        self._pump()
        self.vanish()

    def vanish(self) -> None:
        """
        Drop the connection at once, as a reset does: the server's protocol
        gets C{connectionLost} with C{ConnectionLost} now, even while it is
        not reading this client (say, while a callback is pending with the
        client's next events queued past C{maxQueuedBytes}); what either
        side had not yet read is lost.

        @since: 0.2.0
        """
        if not self._lost:
            self._lost = True
            self.transport._peerReset()

    def shutdownWrite(self) -> None:
        """
        Half-close: the server reads the end of the stream after what we
        sent before it, once it reads this client again.  A protocol that
        does not provide C{IHalfCloseableProtocol} (L{WebSocketFactory}'s
        does not) then loses the connection, as on TCP.

        @since: 0.2.0
        """
        if not self._lost and not self._writeShut:
            self._writeShut = True
            self.transport._peerShutdownWrite()
            self._pump()

    # -- internals -------------------------------------------------------

    def _sendMessage(self, opcode: int, data: bytes, frameSize: int | None) -> None:
        size = frameSize or max(len(data), 1)
        chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        frames = [
            serializeFrame(
                opcode if i == 0 else Opcode.CONTINUATION,
                chunk,
                i == len(chunks) - 1,
                0,
                MASK,
            )
            for i, chunk in enumerate(chunks)
        ]
        self.sendBytes(b"".join(frames))

    def _handshake(
        self,
        target: str,
        origin: str | None,
        headers: Iterable[tuple[str, str]],
        subprotocols: Sequence[str],
    ) -> None:
        """
        Send the opening handshake and read the answer's head (all of a
        refusal); then read as the test asked.
        """
        lines = [
            f"GET {target} HTTP/1.1",
            "Host: localhost",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {KEY}",
            "Sec-WebSocket-Version: 13",
        ]
        if origin is not None:
            lines.append(f"Origin: {origin}")
        if subprotocols:
            lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
        lines.extend(f"{name}: {value}" for name, value in headers)
        self._reading = False
        self.sendBytes(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        end = self.transport.value().find(b"\r\n\r\n")
        if end >= 0:
            self._pump(end + 4)
        if self.status != 101:
            self._pump(None)
        self._reading = self._afterHandshake
        self._pump()

    def _pump(self, allowance: int | None = 0) -> int:
        """
        Let the connection catch up: the server reads what we sent, we read
        what it wrote (at most C{allowance} bytes more than
        L{reading <InMemoryClient.reading>} allows: C{None}, no limit), until
        neither has anything to do.

        Not reentrant: an answer sent while reading (a pong, our close
        frame) waits to be delivered by the loop here, after what came
        before it, in order.

        @return: how many bytes we read.
        """
        if self._pumping:
            return 0
        if self._reading is True:
            allowance = None
        self._pumping = True
        read = 0
        transport = self.transport
        try:
            while True:
                size = READ_SIZE if allowance is None else min(allowance, READ_SIZE)
                data = transport._peerRead(size)
                if data:
                    read += len(data)
                    if allowance is not None:
                        allowance -= len(data)
                    self._received(data)
                elif not (transport._serve() or self._noticeEOF()):
                    break
        finally:
            self._pumping = False
        if transport.disconnected:
            self._lost = True
        return read

    def _noticeEOF(self) -> bool:
        """
        Once we have read the end of the server's stream, close our side
        too (with C{autoClose}), as browsers do.

        @return: whether that is news.
        """
        if self._sawEOF or not self.transport._eofToPeer:
            return False
        self._sawEOF = True
        if self._autoClose and not self._writeShut:
            self._writeShut = True
            self.transport._peerShutdownWrite()
        return True

    def _received(self, data: bytes) -> None:
        if self._head is not None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            data = bytes(self._head[end + 4 :])
            self._parseHead(bytes(self._head[:end]))
            self._head = None
            if self.status != 101:
                self.responseBody += data
                return
        elif self.status != 101:
            self.responseBody += data
            return
        for kind, payload in self._reader.feed(data):
            self._frameReceived(kind, payload)

    def _parseHead(self, head: bytes) -> None:
        statusLine, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(statusLine.split(" ")[1])
        for line in lines:
            name, _, value = line.partition(":")
            self.responseHeaders[name.strip().lower()] = value.strip()
        if self.status == 101:
            accept = self.responseHeaders.get("sec-websocket-accept")
            if accept != acceptKey(KEY):
                raise ServerProtocolError(f"wrong Sec-WebSocket-Accept {accept!r}")

    def _frameReceived(self, kind: int, payload: bytes) -> None:
        if kind == Opcode.TEXT:
            self._messages.append(payload.decode("utf-8"))
        elif kind == Opcode.BINARY:
            self._messages.append(payload)
        elif kind == Opcode.PING:
            self.pings.append(payload)
            if not self._closeSent:
                self.sendFrame(Opcode.PONG, payload)
        elif kind == Opcode.PONG:
            self.pongs.append(payload)
        elif kind == Opcode.CLOSE:
            self._closeReceived = parseClosePayload(payload)
            if self._autoClose and not self._closeSent:
                # Echo the code as it came (RFC 6455 5.5.1), 1012 included,
                # as browsers do.
                code = self._closeReceived[0]
                self._closeSent = True
                echo = serializeClosePayload(None if code == 1005 else code)
                self.sendFrame(Opcode.CLOSE, echo)
