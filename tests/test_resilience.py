"""
Resilience: write-side flow control and the slow-client policy, closing
every client on shutdown, and the server under slow, silent, hostile and
bursting clients.

The first part runs the adapter over a L{StringTransport} and a
L{MemoryReactorClock}, with the buffered amount under the test's control.
The second runs real sockets: an in-process server (the C{conftest}
fixtures), a server in a process of its own where its memory is measured
(L{ServerProcess}), and the C{twistd clws} daemon.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.ssl import DefaultOpenSSLContextFactory
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.sync.client import ClientConnection
from zope.interface.verify import verifyObject

import txclws._session.stream
from tests._daemon import Daemon, _environment
from tests._daemon import connect as wsConnect
from tests._rawsocket import (
    RawClient,
    ServerFrame,
    clientFrame,
    closePayload,
    firstFrameThenSilence,
    upgradeRequest,
)
from tests.conftest import WAIT, RecordingResource, whenLost
from tests.test_protocol import (
    REQUEST,
    RecordingTransport,
    connect,
    fire,
    makeFactory,
    openClient,
    text,
)
from tests.test_tls import makeCertificate
from txclws import (
    ConnectionClosed,
    IWebSocketClient,
    ResourceRegistry,
    WebSocketFactory,
    anyOrigin,
    runServer,
    writeToClientsText,
)
from txclws.demo import EchoResource

#: 0x88 = FIN + close; 0x0a = 10 bytes: 0x03f0 = 1008, then "too slow".
CLOSE_TOO_SLOW = b"\x88\x0a\x03\xf0too slow"

#: 0x88 = FIN + close; 0x16 = 22 bytes: 0x03e9 = 1001, then the reason.
CLOSE_GOING_AWAY = b"\x88\x16\x03\xe9server shutting down"

#: 0x81 = FIN + text; 0x64 = 100 bytes, unmasked.
HUNDRED = b"\x81\x64" + b"m" * 100


@pytest.fixture
def recorder() -> RecordingResource:
    """
    A recording resource that does not echo.
    """
    return RecordingResource(echo=False)


class Backlog:
    """
    Stands in for L{txclws._session.stream.bufferedBytes}: what each transport holds
    unsent is what the test says.
    """

    def __init__(self) -> None:
        self.amounts: dict[Any, int] = {}

    def __call__(self, transport: Any) -> int:
        return self.amounts.get(transport, 0)


@pytest.fixture
def backlog(monkeypatch: pytest.MonkeyPatch) -> Backlog:
    """
    A L{Backlog} the adapter reads its clients' buffered amounts from.
    """
    stand = Backlog()
    monkeypatch.setattr(txclws._session.stream, "bufferedBytes", stand)
    return stand


def slowFactory(recorder: RecordingResource) -> tuple[WebSocketFactory, Any]:
    """
    A factory with a 1000-byte high-water mark and a 10 s grace period, and
    keepalive off (its sweep would be one more delayed call).
    """
    return makeFactory(
        recorder, maxBuffer=1000, slowClientTimeout=10.0, pingInterval=None
    )


def lose(protocol: Any) -> None:
    """
    What the reactor does once an aborted or closed transport is gone.
    """
    protocol.connectionLost(Failure(ConnectionError("gone")))


# -- the client's new members -----------------------------------------------


def test_interface(recorder: RecordingResource) -> None:
    """
    C{bufferedAmount} and C{drained} are part of L{IWebSocketClient}, and
    the adapter still provides all of it.
    """
    assert {"bufferedAmount", "drained"} <= set(IWebSocketClient.names())
    factory, _ = slowFactory(recorder)
    protocol, _ = openClient(factory)
    assert verifyObject(IWebSocketClient, protocol)


def test_bufferedAmount(recorder: RecordingResource, backlog: Backlog) -> None:
    """
    C{client.bufferedAmount} is what L{txclws._session.stream.bufferedBytes} reads
    from the client's own transport.
    """
    factory, _ = slowFactory(recorder)
    protocol, transport = openClient(factory)
    assert protocol.bufferedAmount == 0
    backlog.amounts[transport] = 1234
    assert protocol.bufferedAmount == 1234


# -- the transport's producer: pausing reads --------------------------------


def test_registeredAsProducer(recorder: RecordingResource) -> None:
    """
    The protocol registers as its transport's streaming producer once the
    handshake succeeds, not before (a refused client has nothing to pace).
    """
    factory, _ = slowFactory(recorder)
    protocol, transport = connect(factory)
    assert transport.producer is None
    protocol, transport = openClient(factory)
    assert transport.producer is protocol
    assert transport.streaming


def test_fullBufferPausesReading(recorder: RecordingResource) -> None:
    """
    C{pauseProducing} from the transport (its write buffer is full) stops
    reading from the client; C{resumeProducing} (it has emptied) reads on.
    """
    factory, _ = slowFactory(recorder)
    protocol, transport = openClient(factory)
    protocol.pauseProducing()
    assert transport.producerState == "paused"
    protocol.resumeProducing()
    assert transport.producerState == "producing"


def test_resumeWaitsForCallback(recorder: RecordingResource) -> None:
    """
    Reading is paused for two reasons, and resumes only once neither holds:
    a drained buffer does not resume it while a callback is pending with
    events queued (past C{maxQueuedBytes}, 0 here), and a finished callback
    does not while the buffer is full.
    """
    pending: list[Deferred[None]] = []

    def slow(client: Any, message: str) -> Deferred[None]:
        pending.append(Deferred())
        return pending[-1]

    recorder.respond["receivedText"] = slow
    factory, _ = slowFactory(recorder)
    factory.maxQueuedBytes = 0
    protocol, transport = openClient(factory)
    protocol.dataReceived(text("a") + text("b"))
    protocol.pauseProducing()
    protocol.resumeProducing()
    assert transport.producerState == "paused"
    fire(pending[0], None)  # "b" is delivered, and is pending in turn
    protocol.pauseProducing()
    fire(pending[1], None)
    assert transport.producerState == "paused"
    protocol.resumeProducing()
    assert transport.producerState == "producing"


def test_drainedAtOnce(recorder: RecordingResource) -> None:
    """
    C{drained()} fires at once when the buffer is not full.
    """
    factory, _ = slowFactory(recorder)
    protocol, _ = openClient(factory)
    results: list[object] = []
    protocol.drained().addCallback(results.append)
    assert results == [None]


def test_drainedOnResume(recorder: RecordingResource) -> None:
    """
    While the buffer is full, C{drained()} waits, and every waiter fires
    when the transport resumes us.
    """
    factory, _ = slowFactory(recorder)
    protocol, _ = openClient(factory)
    protocol.pauseProducing()
    results: list[object] = []
    protocol.drained().addCallback(results.append)
    protocol.drained().addCallback(results.append)
    assert results == []
    protocol.resumeProducing()
    assert results == [None, None]


def test_drainedFailsOnLoss(recorder: RecordingResource) -> None:
    """
    C{drained()} fails with L{ConnectionClosed} when the connection is lost
    while it waits, and at once once it is lost.
    """
    factory, _ = slowFactory(recorder)
    protocol, _ = openClient(factory)
    protocol.pauseProducing()
    failures: list[Failure] = []
    protocol.drained().addErrback(failures.append)
    lose(protocol)
    protocol.drained().addErrback(failures.append)
    assert [failure.type for failure in failures] == [ConnectionClosed] * 2


# -- the slow-client policy -------------------------------------------------


def test_slowClientGraceThenClosed(
    recorder: RecordingResource, backlog: Backlog
) -> None:
    """
    A broadcast to a client with more than C{maxBuffer} unsent is still
    written, and starts the grace period; if the client is still over the
    mark when it ends, it is closed with 1008 "too slow" and gets no more
    broadcasts.  Other clients are not affected.
    """
    factory, clock = slowFactory(recorder)
    slow, slowTransport = openClient(factory)
    fine, fineTransport = openClient(factory)
    backlog.amounts[slowTransport] = 1500
    assert writeToClientsText([slow, fine], "m" * 100) == 2
    assert slowTransport.value() == fineTransport.value() == HUNDRED
    slowTransport.clear()
    clock.advance(9.999)
    assert slowTransport.value() == b""
    clock.advance(0.001)
    assert slowTransport.value() == CLOSE_TOO_SLOW
    slowTransport.clear()
    assert writeToClientsText([slow, fine], "m" * 100) == 1
    assert slowTransport.value() == b""


def test_slowClientDrainsInTime(recorder: RecordingResource, backlog: Backlog) -> None:
    """
    A client that drains its buffer within the grace period is not closed:
    the transport's C{resumeProducing} cancels the grace timer.
    """
    factory, clock = slowFactory(recorder)
    protocol, transport = openClient(factory)
    backlog.amounts[transport] = 1500
    writeToClientsText([protocol], "m" * 100)
    assert len(clock.getDelayedCalls()) == 1
    backlog.amounts[transport] = 0
    protocol.resumeProducing()
    assert clock.getDelayedCalls() == []
    clock.advance(60)
    assert transport.value() == HUNDRED


def test_slowClientBelowMarkAtGraceEnd(
    recorder: RecordingResource, backlog: Backlog
) -> None:
    """
    A client back under C{maxBuffer} when the grace period ends (though not
    empty, so never resumed) is not closed.
    """
    factory, clock = slowFactory(recorder)
    protocol, transport = openClient(factory)
    backlog.amounts[transport] = 1500
    writeToClientsText([protocol], "m" * 100)
    backlog.amounts[transport] = 800
    clock.advance(10)
    assert transport.value() == HUNDRED
    assert not transport.disconnecting


def test_twiceOverClosedAtOnce(recorder: RecordingResource, backlog: Backlog) -> None:
    """
    A broadcast that would take a client past twice C{maxBuffer} is not
    buffered: the client is closed with 1008 at once, without the message.
    """
    factory, _ = slowFactory(recorder)
    slow, slowTransport = openClient(factory)
    fine, fineTransport = openClient(factory)
    backlog.amounts[slowTransport] = 1950  # + 102 bytes of frame > 2000
    assert writeToClientsText([slow, fine], "m" * 100) == 1
    assert slowTransport.value() == CLOSE_TOO_SLOW
    assert fineTransport.value() == HUNDRED


def test_directWritesNeverDropped(
    recorder: RecordingResource, backlog: Backlog
) -> None:
    """
    The policy is for broadcasts only: a client's own C{write*} and
    C{ping} are written however far behind it is, and do not close it.
    """
    factory, clock = slowFactory(recorder)
    protocol, transport = openClient(factory)
    backlog.amounts[transport] = 10**9
    protocol.writeText("m" * 100)
    protocol.writeBinary(b"b")
    protocol.ping(b"p")
    clock.advance(60)
    # 0x82 = FIN + binary, 1 byte; 0x89 = FIN + ping, 1 byte.
    assert transport.value() == HUNDRED + b"\x82\x01b" + b"\x89\x01p"
    assert not transport.disconnecting


# -- closing: every client, and the transport's producer ----------------------


def test_closeAllClients(recorder: RecordingResource) -> None:
    """
    C{closeAllClients()} sends 1001 to every client and fires once all are
    gone: those that answer close cleanly, and those that do not are
    aborted after C{closeTimeout}.
    """
    factory, clock = slowFactory(recorder)
    clients = [openClient(factory) for _ in range(3)]
    gone = factory.closeAllClients()
    assert [transport.value() for _, transport in clients] == [CLOSE_GOING_AWAY] * 3
    for protocol, transport in clients[:2]:
        protocol.dataReceived(clientFrame(0x8, closePayload(1001)))
        assert transport.disconnecting and not transport.aborted
        lose(protocol)
    assert not gone.called
    silent, silentTransport = clients[2]
    clock.advance(factory.closeTimeout)
    assert silentTransport.aborted
    assert not gone.called
    lose(silent)
    assert gone.called
    assert clock.getDelayedCalls() == []


def test_closeAllClientsAnswered(recorder: RecordingResource) -> None:
    """
    When every client answers, C{closeAllClients()} fires as the last one
    goes, before the timeout, and leaves no timer behind.
    """
    factory, clock = slowFactory(recorder)
    clients = [openClient(factory) for _ in range(2)]
    gone = factory.closeAllClients(4000, "bye", timeout=30)
    # 0x88 = FIN + close; 5 bytes: 0x0fa0 = 4000, then "bye".
    assert [t.value() for _, t in clients] == [b"\x88\x05\x0f\xa0bye"] * 2
    for protocol, _ in clients:
        protocol.dataReceived(clientFrame(0x8, closePayload(4000)))
        lose(protocol)
    assert gone.called
    assert clock.getDelayedCalls() == []


def test_closeAllClientsNone(recorder: RecordingResource) -> None:
    """
    With no clients, C{closeAllClients()} has fired already.
    """
    factory, _ = slowFactory(recorder)
    assert factory.closeAllClients().called


def test_runServerClosesOnShutdown(recorder: RecordingResource) -> None:
    """
    L{runServer} makes the reactor's shutdown stop accepting clients, then
    wait for C{closeAllClients}: the "before shutdown" trigger stops the
    listening port and sends 1001 to every client.
    """
    clock = MemoryReactorClock()
    registry = ResourceRegistry()
    registry.register("/r", recorder, anyOrigin)
    listening = runServer(0, reactor=clock, registry=registry, pingInterval=None)
    port = listening.result
    [(_, factory, _, _)] = clock.tcpServers
    protocol = factory.buildProtocol(None)
    transport = RecordingTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(REQUEST)
    transport.clear()
    [(trigger, args, kwargs)] = clock.triggers["before"]["shutdown"]
    order: list[str] = []
    port.stopListening = lambda: order.append("stopListening")
    transport.write = lambda data: order.append("close frame")
    waiting = trigger(*args, **kwargs)
    assert order == ["stopListening", "close frame"]
    del transport.write
    protocol.close(1001)  # written already: nothing more goes out
    assert transport.value() == b""
    fired: list[object] = []
    waiting.addCallback(fired.append)
    assert fired == []
    lose(protocol)
    assert fired == [None]


@pytest.mark.parametrize(
    ("closing", "halfClose"),
    [
        ([clientFrame(0x8, closePayload(1000))], False),
        (["close", clientFrame(0x8, closePayload(1000))], False),
        ([clientFrame(0x3, b"")], True),  # a reserved opcode: fail, half-close
    ],
    ids=["client-closes", "server-closes", "protocol-error"],
)
def test_producerUnregisteredOnClose(
    recorder: RecordingResource, closing: list[Any], halfClose: bool
) -> None:
    """
    Before it closes the transport (or its writing half), the protocol
    stops being its producer: a transport with a producer registered never
    closes over TLS, and over TCP resumes a producer it paused instead of
    closing.  After a half-close, reading goes on, to see the peer's EOF.
    """
    factory, _ = slowFactory(recorder)
    protocol, transport = openClient(factory)
    protocol.pauseProducing()  # a full buffer, as when the close comes
    for step in closing:
        if step == "close":
            protocol.close()
        else:
            protocol.dataReceived(step)
    assert transport.producer is None
    assert (transport.disconnecting, transport.writeClosed) == (
        not halfClose,
        halfClose,
    )
    if halfClose:
        assert transport.producerState == "producing"


# -- over real sockets, in process ------------------------------------------


def ignoreClose(port: int) -> tuple[ServerFrame, bool]:
    """
    Open a client, read the server's close frame, never answer it; return
    the frame and whether the server then dropped the connection.
    """
    return firstFrameThenSilence(port, WAIT)


@pytest_twisted.ensureDeferred
async def test_closeIgnoredDropped(echoServer: Any) -> None:
    """
    A client that ignores our close frame is dropped C{closeTimeout} after
    it (0.5 s here; checked as under 1.5 s, for a loaded machine), and its
    resource hears C{clientDisconnected} once.
    """
    port, factory, resource = echoServer
    factory.closeTimeout = 0.5
    reading = deferToThread(ignoreClose, port)
    [client] = await resource.waitFor("clientConnected")
    closedAt = reactor.seconds()
    client.close(4000, "go")
    await whenLost(client)
    elapsed = reactor.seconds() - closedAt
    frame, dropped = await reading
    # 0x0fa0 = 4000, then "go".
    assert (frame.opcode, frame.payload, dropped) == (0x8, b"\x0f\xa0go", True)
    assert 0.5 <= elapsed < 1.5, elapsed
    assert resource.named("clientDisconnected") == [client]


def burst(port: int, count: int) -> list[str]:
    """
    Open C{count} connections, then send every upgrade request before
    reading any answer; return each answer's status line.
    """
    clients = [RawClient(port) for _ in range(count)]
    try:
        for client in clients:
            client.send(upgradeRequest("/echo"))
        return [client.readHead()[0] for client in clients]
    finally:
        for client in clients:
            client.sock.close()


@pytest_twisted.ensureDeferred
async def test_maxClientsBurst(echoServer: Any, wsClient: Any) -> None:
    """
    With C{maxClients=10}, a burst of 50 simultaneous upgrades lets exactly
    10 in and answers the other 40 with 503; once those 10 leave, the
    server serves again.
    """
    port, factory, resource = echoServer
    factory.maxClients = 10
    statuses = await deferToThread(burst, port, 50)
    assert statuses.count("HTTP/1.1 101 Switching Protocols") == 10
    assert sum(status.startswith("HTTP/1.1 503 ") for status in statuses) == 40
    await resource.waitFor("clientDisconnected", 10)
    assert factory.clients == set()
    client = await wsClient(f"ws://127.0.0.1:{port}/echo")
    await deferToThread(client.send, "after the burst")
    assert await deferToThread(client.recv, WAIT) == "after the burst"


def oneByteFragments(port: int, size: int) -> tuple[ServerFrame, float]:
    """
    Send a text message of C{size} bytes as C{size} one-byte frames; return
    the echo and the seconds from the first byte sent to the echo read.
    """
    first = clientFrame(0x1, b"a", fin=False)
    middle = clientFrame(0x0, b"a", fin=False)
    last = clientFrame(0x0, b"a")
    data = first + middle * (size - 2) + last
    with RawClient(port) as client:
        client.sock.settimeout(120)  # correctness only: no time limit
        client.handshake()
        start = time.monotonic()
        client.send(data)
        echo = client.readFrame()
        return echo, time.monotonic() - start


@pytest_twisted.ensureDeferred
async def test_oneByteFragments(echoServer: Any) -> None:
    """
    A 1 MiB message sent as 1,048,576 one-byte fragments (7 MiB of frames)
    is accepted, reassembled and delivered whole.  No time is asserted; the
    time taken is printed (run with C{-s} to see it).
    """
    port, factory, resource = echoServer
    size = 1 << 20
    assert factory.maxMessageSize >= size
    echo, seconds = await deferToThread(oneByteFragments, port, size)
    print(f"\n1 MiB in 1-byte fragments: echoed after {seconds:.2f} s")
    assert (echo.fin, echo.opcode, len(echo.payload)) == (True, 0x1, size)
    assert echo.payload == b"a" * size
    assert resource.named("receivedText") == ["a" * size]


def closeWithBigReply(port: int) -> tuple[int, int | None, bool]:
    """
    In one packet, send a message (whose answer is 1 MiB) and a close
    frame; read the answer and the close echo; return the answer's size,
    the echoed code, and whether the server then closed TCP.
    """
    with RawClient(port) as client:
        client.handshake()
        client.send(clientFrame(0x1, b"big") + clientFrame(0x8, closePayload(1000)))
        before, close = client.readUntilClose()
        return (
            sum(len(frame.payload) for frame in before),
            close.closeCode,
            client.atEOF(),
        )


@pytest_twisted.ensureDeferred
async def test_closeWhileWriteBufferFull(echoServer: Any) -> None:
    """
    The client's close arrives while the server's write buffer is full
    (the answer to the message just before it is 1 MiB): once the buffer
    has drained, the server closes TCP.  Twisted resumes a paused producer
    instead of closing, so the protocol must stop being one first.
    """
    port, _, resource = echoServer
    resource.respond["receivedText"] = lambda client, _: client.writeBinary(
        b"\x00" * (1 << 20)
    )
    assert await deferToThread(closeWithBigReply, port) == (1 << 20, 1000, True)


@pytest_twisted.async_yield_fixture
async def tlsEcho(tmp_path: Path) -> Any:
    """
    An echo server on an in-process TLS port, with a throw-away
    certificate: yields C{(port, certificate path, factory)}.  Afterwards
    it stops listening and drops any client left.
    """
    cert, key = makeCertificate(tmp_path)
    registry = ResourceRegistry()
    registry.register("/echo", EchoResource(), anyOrigin)
    factory = WebSocketFactory(registry, closeTimeout=30)
    context = DefaultOpenSSLContextFactory(str(key), str(cert))
    listening = reactor.listenSSL(0, factory, context, interface="127.0.0.1")
    yield listening.getHost().port, cert, factory
    await listening.stopListening()
    for client in list(factory.clients):
        client.abort()
    if factory.clients:
        gone: Deferred[None] = Deferred()
        factory._whenEmpty.append(gone)
        await gone


def closeOverTLS(port: int, cert: Path) -> tuple[int | None, bool, float]:
    """
    Over TLS: open, send a close frame, read the echo; return its code,
    whether the server then closed the connection, and how long after the
    close frame was sent.
    """
    context = ssl.create_default_context(cafile=str(cert))
    with RawClient(port) as client:
        client.sock = context.wrap_socket(client.sock, server_hostname="localhost")
        client.handshake()
        start = time.monotonic()
        client.send(clientFrame(0x8, closePayload(1000)))
        _, close = client.readUntilClose()
        eof = client.atEOF()
        return close.closeCode, eof, time.monotonic() - start


@pytest_twisted.ensureDeferred
async def test_wssServerClosesFirst(tlsEcho: tuple[int, Path, Any]) -> None:
    """
    Over C{wss://} too the server closes the connection as soon as the
    close handshake is done (RFC 6455 7.1.1), rather than leave the client
    to time out: TLS does not shut down while a producer is registered.
    """
    port, cert, _ = tlsEcho
    code, eof, seconds = await deferToThread(closeOverTLS, port, cert)
    assert (code, eof) == (1000, True)
    assert seconds < 2, seconds


# -- over real sockets, the server in a process of its own ------------------

SERVER = Path(__file__).with_name("_resilience_server.py")

#: The broadcast of the slow-reader test: 1,600 messages of 64 KiB.
SIZE = 64 * 1024
COUNT = 1600

#: The slow-reader test's high-water mark, and the bound on the growth of
#: the server's peak RSS: the slow client's buffer (at most twice the
#: mark, 8 MiB), as much again for Twisted joining that buffer into one
#: string when it writes, and 24 MiB for the readers' messages in flight
#: and the allocator's slack.  Measured: about 10 MiB.  Without the policy
#: the slow client alone holds about 96 MiB (measured: 98 MiB of growth).
MAX_BUFFER = 4 * 1024 * 1024
RSS_BOUND = 2 * MAX_BUFFER + 2 * MAX_BUFFER + 24 * 1024 * 1024


class ServerProcess:
    """
    A C{tests/_resilience_server.py} process serving on 127.0.0.1.

    @ivar port: the port it listens on.
    """

    def __init__(self, **limits: Any) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), json.dumps(limits)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=_environment(),
            text=True,
        )
        ready, _, _ = select.select([self.process.stdout], [], [], WAIT)
        assert self.process.stdout is not None
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("LISTENING "):
            self.stop()
            raise AssertionError(f"the server did not start: {line!r}")
        self.port = int(line.split()[1])

    def memory(self, field: str) -> int:
        """
        A figure of C{/proc/PID/status}, in bytes: C{VmRSS} (resident now)
        or C{VmHWM} (the most resident so far).
        """
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name == field:
                number, unit = value.split()
                assert unit == "kB"
                return int(number) * 1024
        raise KeyError(field)

    def stop(self) -> None:
        """
        Kill it.
        """
        self.process.kill()
        self.process.wait(WAIT)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SmallWindowClient(RawClient):
    """
    A L{RawClient} whose receive buffer is a few KiB, set before it
    connects so that the TCP window it offers stays that small.
    """

    def __init__(self, port: int, target: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(WAIT)
        self.sock.connect(("127.0.0.1", port))
        self._buffer = bytearray()
        self.handshake(target)


def readFlood(client: ClientConnection) -> list[int]:
    """
    Read broadcast messages up to C{"done"}; return their sequence numbers.
    """
    sequences = []
    while True:
        message = client.recv(WAIT)
        if message == "done":
            return sequences
        assert isinstance(message, bytes) and len(message) == SIZE
        sequences.append(struct.unpack("!Q", message[:8])[0])


def test_slowReaderBounded() -> None:
    """
    A client that stops reading while 100 MiB are broadcast to it and to
    two reading clients: the server's peak RSS grows by less than
    L{RSS_BOUND} (40 MiB, with C{maxBuffer} 4 MiB); the readers get every message,
    in order; the slow client, when it finally reads, gets every message it
    was sent, in order with none missing, then close 1008 "too slow", and
    the server closes TCP once it answers.
    """
    with (
        ServerProcess(maxBuffer=MAX_BUFFER, closeTimeout=60) as server,
        ExitStack() as stack,
    ):
        slow = stack.enter_context(SmallWindowClient(server.port, "/flood?role=slow"))
        readers = [
            stack.enter_context(
                wsConnect(f"ws://127.0.0.1:{server.port}/flood?role=reader")
            )
            for _ in range(2)
        ]
        baseline = server.memory("VmRSS")
        with ThreadPoolExecutor(len(readers)) as pool:
            reading = [pool.submit(readFlood, reader) for reader in readers]
            readers[0].send(f"{COUNT} {SIZE}")
            received = [each.result(timeout=120) for each in reading]
        growth = server.memory("VmHWM") - baseline
        print(f"\nslow reader: server peak RSS growth {growth / 2**20:.1f} MiB")
        assert received == [list(range(COUNT))] * 2
        assert growth < RSS_BOUND, growth
        before, close = slow.readUntilClose()
        sequences = [struct.unpack("!Q", frame.payload[:8])[0] for frame in before]
        print(f"slow reader: {len(before)} messages, then close {close.closeCode}")
        assert sequences == list(range(len(before)))
        assert 0 < len(before) < COUNT // 4
        assert all(len(frame.payload) == SIZE for frame in before)
        assert (close.closeCode, close.payload[2:]) == (1008, b"too slow")
        slow.send(clientFrame(0x8, closePayload(1008)))
        assert slow.atEOF()


def flood(client: RawClient, pings: int, stall: float) -> int:
    """
    Send up to C{pings} pings (125-byte payloads) without reading, until
    the server has accepted nothing for C{stall} seconds; return how many
    were sent whole.
    """
    batch = clientFrame(0x9, b"p" * 125) * 1000
    client.sock.setblocking(False)
    sent = 0
    total = pings * len(batch) // 1000
    while sent < total:
        _, writable, _ = select.select([], [client.sock], [], stall)
        if not writable:
            break
        offset = sent % len(batch)
        try:
            sent += client.sock.send(batch[offset : offset + total - sent])
        except BlockingIOError:
            continue
    return sent // (len(batch) // 1000)


def test_pingFloodBounded() -> None:
    """
    A client that sends a flood of pings (up to 1,000,000, 131 MB) and never
    reads their pongs: the server stops reading from it once its write
    buffer is full, so the flood stalls, the server's peak RSS grows by
    under 10 MiB (answering every ping would queue 127 MB of pongs), and
    the server keeps serving another client meanwhile.
    """
    with ServerProcess() as server, SmallWindowClient(server.port, "/echo") as flooder:
        baseline = server.memory("VmRSS")
        sent = flood(flooder, 1_000_000, stall=2.0)
        with wsConnect(f"ws://127.0.0.1:{server.port}/echo") as other:
            other.send("still served")
            assert other.recv(WAIT) == "still served"
        growth = server.memory("VmHWM") - baseline
        print(
            f"\nping flood: {sent} pings sent, peak RSS growth {growth / 2**20:.1f} MiB"
        )
        assert sent < 1_000_000
        assert growth < 10 * 1024 * 1024, growth


# -- the daemon -------------------------------------------------------------


def test_sigtermClosesEveryClient() -> None:
    """
    SIGTERM to C{twistd -n clws --close-timeout 2} with three C{websockets}
    clients and one raw client that never answers a close: each gets close
    1001; the daemon waits the close timeout for the silent one, drops it,
    and exits (within 2 s + 4 s of slack).
    """
    port = "tcp:0:interface=127.0.0.1"
    with Daemon("--port", port, "--close-timeout", "2") as daemon, ExitStack() as stack:
        clients = [
            stack.enter_context(wsConnect(daemon.url("/echo"))) for _ in range(3)
        ]
        silent = stack.enter_context(RawClient(daemon.port))
        silent.handshake("/echo")
        daemon.waitForLog("open ", count=4)
        start = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        for client in clients:
            with pytest.raises(WsConnectionClosed):
                client.recv(WAIT)
            assert (client.close_code, client.close_reason) == (
                1001,
                "server shutting down",
            )
        frame = silent.readFrame()
        assert (frame.closeCode, frame.payload[2:]) == (1001, b"server shutting down")
        daemon.process.wait(WAIT)
        elapsed = time.monotonic() - start
        print(f"\nSIGTERM: twistd exited after {elapsed:.2f} s")
        # twistd re-raises the signal that stopped it, once it has stopped.
        assert daemon.process.returncode == -signal.SIGTERM
        daemon.waitForLog("Server Shut Down")
        assert 2 <= elapsed < 6, elapsed
        # 1006: the silent client was dropped, with no close frame from it.
        daemon.waitForLog(r"closed .* code=1006 ")
