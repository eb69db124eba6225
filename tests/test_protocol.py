"""
Tests for L{txclws._protocol.WebSocketServerProtocol}, the Twisted adapter,
over a L{StringTransport} and a L{MemoryReactorClock}: no sockets, no real
time.

Server frames are byte-exact literals; client frames are built by
L{tests._rawsocket.clientFrame} with a fixed mask key.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest
from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from tests._rawsocket import SAMPLE_ACCEPT, clientFrame, closePayload, upgradeRequest
from tests.conftest import RecordingResource
from txclws import (
    REJECT,
    ConnectionClosed,
    IWebSocketClient,
    ResourceRegistry,
    WebSocketFactory,
    anyOrigin,
    writeToClientsBinary,
    writeToClientsText,
)
from txclws._core.connection import WebSocketConnection
from txclws._readsize import MAX_READ_SIZE, chooseReadSize

PEER = IPv4Address("TCP", "192.0.2.7", 40000)

REQUEST = upgradeRequest("/r?a=b")

ACCEPTED = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: " + SAMPLE_ACCEPT.encode() + b"\r\n"
    b"\r\n"
)

# 0x88 = FIN + close; 0x02 = unmasked, 2 bytes; 0x03f3 = 1011.
CLOSE_1011 = b"\x88\x02\x03\xf3"
# 0x88 = FIN + close; 0x0a = 10 bytes; 0x03f0 = 1008, then the reason.
CLOSE_1008_REJECTED = b"\x88\x0a\x03\xf0rejected"


def text(message: str) -> bytes:
    """
    A masked client text frame.
    """
    return clientFrame(0x1, message.encode("utf-8"))


def serverText(message: str) -> bytes:
    """
    The unmasked server text frame for a short message: 0x81 = FIN + text.
    """
    payload = message.encode("utf-8")
    assert len(payload) < 126
    return bytes((0x81, len(payload))) + payload


class Boom(Exception):
    """
    What a misbehaving resource raises.
    """


class RecordingTransport(StringTransport):
    """
    A L{StringTransport} that also records an abort and a half-close.
    """

    aborted = False
    writeClosed = False

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()

    def loseWriteConnection(self) -> None:
        self.writeClosed = True


def fire(d: Deferred[Any], result: object) -> None:
    """
    Fire a Deferred a resource returned (errback if C{result} is a
    L{Failure}), and check that the adapter's callbacks on it raised
    nothing: an exception there would be left unhandled in the Deferred.
    """
    if isinstance(result, Failure):
        d.errback(result)
    else:
        d.callback(result)
    outcome: list[object] = []
    d.addBoth(outcome.append)
    assert outcome == [None]


def makeFactory(resource: Any, **limits: Any) -> tuple[WebSocketFactory, Any]:
    """
    A factory serving C{resource} at C{/r} on a L{MemoryReactorClock}.
    """
    clock = MemoryReactorClock()
    registry = ResourceRegistry()
    registry.register("/r", resource, anyOrigin)
    return WebSocketFactory(registry, reactor=clock, **limits), clock


def connect(factory: WebSocketFactory) -> tuple[Any, RecordingTransport]:
    """
    A new protocol from C{factory}, connected to a fresh transport.
    """
    protocol = factory.buildProtocol(PEER)
    transport = RecordingTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    return protocol, transport


def openClient(factory: WebSocketFactory) -> tuple[Any, RecordingTransport]:
    """
    A protocol past a successful handshake, with the 101 cleared away.
    """
    protocol, transport = connect(factory)
    protocol.dataReceived(REQUEST)
    assert transport.value() == ACCEPTED
    transport.clear()
    return protocol, transport


@pytest.fixture
def recorder() -> RecordingResource:
    """
    A recording resource that does not echo.
    """
    return RecordingResource(echo=False)


# -- opening handshake ---------------------------------------------------


def test_handshakeAccepted(recorder: RecordingResource) -> None:
    """
    A valid upgrade request is answered with exactly the 101 response, and
    the resource gets C{clientConnected} with a client whose accessors
    describe the request and the peer.
    """
    factory, _ = makeFactory(recorder)
    protocol, transport = connect(factory)
    protocol.dataReceived(REQUEST)
    assert transport.value() == ACCEPTED
    assert recorder.named("clientConnected") == [protocol]
    assert verifyObject(IWebSocketClient, protocol)
    assert (protocol.resourceName, protocol.queryString) == ("/r", "a=b")
    assert protocol.websocketVersion == 13
    assert (protocol.host, protocol.port) == ("192.0.2.7", 40000)
    assert protocol.connectionHeaders["sec-websocket-key"] is not None
    assert protocol.subprotocol is None
    assert factory.clients == {protocol}
    assert not transport.disconnecting


def test_handshakeInPieces(recorder: RecordingResource) -> None:
    """
    A request head that arrives one byte at a time, followed in the same
    byte as its end by a frame, is accepted and the frame delivered.
    """
    factory, _ = makeFactory(recorder)
    protocol, transport = connect(factory)
    data = REQUEST + text("hi")
    for i in range(len(data)):
        protocol.dataReceived(data[i : i + 1])
    assert transport.value() == ACCEPTED
    assert recorder.named("receivedText") == ["hi"]


def test_handshakeTimeout(recorder: RecordingResource) -> None:
    """
    A client that does not finish its request head within
    C{handshakeTimeout} is answered 408 and its connection is closed; not a
    moment before.
    """
    factory, clock = makeFactory(recorder, handshakeTimeout=3.0)
    protocol, transport = connect(factory)
    protocol.dataReceived(REQUEST[:20])
    clock.advance(2.999)
    assert transport.value() == b""
    assert not transport.disconnecting
    clock.advance(0.001)
    assert transport.value().startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert transport.disconnecting
    # Bytes after the refusal are ignored: no late handshake.
    protocol.dataReceived(REQUEST[20:])
    assert transport.value().count(b"HTTP/1.1") == 1
    assert recorder.events == []


def test_handshakeCancelsTimeout(recorder: RecordingResource) -> None:
    """
    Once the handshake succeeds, the handshake timeout no longer applies.
    """
    # Keepalive off: its sweep is a delayed call of its own.
    factory, clock = makeFactory(recorder, handshakeTimeout=3.0, pingInterval=None)
    _, transport = openClient(factory)
    assert clock.getDelayedCalls() == []
    clock.advance(10)
    assert transport.value() == b""
    assert not transport.disconnecting


def test_selectSubprotocol(recorder: RecordingResource) -> None:
    """
    C{selectSubprotocol} is given the offered subprotocols in order; the one
    it picks is sent back in the 101 and is the client's C{subprotocol}.
    """
    offers: list[Any] = []

    def select(client: Any, offered: Any) -> str:
        offers.append(tuple(offered))
        return "chat.v1"

    recorder.respond["selectSubprotocol"] = select
    factory, _ = makeFactory(recorder)
    protocol, transport = connect(factory)
    protocol.dataReceived(
        upgradeRequest("/r", extra=(("Sec-WebSocket-Protocol", "chat.v2, chat.v1"),))
    )
    assert offers == [("chat.v2", "chat.v1")]
    assert transport.value() == (
        ACCEPTED[:-2] + b"Sec-WebSocket-Protocol: chat.v1\r\n\r\n"
    )
    assert protocol.subprotocol == "chat.v1"


def test_selectSubprotocolNotOffered(recorder: RecordingResource) -> None:
    """
    A resource that picks a subprotocol the client did not offer gets the
    handshake refused with 500, never a 101 with that subprotocol.
    """
    recorder.respond["selectSubprotocol"] = lambda client, offered: "other"
    factory, _ = makeFactory(recorder)
    protocol, transport = connect(factory)
    protocol.dataReceived(
        upgradeRequest("/r", extra=(("Sec-WebSocket-Protocol", "chat"),))
    )
    assert transport.value().startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert transport.disconnecting
    assert recorder.events == []


def test_selectSubprotocolRaises(recorder: RecordingResource, logEvents: Any) -> None:
    """
    A C{selectSubprotocol} that raises gets the handshake refused with 500,
    and the failure logged.
    """

    def explode(client: Any, offered: Any) -> None:
        raise Boom()

    recorder.respond["selectSubprotocol"] = explode
    factory, _ = makeFactory(recorder)
    protocol, transport = connect(factory)
    protocol.dataReceived(
        upgradeRequest("/r", extra=(("Sec-WebSocket-Protocol", "chat"),))
    )
    assert transport.value().startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert recorder.events == []
    assert len(failuresOf(logEvents, Boom)) == 1


def test_maxClients(recorder: RecordingResource) -> None:
    """
    Past C{maxClients} connected clients, a new handshake is refused with
    503; once one leaves, a new client is accepted again.
    """
    factory, _ = makeFactory(recorder, maxClients=1)
    first, _ = openClient(factory)
    protocol, transport = connect(factory)
    protocol.dataReceived(REQUEST)
    assert transport.value().startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert transport.disconnecting
    protocol.connectionLost(Failure(Exception("gone")))
    first.connectionLost(Failure(Exception("gone")))
    openClient(factory)
    assert len(recorder.named("clientConnected")) == 2


# -- closing and timeouts ------------------------------------------------


def test_closeTimeoutAborts(recorder: RecordingResource) -> None:
    """
    After our close frame, a client that does not answer within
    C{closeTimeout} has its connection aborted.
    """
    factory, clock = makeFactory(recorder, closeTimeout=2.0)
    protocol, transport = openClient(factory)
    protocol.close(1000, "bye")
    # 0x88 = FIN + close; 5 bytes: 0x03e8 = 1000, then "bye".
    assert transport.value() == b"\x88\x05\x03\xe8bye"
    clock.advance(1.999)
    assert not transport.aborted
    clock.advance(0.001)
    assert transport.aborted


def test_closeAnsweredInTime(recorder: RecordingResource) -> None:
    """
    A client that answers our close frame in time gets its connection
    closed cleanly (not aborted); the close timer, which bounds the whole
    close and not only the wait for the answer, runs until the connection
    is really lost, and is cancelled then.
    """
    # Keepalive off: its sweep is a delayed call of its own.
    factory, clock = makeFactory(recorder, closeTimeout=2.0, pingInterval=None)
    protocol, transport = openClient(factory)
    protocol.close(4002, "done")
    transport.clear()
    clock.advance(1)
    protocol.dataReceived(clientFrame(0x8, closePayload(4002, b"done")))
    assert transport.value() == b""
    assert transport.disconnecting
    [timer] = clock.getDelayedCalls()
    assert timer.getTime() == 2.0  # from the close's start, not restarted
    protocol.connectionLost()
    assert clock.getDelayedCalls() == []
    clock.advance(10)
    assert not transport.aborted


def test_closeReceivedNotDrainedAborted(recorder: RecordingResource) -> None:
    """
    Issue 11, defect 2: after the client's close frame the server closes
    once its write buffer has drained; a client that does not read keeps it
    full, so C{closeTimeout} after the close frame the connection is
    aborted (before, the close timer was cancelled and the close waited for
    ever).  The same after a failure, for which the server half-closes.
    """
    for frame in (clientFrame(0x8, closePayload(1000)), clientFrame(0x3)):
        factory, clock = makeFactory(recorder, closeTimeout=2.0, pingInterval=None)
        protocol, transport = openClient(factory)
        protocol.dataReceived(frame)
        assert transport.disconnecting or transport.writeClosed
        clock.advance(1.999)
        assert not transport.aborted
        clock.advance(0.001)
        assert transport.aborted


def test_clientCloseIsEchoed(recorder: RecordingResource) -> None:
    """
    A client's close frame is answered with one carrying the same code, the
    server closes the TCP connection, and C{closeCode}/C{closeReason} say
    what the client sent.
    """
    factory, _ = makeFactory(recorder)
    protocol, transport = openClient(factory)
    protocol.dataReceived(clientFrame(0x8, closePayload(4001, b"bye")))
    # 0x88 = FIN + close; 2 bytes: 0x0fa1 = 4001.
    assert transport.value() == b"\x88\x02\x0f\xa1"
    assert transport.disconnecting
    assert (protocol.closeCode, protocol.closeReason) == (4001, "bye")


def test_protocolErrorHalfClosesThenAborts(recorder: RecordingResource) -> None:
    """
    A client that breaks the protocol gets a 1002 close frame and the write
    side is shut; if it does not close its side within C{closeTimeout}, it
    is aborted.
    """
    factory, clock = makeFactory(recorder, closeTimeout=2.0)
    protocol, transport = openClient(factory)
    protocol.dataReceived(clientFrame(0x1, b"x", masked=False))
    frame = transport.value()
    # 0x88 = FIN + close; then the length, then 0x03ea = 1002.
    assert frame[:1] == b"\x88" and frame[2:4] == b"\x03\xea"
    assert transport.writeClosed
    assert not transport.aborted
    clock.advance(2.0)
    assert transport.aborted
    assert protocol.closeCode == 1002


def test_writesAfterCloseRaise(recorder: RecordingResource) -> None:
    """
    Once our close frame is sent, and once the connection is gone,
    C{writeText}, C{writeBinary} and C{ping} raise L{ConnectionClosed};
    a second C{close} writes nothing.
    """
    factory, _ = makeFactory(recorder)
    protocol, transport = openClient(factory)
    protocol.close()
    transport.clear()
    for write in (
        lambda: protocol.writeText("x"),
        lambda: protocol.writeBinary(b"x"),
        lambda: protocol.ping(b"x"),
    ):
        with pytest.raises(ConnectionClosed):
            write()
    protocol.close()
    assert transport.value() == b""
    protocol.connectionLost(Failure(Exception("gone")))
    with pytest.raises(ConnectionClosed):
        protocol.writeText("x")


def test_writeBeforeHandshakeRaises(recorder: RecordingResource) -> None:
    """
    A client that is not past the handshake cannot be written to.
    """
    factory, _ = makeFactory(recorder)
    protocol, transport = connect(factory)
    with pytest.raises(ConnectionClosed):
        protocol.writeText("x")
    assert transport.value() == b""


# -- ordering and back-pressure ----------------------------------------


def test_pendingCallbackPausesAndQueues(recorder: RecordingResource) -> None:
    """
    While a callback's Deferred is unfired, the client's later messages wait
    and, with C{maxQueuedBytes=0} (pause at the first queued event), the
    transport is paused; each is delivered, in order, only when the
    previous callback finishes, and reading resumes once nothing is queued.
    """
    pending: list[Deferred[None]] = []

    def slow(client: Any, message: str) -> Deferred[None]:
        pending.append(Deferred())
        return pending[-1]

    recorder.respond["receivedText"] = slow
    recorder.respond["receivedBinary"] = slow
    factory, _ = makeFactory(recorder, maxQueuedBytes=0)
    protocol, transport = openClient(factory)
    protocol.dataReceived(text("a") + clientFrame(0x2, b"b") + text("c"))
    assert recorder.named("receivedText") == ["a"]
    assert transport.producerState == "paused"
    fire(pending[0], None)
    assert recorder.named("receivedBinary") == [b"b"]
    assert recorder.named("receivedText") == ["a"]
    assert transport.producerState == "paused"
    protocol.dataReceived(text("d"))
    fire(pending[1], None)
    assert recorder.named("receivedText") == ["a", "c"]
    fire(pending[2], None)
    assert recorder.named("receivedText") == ["a", "c", "d"]
    # "d"'s callback is pending, but nothing is queued: reading resumes.
    assert transport.producerState == "producing"
    fire(pending[3], None)
    assert transport.producerState == "producing"
    assert [name for name, _, _ in recorder.events] == [
        "clientConnected",
        "receivedText",
        "receivedBinary",
        "receivedText",
        "receivedText",
    ]


def test_readingGoesOnUnderQueueBound(recorder: RecordingResource) -> None:
    """
    Issue 11, defect 3: while a callback is pending the server reads on and
    queues the client's events (pings are still answered at once), each
    counting its payload plus 64 bytes; it pauses once the count is past
    C{maxQueuedBytes}, not at it, and resumes once a finished callback has
    brought it back under.
    """
    pending: list[Deferred[None]] = []

    def slow(client: Any, message: str) -> Deferred[None]:
        pending.append(Deferred())
        return pending[-1]

    recorder.respond["receivedText"] = slow
    factory, _ = makeFactory(recorder, maxQueuedBytes=3 * (64 + 10))
    protocol, transport = openClient(factory)
    protocol.dataReceived(text("first"))
    for _ in range(3):
        protocol.dataReceived(text("x" * 10))  # 74 each: at most the bound
        assert transport.producerState == "producing"
    transport.clear()
    protocol.dataReceived(clientFrame(0x9, b"p"))
    # 0x8a = FIN + pong; 1 byte: "p".  Answered at once, not queued.
    assert transport.value() == b"\x8a\x01p"
    assert transport.producerState == "producing"
    protocol.dataReceived(text("y"))  # 65 more: past the bound
    assert transport.producerState == "paused"
    fire(pending[0], None)  # one "x" out: 3 * 74 - 74 + 65, under it
    assert transport.producerState == "producing"
    for index in range(1, 5):
        fire(pending[index], None)
    assert recorder.named("receivedText") == ["first", *["x" * 10] * 3, "y"]
    assert transport.producerState == "producing"


def test_pendingClientConnectedHoldsMessages(recorder: RecordingResource) -> None:
    """
    Messages that arrive while C{clientConnected}'s Deferred is unfired are
    delivered after it fires with an acceptance, in order; with
    C{maxQueuedBytes=0} reading is paused meanwhile.
    """
    verdict: Deferred[None] = Deferred()
    recorder.respond["clientConnected"] = lambda client, _: verdict
    factory, _ = makeFactory(recorder, maxQueuedBytes=0)
    protocol, transport = openClient(factory)
    protocol.dataReceived(text("1") + text("2"))
    assert recorder.named("receivedText") == []
    assert transport.producerState == "paused"
    fire(verdict, None)
    assert recorder.named("receivedText") == ["1", "2"]
    assert transport.producerState == "producing"


def test_closeWaitsForPendingCallback(recorder: RecordingResource) -> None:
    """
    A client's close frame that arrives while a callback is pending is
    answered only once the callback is done, after what it wrote; then the
    connection is closed and C{clientDisconnected} follows.
    """
    pending: Deferred[None] = Deferred()
    recorder.respond["receivedText"] = lambda client, message: pending
    factory, _ = makeFactory(recorder)
    protocol, transport = openClient(factory)
    protocol.dataReceived(text("a") + clientFrame(0x8, closePayload(1000)))
    assert transport.value() == b""
    assert not transport.disconnecting
    protocol.writeText("reply")
    fire(pending, None)
    # The reply, then 0x88 = FIN + close, 0x03e8 = 1000.
    assert transport.value() == serverText("reply") + b"\x88\x02\x03\xe8"
    assert transport.disconnecting
    protocol.connectionLost(Failure(Exception("gone")))
    assert recorder.named("clientDisconnected") == [protocol]


def test_failureWaitsForPendingCallback(recorder: RecordingResource) -> None:
    """
    A protocol violation that arrives while a callback is pending fails the
    connection (1002) once the callback is done, after what it wrote.
    """
    pending: Deferred[None] = Deferred()
    recorder.respond["receivedText"] = lambda client, message: pending
    factory, _ = makeFactory(recorder)
    protocol, transport = openClient(factory)
    protocol.dataReceived(text("a") + clientFrame(0x1, b"b", masked=False))
    assert transport.value() == b""
    protocol.writeText("reply")
    fire(pending, None)
    data = transport.value()
    reply = serverText("reply")
    assert data[: len(reply)] == reply
    # 0x88 = FIN + close; then the length, then 0x03ea = 1002.
    assert data[len(reply) : len(reply) + 1] == b"\x88"
    assert data[len(reply) + 2 : len(reply) + 4] == b"\x03\xea"
    assert transport.writeClosed
    # Reading resumes, so that the client's EOF is seen.
    assert transport.producerState == "producing"


def test_pingAnsweredWhileBusy(recorder: RecordingResource) -> None:
    """
    A ping is answered with its payload at once, even while a callback is
    pending and other messages are queued; it is not given to the resource.
    """
    pending: Deferred[None] = Deferred()
    recorder.respond["receivedText"] = lambda client, message: pending
    factory, _ = makeFactory(recorder)
    protocol, transport = openClient(factory)
    protocol.dataReceived(text("a") + text("b") + clientFrame(0x9, b"are you there"))
    # 0x8a = FIN + pong; 13 bytes of payload.
    assert transport.value() == b"\x8a\x0dare you there"
    assert recorder.named("receivedText") == ["a"]
    fire(pending, None)
    assert recorder.named("receivedText") == ["a", "b"]


def test_pongDelivered(recorder: RecordingResource) -> None:
    """
    A pong reaches C{receivedPong} with its payload, after the messages
    before it.
    """
    pending: Deferred[None] = Deferred()
    recorder.respond["receivedText"] = lambda client, message: pending
    factory, _ = makeFactory(recorder)
    protocol, _ = openClient(factory)
    protocol.ping(b"hb")
    protocol.dataReceived(text("a") + clientFrame(0xA, b"hb"))
    assert recorder.named("receivedPong") == []
    fire(pending, None)
    assert recorder.named("receivedPong") == [b"hb"]


# -- REJECT --------------------------------------------------------------


def test_rejectSync(recorder: RecordingResource) -> None:
    """
    C{clientConnected} returning L{REJECT} closes the client with 1008;
    messages it sent already, in the same packet as its handshake, and
    later ones, are dropped, and it gets no C{clientDisconnected}.
    """
    recorder.respond["clientConnected"] = lambda client, _: REJECT
    factory, _ = makeFactory(recorder)
    protocol, transport = connect(factory)
    protocol.dataReceived(REQUEST + text("early"))
    assert transport.value() == ACCEPTED + CLOSE_1008_REJECTED
    protocol.dataReceived(text("late") + clientFrame(0x8, closePayload(1008)))
    assert transport.disconnecting
    protocol.connectionLost(Failure(Exception("gone")))
    assert [name for name, _, _ in recorder.events] == ["clientConnected"]
    assert factory.clients == set()


def test_rejectViaDeferred(recorder: RecordingResource) -> None:
    """
    C{clientConnected}'s Deferred firing L{REJECT} closes the client with
    1008, drops the messages queued meanwhile, resumes reading (to get the
    client's close), and no C{clientDisconnected} follows.  (With
    C{maxQueuedBytes=0}, so that reading was paused for the queue.)
    """
    verdict: Deferred[object] = Deferred()
    recorder.respond["clientConnected"] = lambda client, _: verdict
    factory, _ = makeFactory(recorder, maxQueuedBytes=0)
    protocol, transport = openClient(factory)
    protocol.dataReceived(text("queued") + clientFrame(0x2, b"also"))
    assert transport.producerState == "paused"
    fire(verdict, REJECT)
    assert transport.value() == CLOSE_1008_REJECTED
    assert transport.producerState == "producing"
    protocol.connectionLost(Failure(Exception("gone")))
    assert [name for name, _, _ in recorder.events] == ["clientConnected"]


def test_verdictAfterConnectionLost(recorder: RecordingResource) -> None:
    """
    A client lost while C{clientConnected}'s Deferred is pending: a later
    L{REJECT} writes nothing and leaves no close timer behind (nothing is
    left to close), and a later acceptance is followed by exactly one
    C{clientDisconnected}.
    """
    verdicts: list[Deferred[object]] = []

    def pending(client: Any, _: Any) -> Deferred[object]:
        verdicts.append(Deferred())
        return verdicts[-1]

    recorder.respond["clientConnected"] = pending
    factory, clock = makeFactory(recorder)
    rejected, transport = openClient(factory)
    accepted, _ = openClient(factory)
    rejected.connectionLost(Failure(Exception("gone")))
    accepted.connectionLost(Failure(Exception("gone")))
    fire(verdicts[0], REJECT)
    fire(verdicts[1], None)
    assert transport.value() == b""
    assert clock.getDelayedCalls() == []
    assert recorder.named("clientDisconnected") == [accepted]


def test_rejectViaFiredDeferred(recorder: RecordingResource) -> None:
    """
    An already-fired Deferred of L{REJECT} rejects just like a plain one.
    """
    recorder.respond["clientConnected"] = lambda client, _: succeed(REJECT)
    factory, _ = makeFactory(recorder)
    protocol, transport = connect(factory)
    protocol.dataReceived(REQUEST + text("early"))
    assert transport.value() == ACCEPTED + CLOSE_1008_REJECTED
    protocol.connectionLost(Failure(Exception("gone")))
    assert [name for name, _, _ in recorder.events] == ["clientConnected"]


# -- resource errors ---------------------------------------------------


def raiseOnBoom(client: Any, message: str) -> None:
    """
    Echo, but raise L{Boom} on C{"boom"}.
    """
    if message == "boom":
        raise Boom("resource bug")
    client.writeText(message)


def failuresOf(logEvents: Any, kind: type[BaseException]) -> list[Any]:
    """
    The logged events carrying a failure of type C{kind}.
    """
    return [
        event
        for event in logEvents
        if "log_failure" in event and event["log_failure"].check(kind)
    ]


def test_callbackRaisesClosesThatClient(
    recorder: RecordingResource, logEvents: Any
) -> None:
    """
    A callback that raises closes that client alone with 1011 (no details),
    drops its later messages, and the failure is logged; another client of
    the same resource is still served.
    """
    recorder.respond["receivedText"] = raiseOnBoom
    factory, _ = makeFactory(recorder)
    bad, badTransport = openClient(factory)
    good, goodTransport = openClient(factory)
    bad.dataReceived(text("boom") + text("after"))
    assert badTransport.value() == CLOSE_1011
    assert recorder.named("receivedText") == ["boom"]
    good.dataReceived(text("fine"))
    assert goodTransport.value() == serverText("fine")
    [event] = failuresOf(logEvents, Boom)
    assert event["callback"] == "receivedText"


def test_deferredFailsClosesThatClient(
    recorder: RecordingResource, logEvents: Any
) -> None:
    """
    A callback whose Deferred fails closes the client with 1011 and the
    failure is logged (and so not left unhandled).
    """
    pending: Deferred[None] = Deferred()
    recorder.respond["receivedBinary"] = lambda client, message: pending
    factory, _ = makeFactory(recorder)
    protocol, transport = openClient(factory)
    protocol.dataReceived(clientFrame(0x2, b"x") + text("queued"))
    assert transport.value() == b""
    fire(pending, Failure(Boom("later")))
    assert transport.value() == CLOSE_1011
    assert recorder.named("receivedText") == []
    assert len(failuresOf(logEvents, Boom)) == 1


def test_clientConnectedRaises(recorder: RecordingResource, logEvents: Any) -> None:
    """
    C{clientConnected} raising closes the client with 1011 right after the
    101, and is logged.
    """

    def explode(client: Any, _: Any) -> None:
        raise Boom()

    recorder.respond["clientConnected"] = explode
    factory, _ = makeFactory(recorder)
    protocol, transport = connect(factory)
    protocol.dataReceived(REQUEST + text("early"))
    assert transport.value() == ACCEPTED + CLOSE_1011
    assert recorder.named("receivedText") == []
    assert len(failuresOf(logEvents, Boom)) == 1


def test_debugResourceErrorsKeepsClient(
    recorder: RecordingResource, logEvents: Any
) -> None:
    """
    With C{debugResourceErrors}, a failing callback (raising, or via its
    Deferred) is logged and handed to C{factory.debugFailure}, and the
    client stays open and keeps being served.
    """
    failures: list[Failure] = []
    later: Deferred[None] = Deferred()

    def respond(client: Any, message: str) -> Any:
        if message == "later":
            return later
        if message == "failed":
            return fail(Boom("failed"))
        return raiseOnBoom(client, message)

    recorder.respond["receivedText"] = respond
    factory, _ = makeFactory(recorder, debugResourceErrors=True)
    factory.debugFailure = failures.append  # type: ignore[method-assign]
    protocol, transport = openClient(factory)
    protocol.dataReceived(text("boom") + text("failed") + text("later") + text("ok"))
    fire(later, Failure(Boom("later")))
    assert [f.value.args[0] for f in failures] == ["resource bug", "failed", "later"]
    assert recorder.named("receivedText") == ["boom", "failed", "later", "ok"]
    assert transport.value() == serverText("ok")
    assert not transport.disconnecting
    assert len(failuresOf(logEvents, Boom)) == 3


# -- clientDisconnected ------------------------------------------------


def test_clientDisconnectedOnce(recorder: RecordingResource) -> None:
    """
    An accepted client's end is reported by exactly one
    C{clientDisconnected}, after a close handshake as after a lost
    connection.
    """
    factory, _ = makeFactory(recorder)
    protocol, _ = openClient(factory)
    protocol.dataReceived(clientFrame(0x8, closePayload(1000)))
    protocol.connectionLost(Failure(Exception("gone")))
    assert recorder.named("clientDisconnected") == [protocol]
    assert factory.clients == set()


def test_clientDisconnectedAfterPendingCallback(recorder: RecordingResource) -> None:
    """
    A connection lost while a callback is pending is reported only once
    that callback finishes, exactly once; messages still queued are not
    delivered to a client that is gone.
    """
    pending: Deferred[None] = Deferred()
    recorder.respond["receivedText"] = lambda client, message: pending
    factory, _ = makeFactory(recorder)
    protocol, _ = openClient(factory)
    protocol.dataReceived(text("a") + text("b"))
    protocol.connectionLost(Failure(Exception("gone")))
    assert recorder.named("clientDisconnected") == []
    fire(pending, None)
    assert recorder.named("clientDisconnected") == [protocol]
    assert recorder.named("receivedText") == ["a"]


def test_clientDisconnectedRaisingIsLogged(
    recorder: RecordingResource, logEvents: Any
) -> None:
    """
    A C{clientDisconnected} that raises is logged, and nothing else breaks.
    """

    def explode(client: Any, _: Any) -> None:
        raise Boom()

    recorder.respond["clientDisconnected"] = explode
    factory, _ = makeFactory(recorder)
    protocol, _ = openClient(factory)
    protocol.connectionLost(Failure(Exception("gone")))
    assert len(failuresOf(logEvents, Boom)) == 1
    assert factory.clients == set()


def test_noCallbacksBeforeHandshake(recorder: RecordingResource) -> None:
    """
    A connection lost during the handshake reaches the resource not at all.
    """
    factory, clock = makeFactory(recorder)
    protocol, _ = connect(factory)
    protocol.dataReceived(REQUEST[:10])
    protocol.connectionLost(Failure(Exception("gone")))
    assert recorder.events == []
    assert clock.getDelayedCalls() == []


# -- broadcast ---------------------------------------------------------


def test_broadcastFramesOnce(
    recorder: RecordingResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    L{writeToClientsText} and L{writeToClientsBinary} frame a message once
    for all clients, write the same bytes to each open one, and skip (and
    do not count) clients that are closing or gone.
    """
    calls: list[tuple[int, bytes, int | None]] = []
    original = WebSocketConnection.frameMessage

    def spy(self: Any, opcode: int, payload: bytes, frameSize: Any = None) -> bytes:
        calls.append((opcode, payload, frameSize))
        return original(self, opcode, payload, frameSize)

    monkeypatch.setattr(WebSocketConnection, "frameMessage", spy)
    factory, _ = makeFactory(recorder)
    clients = [openClient(factory) for _ in range(6)]
    closing, gone = clients[0][0], clients[1][0]
    closing.close()
    gone.connectionLost(Failure(Exception("gone")))
    for _, transport in clients:
        transport.clear()
    protocols = [protocol for protocol, _ in clients]

    assert writeToClientsText(protocols, "hello") == 4
    assert calls == [(0x1, b"hello", None)]
    assert [t.value() for _, t in clients] == [b"", b""] + [b"\x81\x05hello"] * 4

    for _, transport in clients:
        transport.clear()
    assert writeToClientsBinary(protocols, b"abcde", frameSize=2) == 4
    assert len(calls) == 2
    # 0x02 = binary, no FIN; 0x00 = continuation, no FIN; 0x80 = FIN + cont.
    fragments = b"\x02\x02ab" + b"\x00\x02cd" + b"\x80\x01e"
    assert [t.value() for _, t in clients] == [b"", b""] + [fragments] * 4


