"""
Tests for keepalive and the idle timeout (L{txclws._session.keepalive} and
the session's C{keepaliveCheck}): over a L{StringTransport} and a
L{MemoryReactorClock}, then once over a real socket.

The sweep runs every quarter of the shortest interval configured, so the
clock is moved in steps of that quarter (L{sweep}): one C{advance} past
several periods would run the sweep only once.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from tests._rawsocket import clientFrame, firstFrameThenSilence
from tests.conftest import WAIT, RecordingResource, whenLost
from tests.test_hixie76 import BODY, DRAFT_REQUEST
from tests.test_protocol import (
    RecordingTransport,
    fire,
    makeFactory,
    openClient,
    text,
)
from txclws import anyOrigin

#: Our keepalive ping: 0x89 = FIN + ping; 0x10 = 16 bytes, unmasked.
KEEPALIVE_PING = b"\x89\x10txclws-keepalive"

#: The client's answer to it.
KEEPALIVE_PONG = clientFrame(0xA, b"txclws-keepalive")

#: 0x88 = FIN + close; 0x0e = 14 bytes: 0x03e9 = 1001, then the reason.
CLOSE_IDLE = b"\x88\x0e\x03\xe9idle timeout"


def sweep(clock: Any, seconds: float, period: float) -> None:
    """
    Move C{clock} on by C{seconds}, one sweep C{period} at a time.
    """
    steps = round(seconds / period)
    assert steps * period == seconds, "move by whole periods"
    clock.pump([period] * steps)


@pytest.fixture
def recorder() -> RecordingResource:
    """
    A recording resource that does not echo.
    """
    return RecordingResource(echo=False)


def lose(protocol: Any) -> None:
    """
    What the reactor does once an aborted or closed transport is gone.
    """
    protocol.connectionLost(Failure(ConnectionError("gone")))


# -- pings and the ping timeout ---------------------------------------------


def test_pingAfterInterval(recorder: RecordingResource) -> None:
    """
    A client from which nothing has arrived for C{pingInterval} seconds is
    pinged with the keepalive payload, at the first sweep after that and
    not before; it is pinged once, not again while the ping is unanswered.
    """
    factory, clock = makeFactory(recorder, pingInterval=20.0, pingTimeout=20.0)
    _, transport = openClient(factory)
    sweep(clock, 15, 5)
    assert transport.value() == b""
    sweep(clock, 5, 5)
    assert transport.value() == KEEPALIVE_PING
    transport.clear()
    sweep(clock, 15, 5)
    assert transport.value() == b""
    assert not transport.aborted


def test_droppedAfterTimeout(recorder: RecordingResource) -> None:
    """
    A pinged client from which nothing arrives within C{pingTimeout} is
    aborted (no close handshake with a peer that does not answer), and its
    resource hears C{clientDisconnected} exactly once.
    """
    factory, clock = makeFactory(recorder, pingInterval=20.0, pingTimeout=20.0)
    protocol, transport = openClient(factory)
    sweep(clock, 20, 5)  # pinged at 20
    assert transport.value() == KEEPALIVE_PING
    sweep(clock, 15, 5)
    assert not transport.aborted
    sweep(clock, 5, 5)
    assert transport.aborted
    lose(protocol)
    sweep(clock, 100, 5)
    assert recorder.named("clientDisconnected") == [protocol]
    assert factory.clients == set()


def test_drainingClientKeptAlive(
    recorder: RecordingResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    While our write buffer is full we stop reading, so the client's pongs
    go unread: a client that is still draining what we sent (the buffer
    shrinks between sweeps) is alive and is not dropped, however long the
    transfer takes.
    """
    buffered = [10_000_000]
    monkeypatch.setattr("txclws._session.stream.bufferedBytes", lambda t: buffered[0])
    factory, clock = makeFactory(recorder, pingInterval=20.0, pingTimeout=20.0)
    protocol, transport = openClient(factory)
    protocol.pauseProducing()  # the transport's buffer is full
    for _ in range(60):  # ten minutes of sweeps, draining slowly
        buffered[0] -= 1000
        sweep(clock, 10, 5)
    assert not transport.aborted


