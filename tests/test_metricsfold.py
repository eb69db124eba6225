"""
Tests for the per-session counts of the Prometheus metrics and their fold
(L{txclws._metricsmeter}, L{txclws._metrics.ServerMetrics.flush}, issue
17): in memory, so that the exact moment a count reaches a metric can be
checked.  The real daemons are in L{tests.test_metrics}.
"""

from __future__ import annotations

import base64
import sys
import threading
import zlib
from typing import Any

from prometheus_client import Counter, generate_latest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from txclws import (
    PerMessageDeflate,
    ResourceRegistry,
    WebSocketFactory,
    WebSocketResource,
    anyOrigin,
)
from txclws._metrics import ServerMetrics
from txclws._metricsmeter import Meter

KEY = base64.b64encode(b"0123456789abcdef").decode()
MASK = b"\x00\x00\x00\x00"


def frame(opcode: int, payload: bytes) -> bytes:
    """
    A short client frame (RFC 6455 5.2), FIN set, masked with zeros: 6
    bytes of header and mask.
    """
    assert len(payload) < 126
    return bytes((0x80 | opcode, 0x80 | len(payload))) + MASK + payload


class Echo(WebSocketResource):
    """
    Echo text at once; a binary message is answered when the test fires
    the Deferred its callback returned.
    """

    def __init__(self) -> None:
        self.pending: list[Deferred[None]] = []

    def receivedText(self, client: Any, message: str) -> None:
        client.writeText(message)

    def receivedBinary(self, client: Any, message: bytes) -> Deferred[None]:
        waiting: Deferred[None] = Deferred()
        self.pending.append(waiting)
        return waiting


def serve(
    metrics: ServerMetrics | None, extensions: str = ""
) -> tuple[Any, StringTransport, Echo]:
    """
    A factory with C{metrics}, one client past its handshake on C{/echo}
    (offering C{extensions}, if any): its protocol, its transport and the
    resource.
    """
    echo = Echo()
    registry = ResourceRegistry()
    registry.register("/echo", echo, anyOrigin)
    factory = WebSocketFactory(
        registry,
        pingInterval=None,
        reactor=MemoryReactorClock(),
        metrics=metrics,
        deflate=PerMessageDeflate() if extensions else None,
    )
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(
        (
            "GET /echo HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            + (f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else "")
            + "\r\n"
        ).encode()
    )
    assert transport.value().startswith(b"HTTP/1.1 101 ")
    return protocol, transport, echo


def scraped(metrics: ServerMetrics, name: str) -> float:
    """
    One sample of C{metrics}' registry, as a scrape of it sees it.
    """
    value = metrics.registry.get_sample_value(name)
    return 0.0 if value is None else value


def held(counter: Counter) -> float:
    """
    What C{counter} itself holds, collected without the registry (so
    without a fold).
    """
    [family] = counter.collect()
    return next(s.value for s in family.samples if s.name.endswith("_total"))


def test_scrapeSeesOpenConnection() -> None:
    """
    A scrape of the registry (by any exposer: no refresh called) while the
    client is still open sees every message, byte and latency so far;
    a second scrape after more traffic counts nothing twice.
    """
    metrics = ServerMetrics()
    protocol, _, _ = serve(metrics)
    protocol.dataReceived(frame(0x1, b"abc") * 4)
    assert scraped(metrics, "txclws_messages_received_total") == 4
    assert scraped(metrics, "txclws_messages_sent_total") == 4
    assert scraped(metrics, "txclws_received_bytes_total") == 4 * 9
    assert scraped(metrics, "txclws_sent_bytes_total") == 4 * 5
    assert scraped(metrics, "txclws_callback_seconds_count") == 4
    protocol.dataReceived(frame(0x1, b"de"))
    text = generate_latest(metrics.registry).decode()
    assert "txclws_messages_received_total 5.0" in text
    assert "txclws_callback_seconds_count 5.0" in text
    assert 'txclws_callback_seconds_bucket{le="+Inf"} 5.0' in text
    assert scraped(metrics, "txclws_received_bytes_total") == 4 * 9 + 8
    assert scraped(metrics, "txclws_sent_bytes_total") == 4 * 5 + 4


def test_countsWaitForFold() -> None:
    """
    Per message the metrics themselves are not touched: the counts are
    the session's until a fold (here L{ServerMetrics.flush}).
    """
    metrics = ServerMetrics()
    protocol, _, _ = serve(metrics)
    protocol.dataReceived(frame(0x1, b"abc") * 3)
    assert held(metrics.messagesIn) == 0
    metrics.flush()
    assert held(metrics.messagesIn) == 3
    assert held(metrics.messagesOut) == 3


