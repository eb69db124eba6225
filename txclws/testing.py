# -*- test-case-name: tests.test_testing -*-
"""
Helpers for testing WebSocket resources without sockets.

What C{twisted.internet.testing} gives for protocols, for resources: an
L{InMemoryServer} serves resources over L{InMemoryTransport}s with a
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

Slow, silent and vanishing peers
================================

Each connection's L{InMemoryTransport} behaves as a TCP socket does for
the server: what the server writes waits in a buffer until the client
reads it; past 64 KiB (Twisted's C{FileDescriptor.bufferSize}) the server
is told to pause, and once the client has read everything it is told to
resume, so C{client.bufferedAmount}, C{client.drained()} and the factory's
slow-client policy behave as they do on a real socket.  The kernel's own
socket buffers are not modelled: the client reads straight from the
server's buffer.

By default a client reads everything at once (C{reading=True}).  Made with
C{reading=False} it reads nothing until told to (L{InMemoryClient.readBytes},
L{InMemoryClient.resumeReading}); made with C{reading=N} it reads N bytes
at each L{InMemoryClient.step} and each C{advance()}.  The other way, when
the server stops reading a client (it does while a callback is pending
with the client's next events queued past the factory's C{maxQueuedBytes},
and while its own writes wait),
L{InMemoryClient.serverReading} is False and whatever the client sends
meanwhile waits, to be delivered when the server reads again.

A resource that paces its writes with C{drained()}, and a client that
reads 16 KiB at a time::

    class Download(WebSocketResource):
        def receivedText(self, client, message):
            return ensureDeferred(self.send(client))

        async def send(self, client):
            for _ in range(64):
                client.writeBinary(b"x" * 16384)
                await client.drained()

    def test_paced():
        client = connect(Download(), "/", reading=16384)
        client.sendText("go")
        received = []
        for _ in range(200):
            # the high-water mark, and the write that passed it
            assert client.bufferedAtServer <= 65536 + 16388
            client.step()
            received += client.readMessages()
        assert len(received) == 64

The slow-client policy: broadcasts to a client that does not read, over
C{maxBuffer} for C{slowClientTimeout} seconds, close it with 1008; the
close frame waits behind the messages until the client reads again::

    def test_slowClient():
        server = InMemoryServer(maxBuffer=100_000, slowClientTimeout=10)
        server.register("/feed", WebSocketResource())
        client = server.connect("/feed", reading=False)
        for _ in range(3):
            writeToClientsText([client.protocol], "x" * 60_000)
        server.advance(9.5)
        assert client.bufferedAtServer == 3 * 60_004  # no close frame yet
        server.advance(0.5)
        client.resumeReading()
        assert client.readMessages() == ["x" * 60_000] * 3
        assert client.closeCode == 1008 and client.disconnected

A client can also go away at any moment, even while the server is not
reading it: L{InMemoryClient.vanish} drops the connection as a reset does
(the server's protocol gets C{connectionLost} with C{ConnectionLost} at
once), L{InMemoryClient.shutdownWrite} half-closes it (the server reads
the end of the stream after whatever came before it).

@since: 0.1.0
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IHalfCloseableProtocol,
    IProducer,
    IProtocol,
    IProtocolFactory,
    IPullProducer,
    IPushProducer,
    ITransport,
)
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws._core.arguments import (
    checkBinaryMessage,
    checkCloseArguments,
    checkFrameSize,
    checkPingPayload,
    checkTextMessage,
)
from txclws._core.close import parseClosePayload, serializeClosePayload
from txclws._core.frames import Opcode, serializeFrame
from txclws._core.handshake import acceptKey
from txclws._core.origin import OriginCheck, anyOrigin
from txclws._factory import ResourceRegistry, WebSocketFactory
from txclws._resource import IWebSocketResource
from txclws._session.stream import IBufferedTransport

__all__ = [
    "HandshakeRefused",
    "InMemoryClient",
    "InMemoryServer",
    "InMemoryTransport",
    "ServerProtocolError",
    "connect",
]

#: The masking key of every frame an in-memory client sends (the one in
#: RFC 6455 section 5.7's examples), so tests are deterministic.
MASK = b"\x37\xfa\x21\x3d"

#: The C{Sec-WebSocket-Key} an in-memory client sends (RFC 6455 section 1.3).
KEY = base64.b64encode(b"the sample nonce").decode("ascii")

#: The most a client takes from its transport in one read, as a socket's
#: C{recv} would: it keeps the decoding of a large backlog linear.
_READ_SIZE = 65536

#: How a client reads: C{True} everything at once, C{False} nothing, an
#: C{int} that many bytes at each step.
Reading = bool | int


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
        (C{origin}, C{headers}, C{subprotocols}, C{requireAccept},
        C{reading}, ...); any other is a limit passed to
        L{WebSocketFactory}, e.g. C{maxMessageSize=1024}.
    @return: the connected client.
    @raise HandshakeRefused: the handshake was refused (unless
        C{requireAccept=False}).
    """
    connectNames = {
        "origin",
        "headers",
        "subprotocols",
        "requireAccept",
        "autoClose",
        "reading",
    }
    connectOptions = {k: v for k, v in options.items() if k in connectNames}
    limits = {k: v for k, v in options.items() if k not in connectNames}
    server = InMemoryServer(clock=clock, **limits)
    server.register(target.partition("?")[0], resource, originCheck)
    return server.connect(target, **connectOptions)


