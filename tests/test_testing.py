"""
The demo's resources tested with L{txclws.testing} alone, as a user tests
theirs, and the helpers' own behaviour.

These are trial test cases, so both runners take them:

    python -m twisted.trial tests.test_testing
    python -m pytest tests/test_testing.py
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import (
    IConsumer,
    IHalfCloseableProtocol,
    IPushProducer,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import directlyProvides
from zope.interface.verify import verifyObject

from txclws import (
    REJECT,
    IWebSocketClient,
    WebSocketFactory,
    WebSocketResource,
    anyOrigin,
    originExact,
    writeToClientsText,
)
from txclws._session.stream import IBufferedTransport, bufferedBytes
from txclws.demo import ChatResource, EchoResource
from txclws.testing import (
    HandshakeRefused,
    InMemoryClient,
    InMemoryServer,
    ServerProtocolError,
    connect,
)
from txclws.web import WebSocketUpgradeResource


class EchoResourceTests(SynchronousTestCase):
    """
    L{EchoResource}, through an in-memory client.
    """

    def test_text(self) -> None:
        """
        A text message comes back as the same text.
        """
        client = connect(EchoResource(), "/echo")
        client.sendText("héllo, wörld")
        self.assertEqual(client.readMessages(), ["héllo, wörld"])

    def test_binary(self) -> None:
        """
        A binary message comes back as the same bytes.
        """
        client = connect(EchoResource(), "/echo")
        client.sendBinary(bytes(range(256)))
        self.assertEqual(client.readMessage(), bytes(range(256)))

    def test_fragmented(self) -> None:
        """
        A message sent in many frames comes back whole.
        """
        client = connect(EchoResource(), "/echo")
        client.sendText("a" * 1000, frameSize=7)
        self.assertEqual(client.readMessages(), ["a" * 1000])

    def test_order(self) -> None:
        """
        Messages come back in the order sent.
        """
        client = connect(EchoResource(), "/echo")
        for n in range(5):
            client.sendText(str(n))
        self.assertEqual(client.readMessages(), ["0", "1", "2", "3", "4"])

    def test_close(self) -> None:
        """
        Our close frame is answered with the same code, and the server then
        closes the connection.
        """
        client = connect(EchoResource(), "/echo")
        client.sendClose(1000, "bye")
        self.assertEqual(client.closeCode, 1000)
        self.assertTrue(client.disconnected)

    def test_tooBig(self) -> None:
        """
        Over the server's C{maxMessageSize} the client is closed with 1009.
        """
        client = connect(EchoResource(), "/echo", maxMessageSize=10)
        client.sendText("x" * 11)
        self.assertEqual(client.readMessages(), [])
        self.assertEqual(client.closeCode, 1009)


def events(client: InMemoryClient) -> list[dict[str, Any]]:
    """
    The chat events C{client} received since the last read, decoded.
    """
    return [json.loads(message) for message in client.readMessages()]


class ChatResourceTests(SynchronousTestCase):
    """
    L{ChatResource}, with several in-memory clients in one room.
    """

    def setUp(self) -> None:
        self.server = InMemoryServer()
        self.chat = ChatResource()
        self.server.register("/chat", self.chat)

    def join(self, name: str) -> InMemoryClient:
        """
        Connect a member called C{name}.
        """
        return self.server.connect(f"/chat?name={name}")

    def test_welcomeAndJoin(self) -> None:
        """
        A newcomer is told its name and who is there; everyone, newcomer
        included, gets the join notice with the head count.
        """
        ann = self.join("ann")
        self.assertEqual(
            events(ann),
            [
                {"type": "welcome", "name": "ann", "members": []},
                {"type": "join", "name": "ann", "count": 1},
            ],
        )
        bob = self.join("bob")
        self.assertEqual(
            events(bob),
            [
                {"type": "welcome", "name": "bob", "members": ["ann"]},
                {"type": "join", "name": "bob", "count": 2},
            ],
        )
        self.assertEqual(events(ann), [{"type": "join", "name": "bob", "count": 2}])

    def test_messageToEveryone(self) -> None:
        """
        A message goes to every member, the sender included, with its name
        and its id in the room's history.
        """
        members = [self.join(name) for name in ("ann", "bob", "cy")]
        for member in members:
            events(member)
        members[1].sendText("hello all")
        (first,) = events(members[0])
        expected = {"type": "message", "name": "bob", "text": "hello all"}
        self.assertEqual(first, {**expected, "id": first["id"]})
        for member in members[1:]:
            self.assertEqual(events(member), [first])

    def test_leave(self) -> None:
        """
        When a member closes, or just vanishes, the others are told.
        """
        ann, bob, cy = (self.join(name) for name in ("ann", "bob", "cy"))
        bob.sendClose()
        cy.disconnect()
        leaves = [
            {"type": "leave", "name": "bob", "count": 2},
            {"type": "leave", "name": "cy", "count": 1},
        ]
        self.assertEqual(events(ann)[-2:], leaves)
        self.assertEqual(list(self.chat.members.values()), ["ann"])

    def test_names(self) -> None:
        """
        A client without a name is a numbered guest; a taken name gets a
        suffix; a long one is cut.
        """
        first, second = self.server.connect("/chat"), self.server.connect("/chat")
        self.join("ann")
        self.join("ann")
        self.join("x" * 100)
        self.assertEqual(
            list(self.chat.members.values()),
            ["guest-1", "guest-2", "ann", "ann-2", "x" * 24],
        )
        self.assertEqual(events(first)[0]["name"], "guest-1")
        self.assertEqual(events(second)[0]["members"], ["guest-1"])

    def test_binaryRefused(self) -> None:
        """
        The room speaks text: a binary message closes the sender with 1003.
        """
        ann = self.join("ann")
        ann.sendBinary(b"\x00")
        self.assertEqual(ann.closeCode, 1003)
        self.assertTrue(ann.disconnected)


class Slow(WebSocketResource):
    """
    Answers each text message after a delay on the server's clock.
    """

    def __init__(self, server: InMemoryServer) -> None:
        self.clock = server.clock

    def receivedText(self, client: IWebSocketClient, message: str) -> Deferred[None]:
        return deferLater(self.clock, 5, client.writeText, message.upper())


class Recorder(WebSocketResource):
    """
    Records pongs, and pings the client when told to by a message.
    """

    def __init__(self) -> None:
        self.pongs: list[bytes] = []
        self.gone: list[IWebSocketClient] = []

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        client.ping(message.encode())

    def receivedPong(self, client: IWebSocketClient, payload: bytes) -> None:
        self.pongs.append(payload)

    def clientDisconnected(self, client: IWebSocketClient) -> None:
        self.gone.append(client)


class HelperTests(SynchronousTestCase):
    """
    What L{txclws.testing} itself promises.
    """

    def test_clock(self) -> None:
        """
        A resource's Deferred that fires on the server's clock is waited
        for; the client's next message waits behind it.
        """
        server = InMemoryServer()
        server.register("/slow", Slow(server))
        client = server.connect("/slow")
        client.sendText("a")
        client.sendText("b")
        self.assertEqual(client.readMessages(), [])
        server.advance(5)
        self.assertEqual(client.readMessages(), ["A"])
        client.advance(5)
        self.assertEqual(client.readMessages(), ["B"])

    def test_pingPong(self) -> None:
        """
        Our ping is answered with a pong; the server's ping is answered by
        the client and the pong reaches the resource; an unsolicited pong
        from the test reaches it too.
        """
        recorder = Recorder()
        client = connect(recorder, "/")
        client.sendPing(b"are you there")
        self.assertEqual(client.pongs, [b"are you there"])
        client.sendText("ping me")
        self.assertEqual(client.pings, [b"ping me"])
        client.sendPong(b"unasked")
        self.assertEqual(recorder.pongs, [b"ping me", b"unasked"])

    def test_serverCloseTimeout(self) -> None:
        """
        With C{autoClose=False} the client does not answer the server's
        close frame, and the server drops it after C{closeTimeout}.
        """
        recorder = Recorder()
        client = connect(recorder, "/", autoClose=False, closeTimeout=3)
        client.protocol.close(4000, "go")  # type: ignore[attr-defined]
        self.assertEqual((client.closeCode, client.closeReason), (4000, "go"))
        self.assertFalse(client.disconnected)
        client.advance(3)
        self.assertTrue(client.disconnected)
        self.assertEqual(recorder.gone, [client.protocol])

    def test_refused(self) -> None:
        """
        A refused handshake raises L{HandshakeRefused}, or, on request, is
        there to look at.
        """
        policy = originExact("https://app.example")
        with self.assertRaises(HandshakeRefused) as caught:
            connect(EchoResource(), "/", originCheck=policy, origin="https://x")
        self.assertEqual(caught.exception.status, 403)
        client = connect(EchoResource(), "/", originCheck=policy, requireAccept=False)
        self.assertEqual((client.status, client.disconnected), (403, True))
        accepted = connect(
            EchoResource(), "/", originCheck=policy, origin="https://app.example"
        )
        self.assertEqual(accepted.status, 101)

    def test_rejectedByResource(self) -> None:
        """
        A resource that returns C{REJECT} closes the client with 1008.
        """

        class Picky(WebSocketResource):
            def clientConnected(self, client: IWebSocketClient) -> object:
                return REJECT

        client = connect(Picky(), "/")
        self.assertEqual(client.closeCode, 1008)
        self.assertTrue(client.disconnected)

    def test_clientDetails(self) -> None:
        """
        The resource sees the target, headers, subprotocol and peer the
        test chose.
        """

        class Proto(WebSocketResource):
            def selectSubprotocol(self, client: IWebSocketClient, offered: Any) -> str:
                return "chat.v2"

        client = connect(
            Proto(),
            "/room?x=1",
            headers=[("X-Test", "yes")],
            subprotocols=["chat.v1", "chat.v2"],
        )
        seen = client.protocol
        self.assertEqual((seen.resourceName, seen.queryString), ("/room", "x=1"))  # type: ignore[attr-defined]
        self.assertEqual(seen.connectionHeaders["x-test"], "yes")  # type: ignore[attr-defined]
        self.assertEqual(client.responseHeaders["sec-websocket-protocol"], "chat.v2")
        self.assertEqual(seen.host, "127.0.0.1")  # type: ignore[attr-defined]

    def test_serverFramesChecked(self) -> None:
        """
        Bytes from the server that break RFC 6455 are reported, not
        silently decoded.
        """
        client = connect(EchoResource(), "/")
        client.transport.write(b"\x81\x85abcd12345")  # a masked text frame
        with self.assertRaises(ServerProtocolError):
            client.readMessages()


# -- flow control, slow and vanishing peers (issue 12, defect 9) ------------

#: A server frame carrying 1 MiB: 2 header bytes, an 8-byte length (RFC
#: 6455 5.2: payloads over 65535 bytes), the payload.
MIB_FRAME = 2 + 8 + (1 << 20)

#: A server frame carrying 60,000 bytes: 2 header bytes, a 2-byte length.
FEED_FRAME = 2 + 2 + 60_000


class Held(WebSocketResource):
    """
    Records each text message and holds its dispatch on a Deferred the
    test fires; records disconnections.
    """

    def __init__(self) -> None:
        self.received: list[str] = []
        self.pending: list[Deferred[None]] = []
        self.gone: list[IWebSocketClient] = []

    def receivedText(self, client: IWebSocketClient, message: str) -> Deferred[None]:
        self.received.append(message)
        self.pending.append(Deferred())
        return self.pending[-1]

    def clientDisconnected(self, client: IWebSocketClient) -> None:
        self.gone.append(client)


class Download(WebSocketResource):
    """
    The module docstring's example: sends 64 messages of 16 KiB, waiting
    for C{drained()} after each.
    """

    def receivedText(self, client: IWebSocketClient, message: str) -> Deferred[None]:
        return ensureDeferred(self.send(client))

    async def send(self, client: IWebSocketClient) -> None:
        for _ in range(64):
            client.writeBinary(b"x" * 16384)
            await client.drained()


def heldServer(**limits: Any) -> tuple[InMemoryServer, WebSocketFactory, Held]:
    """
    A server with a L{Held} resource at C{/}, and its factory, made with
    C{limits}.
    """
    server = InMemoryServer(**limits)
    held = Held()
    server.register("/", held)
    assert isinstance(server.factory, WebSocketFactory)
    return server, server.factory, held


class BackPressureTests(SynchronousTestCase):
    """
    What the server writes waits until the client reads it, with Twisted's
    flow control: C{bufferedAmount}, C{drained()} and the slow-client
    policy see a slow peer as they would over TCP.
    """

    def test_nonReadingClient(self) -> None:
        """
        128 MiB written to a client that does not read stay buffered, and
        C{bufferedAmount} counts each byte written; C{drained()} waits
        until the client has read everything, and then fires.
        """
        client = connect(WebSocketResource(), "/", reading=False)
        sender: Any = client.protocol
        chunk = b"\x00" * (1 << 20)
        for n in range(1, 129):
            sender.writeBinary(chunk)
            self.assertEqual(sender.bufferedAmount, n * MIB_FRAME)
        self.assertEqual(client.bufferedAtServer, 128 * MIB_FRAME)
        self.assertFalse(client.serverReading)  # paused for its writes
        drained = sender.drained()
        self.assertNoResult(drained)
        self.assertEqual(client.readBytes(64 * MIB_FRAME), 64 * MIB_FRAME)
        self.assertEqual(len(client.readMessages()), 64)
        self.assertEqual(sender.bufferedAmount, 64 * MIB_FRAME)
        self.assertNoResult(drained)
        client.resumeReading()
        self.assertIsNone(self.successResultOf(drained))
        self.assertEqual(len(client.readMessages()), 64)
        self.assertEqual((sender.bufferedAmount, client.serverReading), (0, True))

    def test_drainedPacesWrites(self) -> None:
        """
        The module docstring's example: a resource that waits for
        C{drained()} keeps at most a high-water mark's worth (64 KiB, and
        the write that passed it) buffered for a client that reads 16 KiB
        per step, and sends everything in as many steps as that takes.
        """
        client = connect(Download(), "/", reading=16384)
        client.sendText("go")
        received: list[str | bytes] = []
        buffered = []
        steps = 0
        while len(received) < 64 and steps < 200:
            buffered.append(client.bufferedAtServer)
            self.assertLessEqual(client.step(), 16384)
            received += client.readMessages()
            steps += 1
        self.assertEqual(received, [b"x" * 16384] * 64)
        # 4 frames of 16388 bytes pass 65536; 64 of them take 64 * 16388
        # bytes, read 16384 at a time.
        self.assertEqual(max(buffered), 4 * 16388)
        self.assertEqual(steps, -(-64 * 16388 // 16384))

    def test_slowClientPolicy(self) -> None:
        """
        The module docstring's example: broadcasts to a client that does
        not read, over C{maxBuffer}, close it with 1008 once
        C{slowClientTimeout} has passed, not before; the close frame waits
        behind the messages, and the client reads it once it reads again.
        """
        server = InMemoryServer(maxBuffer=100_000, slowClientTimeout=10)
        server.register("/feed", WebSocketResource())
        client = server.connect("/feed", reading=False)
        for _ in range(3):
            writeToClientsText([client.protocol], "x" * 60_000)  # type: ignore[list-item]
        self.assertEqual(client.bufferedAtServer, 3 * FEED_FRAME)
        server.advance(9.5)
        self.assertEqual(client.bufferedAtServer, 3 * FEED_FRAME)
        server.advance(0.5)
        # 0x88: FIN, close; 0x0a: unmasked, 10 bytes; 0x03f0: 1008.
        self.assertEqual(client.transport.value()[-12:], b"\x88\x0a\x03\xf0too slow")
        client.resumeReading()
        self.assertEqual(client.readMessages(), ["x" * 60_000] * 3)
        self.assertEqual((client.closeCode, client.closeReason), (1008, "too slow"))
        self.assertTrue(client.disconnected)

    def test_closeWaitsForReader(self) -> None:
        """
        The server's C{loseConnection} after the close handshake waits
        until the client has read the close frame; the connection is gone
        once it has.
        """
        client = connect(WebSocketResource(), "/", reading=False)
        client.sendClose(1000)
        self.assertFalse(client.disconnected)
        self.assertEqual(client.bufferedAtServer, 4)  # 88 02 03e8
        self.assertEqual(client.readBytes(100), 4)
        self.assertEqual(client.closeCode, 1000)
        self.assertTrue(client.disconnected)

    def test_abortDropsAtOnce(self) -> None:
        """
        A client that never reads the server's close frame is aborted when
        C{closeTimeout} ends: the connection goes with the frame unread.
        """
        recorder = Recorder()
        client = connect(recorder, "/", reading=False, closeTimeout=3)
        client.protocol.close(4000, "go")  # type: ignore[attr-defined]
        client.advance(2.5)
        self.assertEqual((client.disconnected, client.bufferedAtServer), (False, 6))
        client.advance(0.5)
        self.assertEqual((client.disconnected, client.bufferedAtServer), (True, 0))
        self.assertIsNone(client.closeCode)
        self.assertEqual(recorder.gone, [client.protocol])


class ReadPausingTests(SynchronousTestCase):
    """
    While a callback is pending the server reads on, queueing the client's
    events, until they count more than C{maxQueuedBytes} (each its payload
    plus 64); then it stops reading, and what the client sends waits, as in
    a socket.  A client that leaves is seen at once while the server reads,
    and the client can vanish even while it does not.
    """

    #: The bound of these tests: "second" and "third" (70 and 69 bytes
    #: counted) stay under it, "fourth" (70 more: 209) passes it.
    BOUND = 200

    def test_queuedWhilePaused(self) -> None:
        """
        With a callback pending, the server reads and queues the client's
        next messages until they count more than C{maxQueuedBytes}, and
        stops reading then: a message sent meanwhile waits in the
        transport.  Each finished callback dequeues one; once the queue is
        back under the bound the server reads again (the waiting message
        is queued, past the bound again), and all are delivered in order.
        """
        server, _, held = heldServer(maxQueuedBytes=self.BOUND)
        client = server.connect("/")
        self.assertTrue(client.serverReading)
        client.sendText("first")  # delivered: its callback is pending
        client.sendText("second")  # queued: 64 + 6 = 70
        client.sendText("third")  # queued: 139
        self.assertTrue(client.serverReading)  # under the bound: reads on
        client.sendText("fourth")  # queued: 209, past the bound
        self.assertFalse(client.serverReading)
        client.sendText("fifth")  # waits in the transport
        self.assertEqual(held.received, ["first"])
        held.pending[0].callback(None)
        # "second" dequeued (139 left): reading resumed, "fifth" read and
        # queued (208), and reading paused again.
        self.assertEqual(held.received, ["first", "second"])
        self.assertFalse(client.serverReading)
        held.pending[1].callback(None)  # "third" out: 139, under the bound
        self.assertTrue(client.serverReading)
        for index in range(2, 5):
            held.pending[index].callback(None)
        self.assertEqual(held.received, ["first", "second", "third", "fourth", "fifth"])
        self.assertTrue(client.serverReading)

    def test_vanishWhilePending(self) -> None:
        """
        A client that vanishes while its callback is pending and its next
        messages wait (whether or not the server still reads it) is gone at
        once: the factory forgets it then; its resource is told once the
        callback's Deferred fires, once; what it sent after the callback's
        message is never delivered.
        """
        for messages, reading in (
            (["second"], True),
            (["second", "third", "fourth"], False),
        ):
            server, factory, held = heldServer(maxQueuedBytes=self.BOUND)
            client = server.connect("/")
            client.sendText("first")
            for message in messages:
                client.sendText(message)
            self.assertEqual(client.serverReading, reading)
            client.vanish()
            self.assertEqual(factory.clients, set())
            self.assertTrue(client.disconnected)
            self.assertEqual(held.gone, [])
            held.pending[0].callback(None)
            client.advance(1)
            self.assertEqual(held.received, ["first"])
            self.assertEqual(held.gone, [client.protocol])

    def test_shutdownWriteWhilePending(self) -> None:
        """
        Issue 11, defect 3: a client's half-close while its callback is
        pending, with its queued events under the bound, is read at once:
        the connection is lost (the server does not half-close) and the
        factory forgets the client then, before the callback is done; the
        resource is told once it is, and the queued message is dropped.
        """
        server, factory, held = heldServer(maxQueuedBytes=self.BOUND)
        client = server.connect("/")
        client.sendText("first")
        client.sendText("second")
        client.shutdownWrite()
        self.assertTrue(client.disconnected)
        self.assertEqual(factory.clients, set())
        self.assertEqual(held.gone, [])
        held.pending[0].callback(None)
        self.assertEqual(held.received, ["first"])
        self.assertEqual(held.gone, [client.protocol])

    def test_shutdownWriteWhilePaused(self) -> None:
        """
        A client's half-close is read by the server after what the client
        sent before it: while the server is paused (its queue past the
        bound), not at all; once it reads again, the connection is lost and
        the resource told once the pending callback is done.
        """
        server, factory, held = heldServer(maxQueuedBytes=self.BOUND)
        client = server.connect("/")
        for message in ("first", "second", "third", "fourth"):
            client.sendText(message)
        self.assertFalse(client.serverReading)
        client.shutdownWrite()
        self.assertFalse(client.disconnected)
        self.assertEqual(factory.clients, {client.protocol})
        held.pending[0].callback(None)  # 139 queued: reading resumes
        self.assertTrue(client.disconnected)
        self.assertEqual(factory.clients, set())
        self.assertEqual(held.received, ["first", "second"])
        self.assertEqual(held.gone, [])
        held.pending[1].callback(None)
        self.assertEqual(held.gone, [client.protocol])


class HalfCloseable(Protocol):
    """
    A protocol that supports half-close, recording how it was told.
    """

    def __init__(self) -> None:
        self.events: list[str] = []

    def readConnectionLost(self) -> None:
        self.events.append("read")

    def writeConnectionLost(self) -> None:
        self.events.append("write")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.events.append(reason.type.__name__)


class Sink(Protocol):
    """
    A protocol that reads nothing, with its producer calls recorded.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class InMemoryTransportTests(SynchronousTestCase):
    """
    L{InMemoryTransport} keeps Twisted's transport contracts.
    """

    def connected(self, protocol: Protocol) -> InMemoryClient:
        """
        A client connected to C{protocol}, which does not speak WebSocket.
        """
        server = InMemoryServer(Factory.forProtocol(lambda: protocol))
        return server.connect("/", requireAccept=False, reading=False)

    def test_interfaces(self) -> None:
        """
        It provides the transport, consumer, push producer and
        buffered-transport interfaces, and L{bufferedBytes} asks it.
        """
        client = connect(WebSocketResource(), "/", reading=False)
        transport = client.transport
        for interface in (ITransport, IConsumer, IPushProducer, IBufferedTransport):
            self.assertTrue(verifyObject(interface, transport))
        client.protocol.writeText("hi")  # type: ignore[attr-defined]
        self.assertEqual(bufferedBytes(transport), 4)

    def test_producerPausedAndResumed(self) -> None:
        """
        Each write that leaves more than 64 KiB buffered pauses the
        streaming producer; it is resumed once the client has read all.
        """
        sink = Sink()
        client = self.connected(sink)
        transport = client.transport
        transport.registerProducer(sink, True)
        transport.write(b"a" * 65536)
        self.assertEqual(sink.calls, [])
        transport.write(b"b")
        transport.write(b"c")
        self.assertEqual(sink.calls, ["pause", "pause"])
        client.readBytes(65537)
        self.assertEqual(sink.calls, ["pause", "pause"])
        client.readBytes(1)
        self.assertEqual(sink.calls, ["pause", "pause", "resume"])
        with self.assertRaises(RuntimeError):
            transport.registerProducer(Sink(), True)
        client.vanish()
        self.assertEqual(sink.calls[-1], "stop")

    def test_pullProducer(self) -> None:
        """
        A pull producer is resumed when registered and each time the
        buffer drains.
        """
        sink = Sink()
        client = self.connected(sink)
        client.transport.registerProducer(sink, False)
        self.assertEqual(sink.calls, ["resume"])
        client.transport.write(b"x")
        client.readBytes(1)
        self.assertEqual(sink.calls, ["resume", "resume"])

    def test_halfClose(self) -> None:
        """
        A half-closeable protocol reads the client's end of stream with
        C{readConnectionLost} and keeps the connection; its own
        C{loseWriteConnection} reaches the client once its buffer drained.
        """
        protocol = HalfCloseable()
        directlyProvides(protocol, IHalfCloseableProtocol)
        client = self.connected(protocol)
        client.shutdownWrite()
        self.assertEqual(protocol.events, ["read"])
        transport = client.transport
        transport.write(b"last")
        transport.loseWriteConnection()
        self.assertEqual(protocol.events, ["read"])
        client.readBytes(4)
        self.assertEqual(protocol.events, ["read", "write"])
        self.assertFalse(client.disconnected)
        transport.loseConnection()  # done at the client's next step
        self.assertTrue(client.disconnected)
        self.assertEqual(protocol.events, ["read", "write", "ConnectionDone"])

    def test_writeChecked(self) -> None:
        """
        As Twisted's transports, it takes only C{bytes}.
        """
        client = self.connected(Sink())
        with self.assertRaises(TypeError):
            client.transport.write("text")  # type: ignore[arg-type]

    def test_readingChecked(self) -> None:
        """
        C{reading} is a C{bool} or a positive C{int}.
        """
        client = connect(WebSocketResource(), "/")
        with self.assertRaises(ValueError):
            client.reading = 0
        with self.assertRaises(TypeError):
            client.reading = "all"  # type: ignore[assignment]
        client.reading = 10
        self.assertEqual(client.reading, 10)


class SiteBackPressureTests(SynchronousTestCase):
    """
    The same in-memory peer behind a C{twisted.web} site: the helpers model
    the connection, whichever entry point serves it.
    """

    def test_nonReadingClientThroughSite(self) -> None:
        """
        Through a L{WebSocketUpgradeResource} in a C{Site}, a client that
        does not read leaves the server's writes buffered and
        C{drained()} pending until it reads them.
        """
        clock = MemoryReactorClock()
        factory = WebSocketFactory(reactor=clock)
        root = Resource()
        root.putChild(b"ws", WebSocketUpgradeResource(Recorder(), anyOrigin, factory))
        server = InMemoryServer(Site(root, reactor=clock), clock=clock)
        client = server.connect("/ws", reading=False)
        (sender,) = factory.clients
        sender.writeBinary(b"\x00" * 100_000)
        self.assertEqual(sender.bufferedAmount, 100_010)  # 2 + 8-byte length
        drained = sender.drained()
        self.assertNoResult(drained)
        client.resumeReading()
        self.successResultOf(drained)
        self.assertEqual(client.readMessages(), [b"\x00" * 100_000])