def test_closeFolds() -> None:
    """
    A client's close folds its counts: the metrics hold them without a
    scrape.
    """
    metrics = ServerMetrics()
    protocol, _, _ = serve(metrics)
    protocol.dataReceived(frame(0x1, b"abc") * 2 + frame(0x8, b"\x03\xe8"))
    protocol.connectionLost(Failure(ConnectionDone()))
    assert held(metrics.messagesIn) == 2
    assert held(metrics.messagesOut) == 2
    assert held(metrics.bytesIn) == 2 * 9 + 8
    assert held(metrics.bytesOut) == 2 * 5 + 4
    assert not metrics._dirty
    [family] = metrics.closesSent.collect()
    sent = {
        s.labels["code"]: s.value for s in family.samples if s.name.endswith("_total")
    }
    assert sent == {"1000": 1}


def test_foldEachTurn() -> None:
    """
    With C{foldEachTurn} (multiprocess mode), the first count of a turn
    schedules one fold for the end of the turn, however many messages
    follow; the next turn's counts schedule the next.
    """
    metrics = ServerMetrics(foldEachTurn=True)
    protocol, _, _ = serve(metrics)
    clock = protocol.factory.reactor
    clock.advance(0)
    before = len(clock.getDelayedCalls())
    protocol.dataReceived(frame(0x1, b"abc") * 5)
    assert len(clock.getDelayedCalls()) == before + 1
    assert held(metrics.messagesIn) == 0
    clock.advance(0)
    assert held(metrics.messagesIn) == 5
    assert len(clock.getDelayedCalls()) == before
    protocol.dataReceived(frame(0x1, b"x"))
    clock.advance(0)
    assert held(metrics.messagesIn) == 6


def test_notEachTurnByDefault() -> None:
    """
    Out of multiprocess mode, counting schedules nothing: folds happen at
    scrapes and closes only.
    """
    metrics = ServerMetrics()
    assert not metrics.foldEachTurn
    protocol, _, _ = serve(metrics)
    clock = protocol.factory.reactor
    before = len(clock.getDelayedCalls())
    protocol.dataReceived(frame(0x1, b"abc") * 5)
    assert len(clock.getDelayedCalls()) == before


def test_deferredLatency() -> None:
    """
    A callback that returns a Deferred is timed until it fires, even if
    that is after the client closed: the next scrape has it.
    """
    metrics = ServerMetrics()
    protocol, _, echo = serve(metrics)
    protocol.dataReceived(frame(0x2, b"b"))
    assert scraped(metrics, "txclws_messages_received_total") == 1
    assert scraped(metrics, "txclws_callback_seconds_count") == 0
    protocol.connectionLost(Failure(ConnectionDone()))
    echo.pending[0].callback(None)
    assert scraped(metrics, "txclws_callback_seconds_count") == 1


def test_foldInAnotherThread() -> None:
    """
    Folds in another thread (an exposer serving the registry from a
    thread of its own) while the reactor's thread counts lose nothing.
    """
    metrics = ServerMetrics()
    meter = Meter(metrics, StringTransport(), 13)
    stop = threading.Event()

    def fold() -> None:
        while not stop.is_set():
            metrics.flush()

    folder = threading.Thread(target=fold, daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: races show
    folder.start()
    try:
        for _ in range(200_000):
            meter.received(1, False)
    finally:
        stop.set()
        folder.join(10)
        sys.setswitchinterval(interval)
    assert not folder.is_alive()
    metrics.flush()
    assert held(metrics.bytesIn) == 200_000


def test_offLeavesSessionAlone() -> None:
    """
    Without metrics the session writes to its transport itself; with them,
    through its meter.
    """
    protocol, transport, _ = serve(None)
    assert protocol._sink is transport
    protocol, _, _ = serve(ServerMetrics())
    assert isinstance(protocol._sink, Meter)


def test_deflateCounts() -> None:
    """
    On a permessage-deflate connection (RFC 7692), the wire bytes read and
    the message bytes after decompression are both counted, exactly.
    """
    metrics = ServerMetrics()
    protocol, transport, _ = serve(metrics, "permessage-deflate")
    assert b"permessage-deflate" in transport.value()
    compressor = zlib.compressobj(wbits=-15)
    text = b"hello " * 20
    body = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert body.endswith(b"\x00\x00\xff\xff")
    body = body[:-4]  # RFC 7692 7.2.1: the sync flush's tail is removed
    wire = bytes((0xC1, 0x80 | len(body))) + MASK + body  # FIN, RSV1, text
    protocol.dataReceived(wire)
    assert scraped(metrics, "txclws_messages_received_total") == 1
    assert scraped(metrics, "txclws_deflate_received_wire_bytes_total") == len(wire)
    assert scraped(metrics, "txclws_deflate_received_payload_bytes_total") == 120
