# -*- test-case-name: tests.test_testing -*-
"""
Helpers for testing WebSocket resources without sockets.

What C{twisted.internet.testing} gives for protocols, for resources: an
L{InMemoryServer} serves resources over C{StringTransport}s with a
C{MemoryReactorClock} for its timeouts, and each L{InMemoryClient} connected
to it speaks the client side of RFC 6455 in memory.  A test sends text,
binary, ping, pong and close frames, reads back the messages the resource
wrote, already decoded, and advances the clock.  Everything runs
synchronously, so the same test works under trial and under pytest::

    from txclws.testing import connect

    def test_echo():
        client = connect(EchoResource(), "/echo")
        client.sendText("hello")
        assert client.readMessages() == ["hello"]
        client.sendClose()
        assert client.closeCode == 1000 and client.disconnected

Several clients of one resource share a server::

    server = InMemoryServer()
    server.register("/chat", ChatResource())
    alice, bob = server.connect("/chat"), server.connect("/chat")

A resource whose callbacks return Deferreds works too: a Deferred that
fires later (on L{InMemoryServer.clock}, or fired by the test) is waited
for as a real server would, and whatever it writes is read by the next
L{InMemoryClient.readMessages}.

@since: 0.1.0
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IProtocol, IProtocolFactory
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from txclws._core.close import parseClosePayload, serializeClosePayload
from txclws._core.frames import Opcode, serializeFrame
from txclws._core.handshake import acceptKey
from txclws._core.origin import OriginCheck, anyOrigin
from txclws._factory import ResourceRegistry, WebSocketFactory
from txclws._resource import IWebSocketResource

__all__ = [
    "HandshakeRefused",
    "InMemoryClient",
    "InMemoryServer",
    "ServerProtocolError",
    "connect",
]

#: The masking key of every frame an in-memory client sends (the one in
#: RFC 6455 section 5.7's examples), so tests are deterministic.
MASK = b"\x37\xfa\x21\x3d"

#: The C{Sec-WebSocket-Key} an in-memory client sends (RFC 6455 section 1.3).
KEY = base64.b64encode(b"the sample nonce").decode("ascii")


class HandshakeRefused(Exception):
    """
    The server answered the opening handshake with something other than
    C{101}, and the test required it to accept.

    @ivar status: the HTTP status code.
    @ivar body: the response body.
    """

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"handshake refused: {status} {body!r}")
        self.status = status
        self.body = body


class ServerProtocolError(Exception):
    """
    The server sent bytes that break RFC 6455 (a txclws bug, if it happens).
    """


def connect(
    resource: IWebSocketResource,
    target: str = "/",
    *,
    originCheck: OriginCheck = anyOrigin,
    clock: MemoryReactorClock | None = None,
    **options: Any,
) -> InMemoryClient:
    """
    Serve C{resource} on a new L{InMemoryServer} and connect a client to it.

    @param resource: the resource under test, served at C{target}'s path.
    @param target: the request target, e.g. C{"/chat?name=alice"}.
    @param originCheck: the resource's origin policy; every origin by
        default.
    @param clock: the clock for the server's timeouts; a new one by default
        (then reach it as C{client.server.clock}).
    @param options: keyword arguments of L{InMemoryServer.connect}
        (C{origin}, C{headers}, C{subprotocols}, C{requireAccept}, ...);
        any other is a limit passed to L{WebSocketFactory}, e.g.
        C{maxMessageSize=1024}.
    @return: the connected client.
    @raise HandshakeRefused: the handshake was refused (unless
        C{requireAccept=False}).
    """
    connectNames = {"origin", "headers", "subprotocols", "requireAccept", "autoClose"}
    connectOptions = {k: v for k, v in options.items() if k in connectNames}
    limits = {k: v for k, v in options.items() if k not in connectNames}
    server = InMemoryServer(clock=clock, **limits)
    server.register(target.partition("?")[0], resource, originCheck)
    return server.connect(target, **connectOptions)


class InMemoryServer:
    """
    A server with no sockets: a protocol factory whose connections are
    L{StringTransport}s, and a fake clock for its timeouts.

    @ivar clock: the L{MemoryReactorClock} the server's timeouts run on.
    @ivar factory: the protocol factory serving each connection: a
        L{WebSocketFactory} by default, or any other given, such as a
        C{twisted.web} C{Site} with L{txclws.web.WebSocketUpgradeResource}s
        (made with C{reactor=server.clock} for its timeouts to apply).
    @ivar clients: every L{InMemoryClient} connected so far.
    """

    def __init__(
        self,
        factory: IProtocolFactory | None = None,
        *,
        clock: MemoryReactorClock | None = None,
        **limits: Any,
    ) -> None:
        """
        @param factory: the factory to serve; by default a
            L{WebSocketFactory} with an empty registry (see L{register}) on
            C{clock}, made with C{limits}.
        @param clock: the fake clock; a new one by default.
        @param limits: keyword arguments of L{WebSocketFactory}, when
            C{factory} is not given.
        """
        self.clock = clock if clock is not None else MemoryReactorClock()
        if factory is None:
            factory = WebSocketFactory(ResourceRegistry(), reactor=self.clock, **limits)
        elif limits:
            raise TypeError("limits apply only to the default WebSocketFactory")
        self.factory = factory
        self.clients: list[InMemoryClient] = []
        self._nextPort = 50000

    def register(
        self,
        path: str,
        resource: IWebSocketResource,
        originCheck: OriginCheck = anyOrigin,
    ) -> None:
        """
        Serve C{resource} at C{path}; see L{ResourceRegistry.register}.

        @raise TypeError: the factory is not a L{WebSocketFactory}.
        """
        if not isinstance(self.factory, WebSocketFactory):
            raise TypeError("register() needs the default WebSocketFactory")
        self.factory.registerResource(path, resource, originCheck)

    def connect(
        self,
        target: str = "/",
        *,
        origin: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        subprotocols: Sequence[str] = (),
        requireAccept: bool = True,
        autoClose: bool = True,
    ) -> InMemoryClient:
        """
        Connect a new client and send its opening handshake.

        @param target: the request target, e.g. C{"/chat?name=alice"}.
        @param origin: the C{Origin} header to send; none by default, as
            non-browser clients do.
        @param headers: more request headers, as C{(name, value)} pairs.
        @param subprotocols: the subprotocols to offer.
        @param requireAccept: raise L{HandshakeRefused} unless the answer
            is C{101}; when False, look at C{client.status} instead.
        @param autoClose: answer the server's close frame with our own, as
            browsers do; when False the test must call
            L{InMemoryClient.sendClose} (or let the server time out).
        @return: the client, its handshake answered.
        @raise HandshakeRefused: see C{requireAccept}.
        """
        self._nextPort += 1
        peer = IPv4Address("TCP", "127.0.0.1", self._nextPort)
        protocol = self.factory.buildProtocol(peer)
        if protocol is None:
            raise HandshakeRefused(0, b"the factory refused the connection")
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 80),
            peerAddress=peer,
            lenient=True,
        )
        client = InMemoryClient(self, protocol, transport, autoClose)
        self.clients.append(client)
        protocol.makeConnection(transport)
        client._handshake(target, origin, headers, subprotocols)
        if requireAccept and client.status != 101:
            raise HandshakeRefused(client.status, client.responseBody)
        return client

    def advance(self, seconds: float) -> None:
        """
        Move the clock on by C{seconds}, running the timeouts that expire,
        and let every client read what the server then wrote.
        """
        self.clock.advance(seconds)
        for client in self.clients:
            client._pump()


class InMemoryClient:
    """
    The client side of one in-memory WebSocket connection.

    Frames sent are masked with L{MASK}; frames received are checked and
    decoded.  The server's pings are answered at once, as browsers do.

    @ivar server: the L{InMemoryServer} connected to.
    @ivar protocol: the protocol the server's factory built for this
        connection (for a L{WebSocketFactory}, the
        L{txclws.WebSocketServerProtocol}: the very C{client} object the
        resource is given).
    @ivar transport: the server's L{StringTransport}.
    @ivar status: the HTTP status of the handshake answer (101: accepted).
    @ivar responseHeaders: the answer's headers, by lower-case name.
    @ivar responseBody: the answer's body (a refusal's explanation).
    @ivar pings: payloads of the pings the server sent, oldest first.
    @ivar pongs: payloads of the pongs the server sent, oldest first.
    """

    def __init__(
        self,
        server: InMemoryServer,
        protocol: IProtocol,
        transport: StringTransport,
        autoClose: bool,
    ) -> None:
        self.server = server
        self.protocol = protocol
        self.transport = transport
        self.status = 0
        self.responseHeaders: dict[str, str] = {}
        self.responseBody = b""
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self._autoClose = autoClose
        self._messages: list[str | bytes] = []
        self._reader = _ServerFrameReader()
        self._head: bytearray | None = bytearray()
        self._closeSent = False
        self._closeReceived: tuple[int, str] | None = None
        self._lost = False
        self._pumping = False

    # -- sending ---------------------------------------------------------

    def sendText(self, message: str | bytes, frameSize: int | None = None) -> None:
        """
        Send a text message, in frames of C{frameSize} bytes if given.

        @param message: a C{str}, or bytes (sent as they are, even if they
            are not UTF-8: that is how to test a server's 1007).
        """
        data = message.encode("utf-8") if isinstance(message, str) else message
        self._sendMessage(Opcode.TEXT, data, frameSize)

    def sendBinary(self, data: bytes, frameSize: int | None = None) -> None:
        """
        Send a binary message, in frames of C{frameSize} bytes if given.
        """
        self._sendMessage(Opcode.BINARY, data, frameSize)

    def sendPing(self, payload: bytes = b"") -> None:
        """
        Send a ping; the server's pong lands in L{pongs}.
        """
        self.sendFrame(Opcode.PING, payload)

    def sendPong(self, payload: bytes = b"") -> None:
        """
        Send an unsolicited pong (the resource's C{receivedPong} gets it).
        """
        self.sendFrame(Opcode.PONG, payload)

    def sendClose(self, code: int | None = 1000, reason: str = "") -> None:
        """
        Send a close frame; L{None} sends one without a status code.
        """
        self._closeSent = True
        payload = serializeClosePayload(code, reason.encode("utf-8"))
        self.sendFrame(Opcode.CLOSE, payload)

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
        Send raw bytes to the server, then read what it answered.
        """
        if self._lost:
            return
        self.protocol.dataReceived(data)
        self._pump()

    def disconnect(self) -> None:
        """
        Drop the connection without a close handshake, as a client that
        vanishes does.
        """
        self._pump()
        if not self._lost:
            self._lose(ConnectionLost("the client vanished"))

    # -- receiving -------------------------------------------------------

    def readMessages(self) -> list[str | bytes]:
        """
        The messages the server sent since the last call, oldest first:
        C{str} for text, C{bytes} for binary.
        """
        self._pump()
        messages, self._messages = self._messages, []
        return messages

    def readMessage(self) -> str | bytes:
        """
        The single message the server sent since the last read.

        @raise AssertionError: it sent none, or more than one.
        """
        messages = self.readMessages()
        if len(messages) != 1:
            raise AssertionError(f"expected one message, got {messages!r}")
        return messages[0]

    @property
    def closeCode(self) -> int | None:
        """
        The code of the server's close frame, or L{None} before one came
        (1005 for a close frame without a code).
        """
        self._pump()
        return self._closeReceived[0] if self._closeReceived else None

    @property
    def closeReason(self) -> str:
        """
        The reason of the server's close frame, or C{""}.
        """
        self._pump()
        return self._closeReceived[1] if self._closeReceived else ""

    @property
    def disconnected(self) -> bool:
        """
        Whether the TCP connection is gone, whoever closed it.
        """
        self._pump()
        return self._lost

    def advance(self, seconds: float) -> None:
        """
        Move the server's clock on; see L{InMemoryServer.advance}.
        """
        self.server.advance(seconds)

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
        self.sendBytes(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def _pump(self) -> None:
        """
        Read what the server wrote; deliver the loss of the connection
        once the server closed it.

        Not reentrant: an answer sent while reading (a pong, our close
        frame) may make the server write more, which the loop here reads
        after what came before it, in order.
        """
        if self._pumping:
            return
        self._pumping = True
        try:
            while data := self.transport.value():
                self.transport.clear()
                self._received(data)
        finally:
            self._pumping = False
        transport = self.transport
        if not self._lost and (transport.disconnecting or transport.disconnected):
            self._lose(ConnectionDone("the server closed the connection"))

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
                code = self._closeReceived[0]
                self.sendClose(None if code == 1005 else code)

    def _lose(self, reason: Exception) -> None:
        self._lost = True
        self.protocol.connectionLost(Failure(reason))


class _ServerFrameReader:
    """
    Reassembles the server's (unmasked) frames into messages and control
    frames, checking what a client must check (RFC 6455 section 5).
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._opcode = 0
        self._fragments: list[bytes] = []

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """
        Take more bytes from the server.

        @return: C{(opcode, payload)} for each whole message or control
            frame they complete.
        @raise ServerProtocolError: the server broke the framing rules.
        """
        self._buffer += data
        out: list[tuple[int, bytes]] = []
        while True:
            frame = self._nextFrame()
            if frame is None:
                return out
            message = self._assemble(*frame)
            if message is not None:
                out.append(message)

    def _nextFrame(self) -> tuple[bool, int, bytes] | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        first, second = buffer[0], buffer[1]
        if second & 0x80:
            raise ServerProtocolError("the server masked a frame (RFC 6455 5.1)")
        if first & 0x70:
            raise ServerProtocolError("the server set reserved bits")
        length, offset = second & 0x7F, 2
        if length >= 126:
            size = 2 if length == 126 else 8
            if len(buffer) < 2 + size:
                return None
            length = int.from_bytes(buffer[2 : 2 + size], "big")
            offset += size
        if len(buffer) < offset + length:
            return None
        self._buffer = buffer[offset + length :]
        return bool(first & 0x80), first & 0x0F, buffer[offset : offset + length]

    def _assemble(
        self, fin: bool, opcode: int, payload: bytes
    ) -> tuple[int, bytes] | None:
        if opcode >= 0x8:
            if not fin or len(payload) > 125:
                raise ServerProtocolError("a fragmented or oversized control frame")
            return opcode, payload
        if (opcode == Opcode.CONTINUATION) != bool(self._opcode):
            raise ServerProtocolError("a continuation frame out of place")
        if opcode != Opcode.CONTINUATION:
            self._opcode = opcode
        self._fragments.append(payload)
        if not fin:
            return None
        message = (self._opcode, b"".join(self._fragments))
        self._opcode, self._fragments = 0, []
        return message