class SocketTransport(RecordingTransport, FileDescriptor):
    """
    A L{RecordingTransport} that is also a L{FileDescriptor}, as Twisted's
    TCP transport is: it has the per-instance C{bufferSize} read size.
    """


def openSocketClient(factory: WebSocketFactory) -> tuple[Any, SocketTransport]:
    """
    A protocol past its handshake on a L{SocketTransport}.
    """
    protocol = factory.buildProtocol(PEER)
    transport = SocketTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    protocol.dataReceived(REQUEST)
    assert transport.value() == ACCEPTED
    return protocol, transport


def test_chooseReadSize() -> None:
    """
    The read size is the rest of the frame, between the transport's default
    and L{MAX_READ_SIZE}.
    """
    assert chooseReadSize(0, 65536) == 65536
    assert chooseReadSize(1000, 65536) == 65536
    assert chooseReadSize(300_000, 65536) == 300_000
    assert chooseReadSize(16 << 20, 65536) == MAX_READ_SIZE


def test_largeFrameRaisesReadSizeUntilItIsIn(recorder: RecordingResource) -> None:
    """
    Once a frame header announces a payload larger than the TCP transport's
    C{bufferSize}, the transport reads the rest of it at once (up to
    L{MAX_READ_SIZE}); when the frame is in, the read size is back to the
    transport's default and the message is delivered whole.
    """
    factory, _ = makeFactory(recorder, maxFrameSize=4 << 20, maxMessageSize=4 << 20)
    protocol, transport = openSocketClient(factory)
    default = transport.bufferSize
    payload = bytes(range(256)) * 8192  # 2 MiB
    frame = clientFrame(0x2, payload)
    protocol.dataReceived(frame[:default])
    assert transport.bufferSize == MAX_READ_SIZE
    protocol.dataReceived(frame[default : len(frame) - 100_000])
    assert transport.bufferSize == 100_000
    protocol.dataReceived(frame[len(frame) - 100_000 :])
    assert transport.bufferSize == default
    assert recorder.named("receivedBinary") == [payload]


