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

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase

from txclws import REJECT, IWebSocketClient, WebSocketResource, originExact
from txclws.demo import ChatResource, EchoResource
from txclws.testing import (
    HandshakeRefused,
    InMemoryClient,
    InMemoryServer,
    ServerProtocolError,
    connect,
)


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
        A message goes to every member, the sender included, with its name.
        """
        members = [self.join(name) for name in ("ann", "bob", "cy")]
        for member in members:
            events(member)
        members[1].sendText("hello all")
        expected = [{"type": "message", "name": "bob", "text": "hello all"}]
        for member in members:
            self.assertEqual(events(member), expected)

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