@implementer(ITransport, IConsumer, IPushProducer, IBufferedTransport)
class InMemoryTransport:
    """
    The server's side of one in-memory connection: a transport that keeps
    what the server writes until the client reads it, with the flow control
    of Twisted's TCP transport (C{FileDescriptor}).

    Its producer, registered with C{registerProducer(producer, True)}, is
    paused whenever a write leaves more than L{bufferSize} bytes buffered,
    and resumed once the client has read them all.  C{loseConnection} waits
    for the buffer to drain (and, if the producer is paused then, resumes
    it instead, as Twisted does: unregister it first);
    C{loseWriteConnection} half-closes once it has drained;
    C{abortConnection} drops the connection, buffer and all.  The server's
    C{pauseProducing}/C{resumeProducing} stop and start reading: bytes the
    client sends meanwhile wait, in order, behind any end of stream.

    Like a reactor, it calls its protocol only from the client's side
    (L{InMemoryClient}'s reads, sends and steps), never from inside the
    protocol's own calls: a resumed read, a drained buffer or an abort
    takes effect at the client's next step.

    @ivar protocol: the protocol this transport delivers to.
    @ivar producer: the registered producer, or C{None}.
    @ivar streamingProducer: whether it is a push producer.
    @ivar reading: whether the server reads: False once it paused reading
        (C{pauseProducing}), or lost or is closing the connection.
    @ivar connected: whether the connection is up (also while closing).
    @ivar disconnecting: C{loseConnection} was called.
    @ivar disconnected: the connection is gone; the protocol was told.
    @ivar bufferSize: the high-water mark of the write buffer, in bytes.

    @since: 0.2.0
    """

    bufferSize = 65536

    def __init__(
        self, protocol: IProtocol, hostAddress: IAddress, peerAddress: IAddress
    ) -> None:
        """
        @param protocol: the protocol to deliver the client's bytes to.
        @param hostAddress: what L{getHost} answers.
        @param peerAddress: what L{getPeer} answers.
        """
        self.protocol = protocol
        self.producer: IProducer | None = None
        self.streamingProducer = False
        self.reading = True
        self.connected = True
        self.disconnecting = False
        self.disconnected = False
        self._host = hostAddress
        self._peer = peerAddress
        self._outgoing = bytearray()
        self._incoming = bytearray()
        self._producerPaused = False
        #: Like FileDescriptor.startWriting: the buffer needs attention.
        self._writing = False
        self._writeClosing = False
        self._writeShut = False
        self._aborting = False
        self._peerEOF = False

    # -- ITransport, as the server sees it -----------------------------

    def write(self, data: bytes) -> None:
        """
        Buffer C{data} for the client; past L{bufferSize}, pause the
        streaming producer (every such write, as Twisted does).

        @raise TypeError: C{data} is not C{bytes}.
        """
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if not self.connected or self._writeShut or self._aborting or not data:
            return
        self._outgoing += data
        self._writing = True
        producer = self.producer
        if producer is not None and self.streamingProducer:
            if len(self._outgoing) > self.bufferSize:
                self._producerPaused = True
                cast(IPushProducer, producer).pauseProducing()

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """
        Write each of C{data}, in order.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close once the client has read everything buffered; stop reading.
        """
        if self.connected and not self.disconnecting:
            self.disconnecting = True
            self.reading = False
            self._writing = True

    def loseWriteConnection(self) -> None:
        """
        Half-close: once the buffer has drained, the client reads the end
        of the stream; reading goes on.
        """
        if self.connected:
            self._writeClosing = True
            self._writing = True

    def abortConnection(self) -> None:
        """
        Drop the connection now, discarding the buffer; the protocol gets
        C{connectionLost} with C{ConnectionAborted} at the client's next
        step, as Twisted's C{callLater(0, ...)} does.
        """
        if self.disconnected or self._aborting:
            return
        self._aborting = True
        self.reading = False
        self._writing = False
        self._outgoing.clear()

    def getPeer(self) -> IAddress:
        """
        The client's address.
        """
        return self._peer

    def getHost(self) -> IAddress:
        """
        The server's address.
        """
        return self._host

    def bufferedAmount(self) -> int:
        """
        Bytes written and not yet read by the client
        (L{IBufferedTransport}).
        """
        return len(self._outgoing)

    def value(self) -> bytes:
        """
        The bytes written and not yet read by the client, without reading
        them.
        """
        return bytes(self._outgoing)

    # -- IConsumer -------------------------------------------------------

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """
        Register C{producer} to be paused and resumed as the buffer fills
        and drains.

        @raise RuntimeError: another producer is registered.
        """
        if self.producer is not None:
            raise RuntimeError(f"{self.producer!r} was never unregistered")
        if self.disconnected:
            producer.stopProducing()
            return
        self.producer = producer
        self.streamingProducer = streaming
        if not streaming:
            cast(IPullProducer, producer).resumeProducing()

    def unregisterProducer(self) -> None:
        """
        Forget the producer; a pending C{loseConnection} may now complete.
        """
        self.producer = None
        self._producerPaused = False
        if self.connected and self.disconnecting:
            self._writing = True

    # -- IPushProducer: the server stops and starts reading ------------

    def pauseProducing(self) -> None:
        """
        Stop reading the client: what it sends waits.
        """
        self.reading = False

    def resumeProducing(self) -> None:
        """
        Read the client again, unless the connection is closing.
        """
        if self.connected and not self.disconnecting and not self._aborting:
            self.reading = True

    def stopProducing(self) -> None:
        """
        As Twisted's transports: close the connection.
        """
        self.loseConnection()

    # -- the client's side ----------------------------------------------

    def _peerRead(self, size: int) -> bytes:
        """
        The client reads up to C{size} of the buffered bytes.
        """
        if size <= 0 or not self.connected or self._aborting:
            return b""
        data = bytes(self._outgoing[:size])
        del self._outgoing[:size]
        return data

    @property
    def _eofToPeer(self) -> bool:
        """
        Whether the client has read the end of the server's stream.
        """
        return self._writeShut and not self._outgoing

    def _peerSend(self, data: bytes) -> None:
        """
        The client sends C{data}: it waits until the server reads.
        """
        if self.connected and not self._peerEOF and not self.disconnecting:
            self._incoming += data

    def _peerShutdownWrite(self) -> None:
        """
        The client half-closes: the server reads the end of the stream
        after what came before it.
        """
        self._peerEOF = True

    def _peerReset(self) -> None:
        """
        The connection is reset by the client: lost at once, whether the
        server is reading or not.
        """
        if not self.disconnected:
            self._lose(ConnectionLost("the client vanished"))

    def _serve(self) -> bool:
        """
        One turn of the reactor for this connection, the client's reading
        apart: a drained buffer, an abort, bytes or an end of stream from
        the client.

        @return: whether anything happened.
        """
        if self.disconnected:
            return False
        if self._aborting:
            self._lose(ConnectionAborted("aborted by the server"))
        elif self._writing and not self._outgoing:
            self._writing = False
            self._bufferEmptied()
        elif self.reading and self._incoming:
            data = bytes(self._incoming)
            self._incoming.clear()
            self.protocol.dataReceived(data)
        elif self.reading and self._peerEOF:
            self._endOfStream()
        else:
            return False
        return True

    def _bufferEmptied(self) -> None:
        """
        What Twisted's C{FileDescriptor.doWrite} does once its buffer is
        empty: resume a paused producer, or else finish a pending close.
        """
        producer = self.producer
        if producer is not None and (
            not self.streamingProducer or self._producerPaused
        ):
            self._producerPaused = False
            # Push and pull producers alike are resumed when it drains.
            cast(IPushProducer, producer).resumeProducing()
        elif self.disconnecting:
            self._lose(ConnectionDone("the server closed the connection"))
        elif self._writeClosing and not self._writeShut:
            self._writeShut = True
            halfCloseable = IHalfCloseableProtocol(self.protocol, None)
            if halfCloseable is not None:
                halfCloseable.writeConnectionLost()

    def _endOfStream(self) -> None:
        """
        The server reads the client's end of stream: a half-closeable
        protocol is told so; any other loses the connection, as Twisted's
        TCP transport does.
        """
        self._peerEOF = False
        self.reading = False
        halfCloseable = IHalfCloseableProtocol(self.protocol, None)
        if halfCloseable is not None:
            halfCloseable.readConnectionLost()
        else:
            self._lose(ConnectionDone("the client closed the connection"))

    def _lose(self, reason: Exception) -> None:
        self.disconnected = True
        self.connected = False
        self.reading = False
        self._writing = False
        self._outgoing.clear()
        self._incoming.clear()
        producer, self.producer = self.producer, None
        if producer is not None:
            producer.stopProducing()
        self.protocol.connectionLost(Failure(reason))


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