def test_smallMessagesLeaveReadSizeAlone(recorder: RecordingResource) -> None:
    """
    Small messages, however many arrive in one read, never change the read
    size.
    """
    factory, _ = makeFactory(recorder)
    protocol, transport = openSocketClient(factory)
    default = transport.bufferSize
    protocol.dataReceived(clientFrame(0x1, b"x" * 100) * 200)
    assert "bufferSize" not in vars(transport)
    assert transport.bufferSize == default
    assert len(recorder.named("receivedText")) == 200


def test_readSizeOnlyForSocketTransports(recorder: RecordingResource) -> None:
    """
    A transport that is not a L{FileDescriptor} (a TLS wrapper, a test
    transport) is never given a C{bufferSize}.
    """
    factory, _ = makeFactory(recorder, maxFrameSize=4 << 20, maxMessageSize=4 << 20)
    protocol, transport = openClient(factory)
    protocol.dataReceived(clientFrame(0x2, b"y" * (1 << 20))[:100_000])
    assert "bufferSize" not in vars(transport)


def test_openClientKeepsNoCopyOfItsHead(recorder: RecordingResource) -> None:
    """
    An open client keeps its request's headers (C{connectionHeaders}), not
    the bytes of its head as well: a head of 12 KiB (within C{maxHeadSize})
    was held twice for the connection's life.  Measured with tracemalloc
    over 20 clients: what stays allocated per client (the headers, the
    session, the transport's record of the 101) is under 1.5 times the
    head.
    """
    factory, _ = makeFactory(recorder)
    pad = "p" * 12000
    request = upgradeRequest("/r", extra=(("X-Pad", pad),))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        clients = [connect(factory) for _ in range(20)]
        for protocol, _ in clients:
            protocol.dataReceived(request)
        gc.collect()
        held = (tracemalloc.get_traced_memory()[0] - before) / len(clients)
    finally:
        tracemalloc.stop()
    assert all(p.connectionHeaders["x-pad"] == pad for p, _ in clients)
    assert held < 1.5 * len(request), (held, len(request))
