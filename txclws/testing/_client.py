# -*- test-case-name: tests.test_testing -*-
"""
The in-memory client's test API (L{InMemoryClient}) and the server it
connects to (L{InMemoryServer}).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IProtocol, IProtocolFactory
from twisted.internet.testing import MemoryReactorClock

from txclws._core.arguments import (
    checkBinaryMessage,
    checkFrameSize,
    checkPingPayload,
    checkTextMessage,
)
from txclws._core.frames import Opcode
from txclws._core.origin import OriginCheck, anyOrigin
from txclws._factory import ResourceRegistry, WebSocketFactory
from txclws._resource import IWebSocketResource
from txclws.testing._peer import ClientPeer
from txclws.testing._transport import InMemoryTransport
from txclws.testing._wire import HandshakeRefused, Reading, checkReading


class InMemoryServer:
    """
    A server with no sockets: a protocol factory whose connections are
    L{InMemoryTransport}s, and a fake clock for its timeouts.

    @ivar clock: the C{MemoryReactorClock} the server's timeouts run on.
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
        reading: Reading = True,
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
        @param autoClose: answer the server's close frame with our own, and
            close our side once the server has closed its own, as browsers
            do; when False the test must call L{InMemoryClient.sendClose}
            (or let the server time out).
        @param reading: how the client reads once the handshake is
            answered (the answer's head is always read): C{True}, all the
            server writes; C{False}, nothing until told; an C{int} N, N
            bytes at each L{InMemoryClient.step} (and each C{advance}).
            See L{InMemoryClient.reading}.  (@since: 0.2.0)
        @return: the client, its handshake answered.
        @raise HandshakeRefused: see C{requireAccept}.
        """
        self._nextPort += 1
        peer = IPv4Address("TCP", "127.0.0.1", self._nextPort)
        protocol = self.factory.buildProtocol(peer)
        if protocol is None:
            raise HandshakeRefused(0, b"the factory refused the connection")
        transport = InMemoryTransport(
            protocol, IPv4Address("TCP", "127.0.0.1", 80), peer
        )
        client = InMemoryClient(self, protocol, transport, autoClose, reading)
        self.clients.append(client)
        protocol.makeConnection(transport)
        client._handshake(target, origin, headers, subprotocols)
        if requireAccept and client.status != 101:
            raise HandshakeRefused(client.status, client.responseBody)
        return client

    def advance(self, seconds: float) -> None:
        """
        Move the clock on by C{seconds}, running the timeouts that expire,
        then L{step <InMemoryClient.step>} every client: each reads as its
        L{InMemoryClient.reading} says.
        """
        self.clock.advance(seconds)
        for client in self.clients:
            client.step()


class InMemoryClient(ClientPeer):
    """
    The client side of one in-memory WebSocket connection.

    Frames sent are masked with L{MASK}; frames received are checked and
    decoded.  The server's pings are answered at once, as browsers do.

    Every method and property first lets the connection catch up: the
    server reads what the client sent (if it is reading), the client reads
    what the server wrote (as L{reading} allows), until neither has
    anything left to do.

    @ivar server: the L{InMemoryServer} connected to.
    @ivar protocol: the protocol the server's factory built for this
        connection (for a L{WebSocketFactory}, the
        L{txclws.WebSocketServerProtocol}: the very C{client} object the
        resource is given).
    @ivar transport: the server's L{InMemoryTransport}.
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
        transport: InMemoryTransport,
        autoClose: bool,
        reading: Reading = True,
    ) -> None:
        super().__init__(protocol, transport, autoClose, reading)
        self.server = server

    # -- sending ---------------------------------------------------------

    def sendText(self, message: str | bytes, frameSize: int | None = None) -> None:
        """
        Send a text message, in frames of C{frameSize} bytes if given.

        Its arguments are checked as a server-side client's
        C{writeText} checks them (L{txclws._core.arguments}), so a test
        that misuses the API fails the way the application would; to send
        what the RFC forbids (bytes that are not UTF-8, to test a server's
        1007), use L{sendFrame <txclws.testing._peer.ClientPeer.sendFrame>}.

        @param message: a C{str}, or its UTF-8 encoding.
        @raise TypeError: C{message} is neither C{str} nor bytes, or
            C{frameSize} is not an C{int}.
        @raise ValueError: C{message} is bytes that are not UTF-8, or
            C{frameSize} is not positive.
        """
        payload = checkTextMessage(message)
        self._sendMessage(Opcode.TEXT, payload, checkFrameSize(frameSize))

    def sendBinary(self, data: bytes, frameSize: int | None = None) -> None:
        """
        Send a binary message, in frames of C{frameSize} bytes if given.

        @raise TypeError: C{data} is not bytes-like (a C{str} included), or
            C{frameSize} is not an C{int}.
        @raise ValueError: C{frameSize} is not positive.
        """
        payload = bytes(checkBinaryMessage(data))
        self._sendMessage(Opcode.BINARY, payload, checkFrameSize(frameSize))

    def sendPing(self, payload: bytes = b"") -> None:
        """
        Send a ping; the server's pong lands in L{pongs}.

        @raise TypeError: C{payload} is not bytes-like.
        @raise ValueError: it is over 125 bytes (RFC 6455 5.5).
        """
        self.sendFrame(Opcode.PING, checkPingPayload(payload))

    def sendPong(self, payload: bytes = b"") -> None:
        """
        Send an unsolicited pong (the resource's C{receivedPong} gets it).

        @raise TypeError: C{payload} is not bytes-like.
        @raise ValueError: it is over 125 bytes (RFC 6455 5.5).
        """
        self.sendFrame(Opcode.PONG, checkPingPayload(payload))

    # -- reading ---------------------------------------------------------

    @property
    def reading(self) -> Reading:
        """
        How this client reads what the server writes: C{True}, everything,
        whenever it is looked at; C{False}, nothing (until L{readBytes});
        an C{int} N, N bytes at each L{step} and each C{advance}.  Settable.

        @since: 0.2.0
        """
        return self._reading

    @reading.setter
    def reading(self, mode: Reading) -> None:
        self._reading = checkReading(mode)
        self._pump()

    def stopReading(self) -> None:
        """
        Read nothing more until told to, as a stalled peer: the server's
        buffer for this client grows.

        @since: 0.2.0
        """
        self.reading = False

    def resumeReading(self) -> None:
        """
        Read everything, now and from now on.

        @since: 0.2.0
        """
        self.reading = True

    def readBytes(self, size: int) -> int:
        """
        Read up to C{size} of the bytes the server has buffered, now,
        whatever L{reading} says; then let the server react.

        @return: how many bytes were read.
        @since: 0.2.0
        """
        return self._pump(size)

    def step(self) -> int:
        """
        One read as L{reading} says (everything, nothing, or N bytes), then
        let the server react: what L{InMemoryServer.advance} does for each
        client after moving the clock.

        @return: how many bytes were read.
        @since: 0.2.0
        """
        mode = self._reading
        return self._pump(mode if mode is not True else None)

    @property
    def serverReading(self) -> bool:
        """
        Whether the server reads this client: False while it has paused
        reading (a pending callback with events queued past
        C{maxQueuedBytes}, a full write buffer) and once the connection is
        closing or gone.

        @since: 0.2.0
        """
        self._pump()
        return self.transport.reading

    @property
    def bufferedAtServer(self) -> int:
        """
        Bytes the server has written that this client has not read: what
        the server's C{client.bufferedAmount} reports.

        @since: 0.2.0
        """
        self._pump()
        return self.transport.bufferedAmount()

    # -- receiving -------------------------------------------------------

    def readMessages(self) -> list[str | bytes]:
        """
        The messages the server sent since the last call, oldest first:
        C{str} for text, C{bytes} for binary.  Only what this client has
        read counts (see L{reading}).
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
        The code of the server's close frame, or C{None} before one was
        read (1005 for a close frame without a code).
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
