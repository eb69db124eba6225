"""
Issue 17's production features on HTTP/2 WebSocket streams (RFC 8441):
trusted-proxy resolution, the handshake cap per address, per-client rate
limits (close and pause), and metrics, each as on HTTP/1.1.  A real
L{WebSocketSite} on loopback TLS (ALPN C{h2}) or C{h2c}, and the blocking
C{h2} client of L{tests._h2client}, run in a thread.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import formatEvent, globalLogPublisher

from tests._h2client import TIMEOUT, H2Client, maskedFrame
from tests._h2server import Server, accept, closeCode, inThread, listen, stop
from tests.conftest import RecordingResource
from txclws import RateLimit
from txclws._core.deflate import PerMessageDeflate
from txclws._metrics import ServerMetrics

TEXT, BINARY, CLOSE = 0x1, 0x2, 0x8

#: A chain a trusted proxy reports: a made-up address, then the client's.
_CHAIN = ("x-forwarded-for", "192.0.2.66, 198.51.100.20")

Start = Callable[..., Awaitable[Server]]


@pytest_twisted.async_yield_fixture
async def serve(h2certificate: tuple[Path, Path]) -> AsyncIterator[Start]:
    """
    Start a L{Server} whose factory has the given arguments (a recording
    echo resource unless C{resource=} is given); stopped after the test.
    """
    started: list[Server] = []

    async def start(resource: RecordingResource | None = None, **kwargs: Any) -> Server:
        server = Server(resource or RecordingResource(), **kwargs)
        started.append(await listen(server, h2certificate))
        return server

    yield start
    for server in started:
        await stop(server)


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """
    The text of every log event while the test runs.
    """
    lines: list[str] = []

    def observe(event: Any) -> None:
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


async def settle(condition: Callable[[], bool], seconds: float = TIMEOUT) -> None:
    """
    Let the reactor run until C{condition()} holds (bounded).
    """
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        await deferLater(reactor, 0.01, lambda: None)


def onlyClient(server: Server) -> Any:
    """
    The server's one open client.
    """
    [client] = server.factory.clients
    return client


# -- trusted proxies -------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_forwardedForFromTrustedPeer(serve: Start, logged: list[str]) -> None:
    """
    Over TLS, from a trusted peer (127.0.0.1), the CONNECT's
    C{x-forwarded-for} gives the client's address: C{client.host} is the
    rightmost untrusted one, and the open is logged with it.
    """
    server = await serve(trustedProxies=("127.0.0.1",))

    def run() -> tuple[str, int]:
        with H2Client(server.tlsPort) as client:
            accept(client, extra=[_CHAIN])
            found = onlyClient(server)
            return found.host, found.port

    assert await inThread(run) == ("198.51.100.20", 0)
    assert any(line.startswith("open 198.51.100.20 /echo") for line in logged)


@pytest_twisted.ensureDeferred
async def test_forwardedHeaderFromTrustedPeer(serve: Start) -> None:
    """
    Over C{h2c}, RFC 7239 C{forwarded} (a quoted IPv6 address and port)
    from a trusted peer is the client's address, ahead of
    C{x-forwarded-for}.
    """
    server = await serve(trustedProxies=("127.0.0.0/8",))

    def run() -> tuple[str, int]:
        extra = [("forwarded", 'for="[2001:db8::1]:4711";proto=https'), _CHAIN]
        with H2Client(server.plainPort, tls=False) as client:
            accept(client, extra=extra)
            found = onlyClient(server)
            return found.host, found.port

    assert await inThread(run) == ("2001:db8::1", 4711)


@pytest_twisted.ensureDeferred
async def test_forwardedIgnoredFromUntrustedPeer(
    serve: Start, logged: list[str]
) -> None:
    """
    From a peer that is not a trusted proxy, the headers are ignored: the
    client is the peer itself, and no forwarded address is logged.
    """
    server = await serve(trustedProxies=("10.0.0.0/8",))

    def run() -> tuple[tuple[str, int], int]:
        with H2Client(server.tlsPort) as client:
            accept(client, extra=[_CHAIN])
            found = onlyClient(server)
            return (found.host, found.port), client.sock.getsockname()[1]

    (host, port), ourPort = await inThread(run)
    assert (host, port) == ("127.0.0.1", ourPort)
    assert not [line for line in logged if "198.51.100.20" in line]


@pytest_twisted.ensureDeferred
async def test_refusalAndCloseLoggedWithClientAddress(
    serve: Start, logged: list[str]
) -> None:
    """
    Behind a trusted proxy, a stream refused by the origin check (403) is
    logged with the client's address, as is an accepted stream's close.
    """
    server = await serve(trustedProxies=("127.0.0.1",))

    def run() -> int | None:
        with H2Client(server.tlsPort) as client:
            refused = client.websocket("/strict", extra=[_CHAIN], origin="https://no")
            status = client.response(refused).status
            streamID = accept(client, extra=[_CHAIN])
            client.send(streamID, maskedFrame(CLOSE, b"\x03\xe8"))
            client.whole(streamID)
            return status

    assert await inThread(run) == 403
    await settle(lambda: not server.factory.clients)
    assert [line for line in logged if line.startswith("refused 198.51.100.20")]
    assert [line for line in logged if line.startswith("closed 198.51.100.20 /echo")]


# -- the handshake cap -----------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_handshakeCapRefusesStream(serve: Start) -> None:
    """
    At C{maxHandshakesPerSecond=2}, a third CONNECT in the same second is
    refused on its stream alone: 503 with C{retry-after}; the connection
    goes on, its open WebSocket echoes and a page is served on it.
    """
    server = await serve(maxHandshakesPerSecond=2)

    def run() -> tuple[Any, ...]:
        with H2Client(server.tlsPort) as client:
            # All three at once: no token comes back in between.
            first, second, third = (client.websocket() for _ in range(3))
            statuses = [client.response(s).status for s in (first, second)]
            refused = client.response(third)
            client.send(first, maskedFrame(TEXT, b"still"))
            echo = client.frames(first)[0]
            page = client.whole(client.get("/"))
            return statuses, refused, echo, page.status, client.goaway

    statuses, refused, echo, page, goaway = await inThread(run)
    assert statuses == [200, 200]
    assert refused.status == 503
    assert refused.headers["retry-after"] == "1"
    assert echo == (True, TEXT, b"still")
    assert (page, goaway) == (200, None)


@pytest_twisted.ensureDeferred
async def test_handshakeCapPerClientAddress(serve: Start) -> None:
    """
    Behind a trusted proxy the cap counts each client address the proxy
    reports: one CONNECT a second each for 192.0.2.1 and 192.0.2.2 is
    accepted, a second one for 192.0.2.1 refused.
    """
    server = await serve(trustedProxies=("127.0.0.1",), maxHandshakesPerSecond=1)

    def run() -> list[int | None]:
        with H2Client(server.plainPort, tls=False) as client:
            streams = [
                client.websocket(extra=[("x-forwarded-for", address)])
                for address in ("192.0.2.1", "192.0.2.2", "192.0.2.1")
            ]
            return [client.response(streamID).status for streamID in streams]

    assert await inThread(run) == [200, 200, 503]


# -- rate limits -----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_rateLimitClosesStream(serve: Start) -> None:
    """
    Policy "close" at 10 messages/s: a stream that sends 40 at once is
    closed 1008 "rate limit" after about 10 echoes; another WebSocket on
    the same connection keeps echoing, and the connection stays up.
    """
    server = await serve(rateLimit=RateLimit(messagesPerSecond=10))

    def run() -> tuple[Any, ...]:
        with H2Client(server.tlsPort) as client:
            normal, flood = accept(client), accept(client)
            client.send(flood, b"".join(maskedFrame(TEXT, b"x") for _ in range(40)))
            client.whole(flood)
            frames = client.frames(flood, 100)
            client.send(normal, maskedFrame(TEXT, b"fine"))
            return frames, client.frames(normal)[0], client.goaway

    frames, echo, goaway = await inThread(run)
    *echoes, close = frames
    assert 10 <= len(echoes) <= 12, len(echoes)
    assert close[1] == CLOSE and closeCode(close[2]) == 1008
    assert close[2][2:] == b"rate limit"
    assert echo == (True, TEXT, b"fine")
    assert goaway is None


@pytest_twisted.ensureDeferred
async def test_ratePausePolicyWithholdsWindow(serve: Start) -> None:
    """
    Policy "pause" at 20,000 bytes/s (1 s burst): a stream that sends as
    fast as its window lets it for 1.5 s has only what the rate allows
    delivered, and the rest held unacknowledged (no WINDOW_UPDATE), so
    it cannot send much beyond its 256 KiB stream window; it is not
    closed.  Unpaused it would send megabytes.
    """
    limit = RateLimit(bytesPerSecond=20000, policy="pause")
    server = await serve(RecordingResource(echo=False), rateLimit=limit)
    frame = maskedFrame(BINARY, b"z" * 16000)

    def run() -> tuple[int, int, Any]:
        with H2Client(server.plainPort, tls=False) as client:
            streamID = accept(client)
            sent = 0
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                window = client.conn.local_flow_control_window(streamID)
                if window >= len(frame):
                    client.conn.send_data(streamID, frame)
                    client.flush()
                    sent += len(frame)
                    continue
                client.sock.settimeout(0.05)
                try:
                    client.receiveOnce()
                except TimeoutError:
                    pass
                finally:
                    client.sock.settimeout(TIMEOUT)
            delivered = len(server.resource.named("receivedBinary"))
            return sent, delivered, client.streams[streamID]

    sent, delivered, stream = await inThread(run)
    assert (1 << 18) - len(frame) <= sent <= 400000, sent
    assert 1 <= delivered <= 6, delivered
    assert not stream.ended and stream.reset is None and not stream.data


# -- metrics ---------------------------------------------------------------


def sample(metrics: ServerMetrics, name: str, **labels: str) -> float:
    """
    One sample's value; 0 if it was never counted.
    """
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest_twisted.ensureDeferred
async def test_metricsCountStreams(serve: Start) -> None:
    """
    With metrics on, a WebSocket stream is counted as a connection opened
    and closed (101, the gauge back at 0, its close code), its messages
    both ways, and each refused stream by its status (404, 403, 426, 503).
    """
    metrics = ServerMetrics()
    server = await serve(metrics=metrics, maxClients=1)

    def run() -> list[int | None]:
        with H2Client(server.tlsPort) as client:
            streamID = accept(client)
            for text in (b"a", b"bb"):
                client.send(streamID, maskedFrame(TEXT, text))
            client.frames(streamID, 2)
            refused = [
                client.websocket("/nowhere"),
                client.websocket("/strict", origin="https://no"),
                client.websocket(version="12"),
                client.websocket(),  # one client already: maxClients
            ]
            statuses = [client.response(s).status for s in refused]
            client.send(streamID, maskedFrame(CLOSE, b"\x03\xe8"))
            client.whole(streamID)
            return statuses

    statuses = await inThread(run)
    assert statuses == [404, 403, 426, 503]
    await settle(lambda: not server.factory.clients)
    total = "txclws_handshakes_total"
    counted = [sample(metrics, total, status=str(s)) for s in [101, *statuses]]
    assert counted == [1, 1, 1, 1, 1]
    gauge = sample(metrics, "txclws_connections", resource="/echo", version="13")
    assert gauge == 0
    assert sample(metrics, "txclws_messages_received_total") == 2
    assert sample(metrics, "txclws_messages_sent_total") == 2
    assert sample(metrics, "txclws_closes_total", code="1000") == 1
    assert sample(metrics, "txclws_closes_sent_total", code="1000") == 1


@pytest_twisted.ensureDeferred
async def test_metricsDeflateOnStream(serve: Start) -> None:
    """
    A permessage-deflate stream counts in the deflate metrics, as an
    HTTP/1.1 connection does: its wire bytes and the message's bytes.
    """
    metrics = ServerMetrics()
    server = await serve(metrics=metrics, deflate=PerMessageDeflate())
    compressor = zlib.compressobj(wbits=-15)
    body = compressor.compress(b"squeeze " * 100) + compressor.flush(zlib.Z_SYNC_FLUSH)
    frame = bytearray(maskedFrame(TEXT, body[:-4]))
    frame[0] |= 0x40  # RSV1: compressed (RFC 7692 6)

    def run() -> None:
        with H2Client(server.tlsPort) as client:
            extra = [("sec-websocket-extensions", "permessage-deflate")]
            streamID = accept(client, extra=extra)
            client.send(streamID, bytes(frame))
            client.frames(streamID)

    await inThread(run)
    payload = sample(metrics, "txclws_deflate_received_payload_bytes_total")
    assert payload == 800
    assert sample(metrics, "txclws_deflate_received_wire_bytes_total") == len(frame)