def test_stalledClientDropped(
    recorder: RecordingResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    A client whose full buffer does not shrink at all is pinged once
    C{pingInterval} passes and dropped when C{pingTimeout} passes after
    that: a stalled peer is not kept forever.
    """
    monkeypatch.setattr("txclws._session.stream.bufferedBytes", lambda t: 10_000_000)
    factory, clock = makeFactory(recorder, pingInterval=20.0, pingTimeout=20.0)
    protocol, transport = openClient(factory)
    protocol.pauseProducing()
    sweep(clock, 35, 5)
    assert not transport.aborted
    sweep(clock, 5, 5)
    assert transport.aborted


def test_pongKeepsAlive(recorder: RecordingResource) -> None:
    """
    The keepalive pong keeps the client: it is not dropped when the timeout
    would have passed, and it is next pinged C{pingInterval} after the pong.
    """
    factory, clock = makeFactory(recorder, pingInterval=20.0, pingTimeout=20.0)
    protocol, transport = openClient(factory)
    sweep(clock, 20, 5)
    transport.clear()
    protocol.dataReceived(KEEPALIVE_PONG)  # at 20
    sweep(clock, 15, 5)
    assert transport.value() == b""
    sweep(clock, 5, 5)  # at 40: the unanswered ping would have timed out
    assert not transport.aborted
    assert transport.value() == KEEPALIVE_PING
    assert recorder.named("receivedPong") == []


def test_anyDataKeepsAlive(recorder: RecordingResource) -> None:
    """
    Any data from the client answers for it, not only the pong: a client
    that sends a message after our ping is not dropped.
    """
    factory, clock = makeFactory(recorder, pingInterval=20.0, pingTimeout=20.0)
    protocol, transport = openClient(factory)
    sweep(clock, 20, 5)
    protocol.dataReceived(text("still here"))
    sweep(clock, 20, 5)
    assert not transport.aborted
    assert recorder.named("receivedText") == ["still here"]


def test_keepalivePongNotDelivered(recorder: RecordingResource) -> None:
    """
    The pong to our keepalive ping is not the resource's business; the
    pong to a ping the resource sent itself still reaches C{receivedPong}.
    """
    factory, clock = makeFactory(recorder, pingInterval=20.0, pingTimeout=20.0)
    protocol, transport = openClient(factory)
    sweep(clock, 20, 5)
    assert transport.value() == KEEPALIVE_PING
    protocol.ping(b"mine")
    protocol.dataReceived(KEEPALIVE_PONG + clientFrame(0xA, b"mine"))
    assert recorder.named("receivedPong") == [b"mine"]


def test_granularity(recorder: RecordingResource) -> None:
    """
    The sweep runs every quarter of the shortest interval configured, the
    ping timeout included: with C{pingTimeout=4} the client is dropped 4
    seconds after the ping, not at the next multiple of C{pingInterval}/4.
    """
    factory, clock = makeFactory(recorder, pingInterval=20.0, pingTimeout=4.0)
    _, transport = openClient(factory)
    sweep(clock, 20, 1)
    assert transport.value() == KEEPALIVE_PING
    sweep(clock, 3, 1)
    assert not transport.aborted
    sweep(clock, 1, 1)
    assert transport.aborted


def test_notDroppedWhileResourceBusy(recorder: RecordingResource) -> None:
    """
    While a callback is pending with the client's next events queued past
    C{maxQueuedBytes} (0 here), the server does not read from the client,
    so it cannot hear its pongs:
    that silence is the server's, and the client is neither pinged nor
    dropped for it.  Once the callback is done, keepalive starts afresh.
    """
    pending: Deferred[None] = Deferred()
    recorder.respond["receivedText"] = lambda client, message: pending
    factory, clock = makeFactory(
        recorder, pingInterval=20.0, pingTimeout=20.0, maxQueuedBytes=0
    )
    protocol, transport = openClient(factory)
    protocol.dataReceived(text("slow") + text("queued"))
    assert transport.producerState == "paused"
    sweep(clock, 100, 5)
    assert not transport.aborted
    assert transport.value() == b""
    recorder.respond.clear()
    fire(pending, None)
    assert recorder.named("receivedText") == ["slow", "queued"]
    assert transport.producerState == "producing"
    sweep(clock, 15, 5)
    assert transport.value() == b""
    sweep(clock, 5, 5)
    assert transport.value() == KEEPALIVE_PING


def test_hixie76NeverPinged(recorder: RecordingResource) -> None:
    """
    hixie-76 has no ping frame: its clients are never pinged, so never
    dropped for not answering.
    """
    factory, clock = makeFactory(
        recorder, pingInterval=20.0, pingTimeout=20.0, protocol76Support=True
    )
    factory.registry.register("/demo", recorder, anyOrigin)
    protocol = factory.buildProtocol(None)
    transport = RecordingTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(DRAFT_REQUEST + BODY)
    assert protocol.websocketVersion == 0
    transport.clear()
    sweep(clock, 200, 5)
    assert transport.value() == b""
    assert not transport.aborted


# -- the idle timeout -------------------------------------------------------


def test_idleTimeout(recorder: RecordingResource) -> None:
    """
    A client from which nothing has arrived for C{idleTimeout} seconds is
    closed with 1001 "idle timeout"; a message postpones it.
    """
    factory, clock = makeFactory(recorder, pingInterval=None, idleTimeout=10.0)
    protocol, transport = openClient(factory)
    sweep(clock, 5, 2.5)
    protocol.dataReceived(text("hello"))  # at 5
    sweep(clock, 10, 2.5)  # at 15: 10 since the message
    assert transport.value() == CLOSE_IDLE
    sweep(clock, 2.5, 2.5)
    assert transport.value() == CLOSE_IDLE  # once


def test_idleDespiteAnsweredPings(recorder: RecordingResource) -> None:
    """
    The idle timeout counts pongs to our own keepalive pings as nothing: a
    client that answers every keepalive ping but sends nothing else is
    still closed after C{idleTimeout}, as documented ("pings answered or
    not"), rather than kept forever by the server's own pings.
    """
    factory, clock = makeFactory(
        recorder, pingInterval=20.0, pingTimeout=20.0, idleTimeout=60.0
    )
    protocol, transport = openClient(factory)
    pinged = 0
    for _ in range(12):  # 60 seconds
        sweep(clock, 5, 5)
        if transport.value() == KEEPALIVE_PING:
            pinged += 1
            transport.clear()
            protocol.dataReceived(KEEPALIVE_PONG)
    assert pinged == 2  # at 20 and 40
    assert transport.value() == CLOSE_IDLE
    assert not transport.aborted


# -- the sweep itself -------------------------------------------------------


def test_sweepOnlyWithClients(recorder: RecordingResource) -> None:
    """
    The sweep is one delayed call for the whole factory, there only while
    it has clients: none before the first, none after the last leaves, and
    it starts again with the next one.
    """
    factory, clock = makeFactory(recorder, pingInterval=20.0)
    assert clock.getDelayedCalls() == []
    first, _ = openClient(factory)
    second, _ = openClient(factory)
    assert len(clock.getDelayedCalls()) == 1
    lose(first)
    assert len(clock.getDelayedCalls()) == 1
    lose(second)
    assert clock.getDelayedCalls() == []
    third, _ = openClient(factory)
    assert len(clock.getDelayedCalls()) == 1
    lose(third)
    assert clock.getDelayedCalls() == []


def test_noSweepWhenOff(recorder: RecordingResource) -> None:
    """
    With keepalive and the idle timeout off, clients cost no timer at all.
    """
    factory, clock = makeFactory(recorder, pingInterval=None, idleTimeout=None)
    openClient(factory)
    assert clock.getDelayedCalls() == []


# -- over a real socket -----------------------------------------------------


def silentClient(port: int) -> tuple[bytes, bool]:
    """
    Open a client that reads but never answers; return the payload of the
    first frame the server sends it (if a ping), and whether the server then
    dropped it.
    """
    frame, dropped = firstFrameThenSilence(port, WAIT)
    return frame.payload if frame.opcode == 0x9 else b"", dropped


@pytest_twisted.ensureDeferred
async def test_silentClientDropped(echoServer: Any, wsClient: Any) -> None:
    """
    Over a real socket, with C{pingInterval=0.3} and C{pingTimeout=0.3}: a
    client that stops answering is pinged, then dropped 0.6 to 0.75 s
    after it last spoke (checked as under 1.2 s, for a loaded machine),
    with C{clientDisconnected} called once; a client that answers the
    pings, connected at the same time, stays and is served.
    """
    port, factory, resource = echoServer
    factory.pingInterval = factory.pingTimeout = 0.3
    opened: list[tuple[Any, float]] = []
    resource.respond["clientConnected"] = lambda client, _: opened.append(
        (client, reactor.seconds())
    )
    answering = await wsClient(f"ws://127.0.0.1:{port}/echo")
    silent = deferToThread(silentClient, port)
    await resource.waitFor("clientConnected", 2)
    protocol, openedAt = opened[1]
    await whenLost(protocol)
    elapsed = reactor.seconds() - openedAt
    assert await silent == (b"txclws-keepalive", True)
    assert 0.55 <= elapsed < 1.2, elapsed
    assert resource.named("clientDisconnected") == [protocol]
    assert opened[0][0] in factory.clients
    await deferToThread(answering.send, "alive")
    assert await deferToThread(answering.recv, WAIT) == "alive"