class InMemoryClient:
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
        self.server = server
        self.protocol = protocol
        self.transport = transport
        self.status = 0
        self.responseHeaders: dict[str, str] = {}
        self.responseBody = b""
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self._autoClose = autoClose
        self._reading: Reading = True
        self._afterHandshake = _checkReading(reading)
        self._messages: list[str | bytes] = []
        self._reader = _ServerFrameReader()
        self._head: bytearray | None = bytearray()
        self._closeSent = False
        self._closeReceived: tuple[int, str] | None = None
        self._lost = False
        self._sawEOF = False
        self._writeShut = False
        self._pumping = False

    # -- sending ---------------------------------------------------------

    def sendText(self, message: str | bytes, frameSize: int | None = None) -> None:
        """
        Send a text message, in frames of C{frameSize} bytes if given.

        Its arguments are checked as a server-side client's
        C{writeText} checks them (L{txclws._core.arguments}), so a test
        that misuses the API fails the way the application would; to send
        what the RFC forbids (bytes that are not UTF-8, to test a server's
        1007), use L{sendFrame}.

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
        self._reading = _checkReading(mode)
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
        self.reading = self._afterHandshake

    def _pump(self, allowance: int | None = 0) -> int:
        """
        Let the connection catch up: the server reads what we sent, we read
        what it wrote (at most C{allowance} bytes more than L{reading}
        allows: C{None}, no limit), until neither has anything to do.

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
                size = _READ_SIZE if allowance is None else min(allowance, _READ_SIZE)
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
                code = self._closeReceived[0]
                self.sendClose(None if code == 1005 else code)


def _checkReading(mode: Reading) -> Reading:
    """
    @return: C{mode}, a valid L{InMemoryClient.reading}.
    @raise ValueError: an C{int} below 1.
    @raise TypeError: neither a C{bool} nor an C{int}.
    """
    if isinstance(mode, bool):
        return mode
    if not isinstance(mode, int):
        raise TypeError(f"reading must be a bool or an int, not {mode!r}")
    if mode < 1:
        raise ValueError(f"reading must be at least 1 byte, not {mode}")
    return mode


class _ServerFrameReader:
    """
    Reassembles the server's (unmasked) frames into messages and control
    frames, checking what a client must check (RFC 6455 section 5).

    The unparsed bytes live in a C{bytearray} consumed from the front, so
    reading a large backlog in socket-sized chunks stays linear.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
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
        payload = bytes(buffer[offset : offset + length])
        del buffer[: offset + length]
        return bool(first & 0x80), first & 0x0F, payload

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
