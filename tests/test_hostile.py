"""
Hostile clients against every entry point (issues 11 and 12): each case
runs against the direct L{WebSocketFactory} (C{direct}), L{mountWebSocket}
in a L{WebSocketSite} (C{site}) and a real C{twistd -n clws} process
(C{daemon}), all with the same limits (L{tests._hostile.LIMITS}), and
asserts the same answer on each: the exact HTTP status or close code,
whether the server closes the connection, in how long, how much its memory
grows (the bounds of L{tests._hostile.BOUNDS}, the security table), and
that a well-behaved bystander on the same server is still served.

Every raw exchange runs in a thread (C{deferToThread}) while the reactor
serves the in-process servers; every wait is bounded.

The fuzz target at the end runs C{TXCLWS_HOSTILE_FUZZ_EXAMPLES} examples
(30 by default, for CI); for a longer run by hand:

    TXCLWS_HOSTILE_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest \\
        tests/test_hostile.py -k fuzz

C{TXCLWS_HOSTILE_TLS_CLIENTS} (20 by default) sets how many clients never
finish TLS; issue 12 asks for 200 by hand.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.python.reflect import namedAny
from twisted.web.resource import Resource

from tests._daemon import Daemon
from tests._debian import findOrInstall
from tests._h2client import H2Client, maskedFrame
from tests._h2server import accept
from tests._hostile import (
    GOOD_ORIGIN,
    LIMITS,
    RESOURCES,
    Bystander,
    HostileClient,
    PeakRSS,
    clientFrame,
    daemonArguments,
    deadline,
    failedWith,
    halfClientHello,
    openClient,
    parseFrames,
    rssBound,
    serverHolds,
    socketDescriptors,
    splitResponse,
    statusOf,
    tlsClient,
    upgradeOver,
    upgradeRequest,
    waitUntil,
)
from tests._rawsocket import SAMPLE_KEY, ServerFrame, closePayload
from tests.conftest import failuresLogged
from tests.test_bad_input import REFUSALS, VIOLATIONS
from tests.test_fuzz import frames as fuzzFrames
from tests.test_hixie76 import BODY, KEY1, KEY2
from tests.test_tls import makeCertificate
from txclws import (
    PerMessageDeflate,
    ResourceRegistry,
    WebSocketFactory,
    anyOrigin,
    originExact,
)
from txclws.web import WebSocketSite, mountWebSocket

ENTRY_POINTS = ["direct", "site", "daemon"]

#: Log lines of a daemon that count as a failure: a warning or worse, or a
#: traceback (what L{failuresLogged} finds in-process).
_DAEMON_FAILURE = re.compile(r"#(warn|error|critical)\]|Traceback|Unhandled")


# -- the entry points -----------------------------------------------------------


@dataclass
class Target:
    """
    One server of the suite, however it was started.

    @ivar kind: C{direct}, C{site} or C{daemon}.
    @ivar port: the TCP port it listens on, on 127.0.0.1.
    @ivar pid: the process serving (this one, in-process).
    @ivar factory: the factory, in-process; L{None} for the daemon.
    @ivar daemon: the daemon, or L{None}.
    """

    kind: str
    port: int
    pid: int
    factory: WebSocketFactory | None = None
    daemon: Daemon | None = None
    stop: Callable[[], Any] = field(default=lambda: None)
    built: list[Any] = field(default_factory=list)

    def mark(self) -> int:
        """
        Where the daemon's log is now (0 in-process).
        """
        return len(self.daemon.log()) if self.daemon is not None else 0

    def failures(self, logEvents: Any, mark: int) -> list[Any]:
        """
        What the server logged as a failure since C{mark}.
        """
        if self.daemon is None:
            return failuresLogged(logEvents)
        return [
            line
            for line in self.daemon.log()[mark:].splitlines()
            if _DAEMON_FAILURE.search(line)
        ]

    def sockets(self) -> int:
        """
        How many sockets the daemon has open (0 in-process): a baseline for
        L{holds}, taken before an attack.
        """
        return socketDescriptors(self.pid) if self.daemon is not None else 0

    def holds(self, clientPort: int, baseline: int = 0) -> bool:
        """
        Whether the server still holds the connection from C{clientPort}:
        its socket is still in the kernel's table with an owner, or (once
        reset, when the kernel forgets it) still open in the server: a
        protocol whose transport is connected (in-process), more sockets
        open than C{baseline} (the daemon).
        """
        if serverHolds(self.port, clientPort):
            return True
        if self.daemon is not None:
            return bool(baseline) and socketDescriptors(self.pid) > baseline
        return any(
            _peerPort(protocol) == clientPort and protocol.transport.connected
            for protocol in self.built
        )

    def countsClient(self, clientPort: int) -> bool | None:
        """
        Whether the factory still counts the client from C{clientPort}
        (in-process only; L{None} for the daemon).
        """
        if self.factory is None:
            return None
        return any(_peerPort(c) == clientPort for c in self.factory.clients)


def _peerPort(protocol: Any) -> int | None:
    transport = getattr(protocol, "transport", None)
    if transport is None:
        return None
    return getattr(transport.getPeer(), "port", None)


def factoryLimits(limits: dict[str, Any], maxClients: int | None) -> dict[str, Any]:
    """
    C{limits} as L{WebSocketFactory} arguments.
    """
    arguments = dict(limits)
    arguments["deflate"] = PerMessageDeflate() if limits["deflate"] else None
    arguments["maxClients"] = maxClients
    return arguments


async def startInProcess(
    kind: str,
    *,
    maxClients: int | None = None,
    origin: str | None = None,
    endpoint: str = "tcp:0:interface=127.0.0.1",
) -> Target:
    """
    A C{direct} or C{site} server in this process, serving L{RESOURCES}
    (only to C{origin} when given) with L{LIMITS}.
    """
    factory = WebSocketFactory(ResourceRegistry(), **factoryLimits(LIMITS, maxClients))
    originCheck = originExact(origin) if origin is not None else anyOrigin
    paths = dict(RESOURCES, **({"/strict": RESOURCES["/echo"]} if origin else {}))
    listening: Any
    if kind == "direct":
        for path, name in paths.items():
            factory.registerResource(path, namedAny(name)(), originCheck)
        listening = factory
    else:
        root = Resource()
        for path, name in paths.items():
            mountWebSocket(root, path, namedAny(name)(), originCheck, factory=factory)
        listening = WebSocketSite(root, factory=factory)
    built: list[Any] = []
    buildProtocol = listening.buildProtocol

    def tracking(addr: Any) -> Any:
        protocol = buildProtocol(addr)
        built.append(protocol)
        return protocol

    listening.buildProtocol = tracking
    port = await serverFromString(reactor, endpoint).listen(listening)

    async def stop() -> None:
        await maybeDeferred(port.stopListening)
        for protocol in built:
            transport = getattr(protocol, "transport", None)
            if transport is not None and transport.connected:
                transport.abortConnection()
        await deferLater(reactor, 0.05, lambda: None)

    return Target(
        kind, port.getHost().port, os.getpid(), factory=factory, stop=stop, built=built
    )


def startDaemon(
    *,
    maxClients: int | None = None,
    origin: str | None = None,
    endpoint: str = "tcp:0:interface=127.0.0.1",
) -> Target:
    """
    A C{twistd -n clws} serving L{RESOURCES} with L{LIMITS} (blocking).
    """
    paths = dict(RESOURCES, **({"/strict": RESOURCES["/echo"]} if origin else {}))
    arguments = ["--port", endpoint, *daemonArguments(LIMITS, maxClients)]
    for path, name in paths.items():
        arguments += ["--resource", f"{path}={name}"]
    if origin is not None:
        arguments += ["--origin", origin]
    daemon = Daemon(*arguments)
    return Target(
        "daemon", daemon.port, daemon.process.pid, daemon=daemon, stop=daemon.stop
    )


async def start(kind: str, **options: Any) -> Target:
    """
    A server of kind C{kind}; see L{startInProcess} and L{startDaemon}.
    """
    if kind == "daemon":
        return await deferToThread(startDaemon, **options)
    return await startInProcess(kind, **options)


async def stop(target: Target) -> None:
    """
    Stop C{target}, and drop what it still serves.
    """
    if target.daemon is not None:
        await deferToThread(target.stop)
    else:
        await target.stop()


@pytest_twisted.async_yield_fixture(scope="module", params=ENTRY_POINTS)
async def target(request: Any) -> Any:
    """
    One server per entry point for the whole module, serving L{RESOURCES}.
    """
    served = await start(request.param)
    yield served
    await stop(served)


@pytest_twisted.async_yield_fixture(scope="module", params=ENTRY_POINTS)
async def strictTarget(request: Any) -> Any:
    """
    One server per entry point serving C{/strict} (and the rest) to
    L{GOOD_ORIGIN} only.
    """
    served = await start(request.param, origin=GOOD_ORIGIN)
    yield served
    await stop(served)


@pytest_twisted.async_yield_fixture(params=ENTRY_POINTS)
async def slotTarget(request: Any) -> Any:
    """
    A fresh server per case, with C{maxClients} 2: a bystander and one
    attacker fill it.
    """
    served = await start(request.param, maxClients=2)
    yield served
    await stop(served)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """
    A throw-away self-signed certificate for 127.0.0.1 and its key.
    """
    return makeCertificate(tmp_path_factory.mktemp("hostile-tls"))


@pytest_twisted.async_yield_fixture(scope="module", params=["direct", "daemon"])
async def tlsTarget(request: Any, certificate: tuple[Path, Path]) -> Any:
    """
    A server on an C{ssl:} endpoint (issue 12): the direct factory and the
    daemon.
    """
    cert, key = certificate
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    served = await start(request.param, endpoint=endpoint)
    yield served
    await stop(served)


# -- the bystander ------------------------------------------------------------


def stillServed(port: int, bystander: Bystander, origin: str | None) -> None:
    """
    The client connected before the attack still gets its echo, and so
    does one connecting now.
    """
    assert bystander.echo("still here") == ServerFrame(True, 0, 0x1, b"still here")
    with openClient(port, origin=origin) as fresh:
        assert fresh.echo("new here") == ServerFrame(True, 0, 0x1, b"new here")


async def assertStillServed(
    target: Target,
    bystander: Bystander,
    logEvents: Any,
    mark: int,
    origin: str | None = None,
) -> None:
    """
    The bystander and a new client are served, and the server logged no
    failure during the case.
    """
    try:
        await deferToThread(stillServed, target.port, bystander, origin)
    finally:
        await deferToThread(bystander.close)
    assert target.failures(logEvents, mark) == []


async def bystanderOf(target: Target, origin: str | None = None) -> Bystander:
    """
    A well-behaved client, connected before the attack.
    """
    return await deferToThread(Bystander, target.port, origin)


# -- issue 11: the defects ------------------------------------------------------


def deflateTail(target: Target) -> tuple[ServerFrame | None, int, bool]:
    """
    Negotiate permessage-deflate, send a first frame holding only an empty
    final deflate block (RSV1, no FIN), then 40 MiB of continuation frames
    that never set FIN, while reading what the server says.

    @return: the server's close frame (or L{None}), the RSS growth, and
        whether the server let go of the connection in time.
    """
    extensions = (("Sec-WebSocket-Extensions", "permessage-deflate"),)
    baseline = target.sockets()
    client = HostileClient(target.port)
    client.send(upgradeRequest("/echo", extra=extensions))
    statusLine, headers = client.readHead()
    assert statusLine == "HTTP/1.1 101 Switching Protocols", statusLine
    assert headers["sec-websocket-extensions"].startswith("permessage-deflate")
    # 0x03 0x00: a final, fixed-Huffman block holding nothing but its end.
    first = clientFrame(0x2, b"\x03\x00", fin=False, rsv=0x40)
    chunk = clientFrame(0x0, b"\x5a" * 65536, fin=False)
    localPort = client.localPort
    with PeakRSS(target.pid) as rss:
        client.send(first)
        sender = threading.Thread(target=client.sendFor, args=(chunk, 640, 2.0))
        sender.start()
        try:
            _, close = client.readUntilClose()
        except (TimeoutError, EOFError, ConnectionResetError):
            close = None
        sender.join(30)
    released = waitUntil(
        lambda: not target.holds(localPort, baseline), deadline("closing connection")
    )
    client.reset()
    return close, rss.growth, released is not None


@pytest_twisted.ensureDeferred
async def test_deflateStreamTail(target: Target, logEvents: Any) -> None:
    """
    Bytes after the end of a deflate stream inside one message fail the
    connection at once, with 1007 as any other invalid compressed data
    (RFC 7692 7.2.2: a message is one DEFLATE stream): the server neither
    holds them nor waits for a FIN that never comes; its memory stays
    within the "one message" bound.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    close, growth, released = await deferToThread(deflateTail, target)
    assert close is not None and close.closeCode == 1007
    assert growth <= rssBound("one message"), growth
    assert released
    await assertStillServed(target, bystander, logEvents, mark)


def closeAndStopReading(target: Target) -> tuple[int, HostileClient]:
    """
    Ask C{/flood} for 16 MiB, send a close frame, and never read (with a
    tiny receive buffer, so the reply stays in the server).

    @return: the client's port, and the client (still open).
    """
    client = openClient(target.port, "/flood", receiveBuffer=4096)
    client.send(clientFrame(0x1, b"16") + clientFrame(0x8, closePayload(1000)))
    return client.localPort, client


def vanishWhilePaused(target: Target, reset: bool) -> tuple[int, HostileClient]:
    """
    Send C{/stall} a message (its callback never finishes, so reading is
    paused) and one more, then go: a reset or a FIN.

    @return: the client's port, and the (closed) client.
    """
    client = openClient(target.port, "/stall")
    client.send(clientFrame(0x1, b"never done") + clientFrame(0x1, b"queued"))
    time.sleep(0.2)
    localPort = client.localPort
    if reset:
        client.reset()
    else:
        client.sock.close()
    return localPort, client


def halfClose(target: Target, afterHead: bool) -> tuple[int, HostileClient]:
    """
    Shut the client's sending side (SHUT_WR): right after the request head,
    or in the middle of a fragmented message.

    @return: the client's port, and the client (still reading).
    """
    client = HostileClient(target.port)
    if afterHead:
        client.send(upgradeRequest("/echo"))
    else:
        client.handshake("/echo")
        client.send(clientFrame(0x1, b"abc", fin=False) + clientFrame(0x0, b"def")[:4])
    client.sock.shutdown(socket.SHUT_WR)
    return client.localPort, client


#: Attacks that hold a slot, each with the row of L{BOUNDS} it is bounded by.
SLOT_ATTACKS: dict[str, tuple[Callable[[Target], tuple[int, HostileClient]], str]] = {
    "close-and-stop-reading": (closeAndStopReading, "closing connection"),
    "vanish-while-paused-reset": (
        lambda target: vanishWhilePaused(target, True),
        "queued events",
    ),
    "vanish-while-paused-fin": (
        lambda target: vanishWhilePaused(target, False),
        "queued events",
    ),
    "half-closed-after-head": (
        lambda target: halfClose(target, True),
        "closing connection",
    ),
    "half-closed-mid-message": (
        lambda target: halfClose(target, False),
        "closing connection",
    ),
}


@pytest.mark.parametrize("attack", list(SLOT_ATTACKS), ids=list(SLOT_ATTACKS))
@pytest_twisted.ensureDeferred
async def test_connectionReleased(target: Target, logEvents: Any, attack: str) -> None:
    """
    Under each attack that used to keep a connection for ever, the server
    lets go of it (closes its descriptor) within the bound of its row, and
    the factory no longer counts it as a client.
    """
    run, row = SLOT_ATTACKS[attack]
    bystander, mark = await bystanderOf(target), target.mark()
    baseline = target.sockets()
    localPort, client = await deferToThread(run, target)
    took = await deferToThread(
        waitUntil, lambda: not target.holds(localPort, baseline), deadline(row)
    )
    client.sock.close()
    assert took is not None, f"still held after {deadline(row)} s"
    assert target.countsClient(localPort) in (None, False)
    await assertStillServed(target, bystander, logEvents, mark)


def probeAccepted(port: int) -> bool:
    """
    Whether a new client is accepted now (101), rather than refused for
    C{maxClients} (503).
    """
    with HostileClient(port) as probe:
        probe.send(upgradeRequest("/echo"))
        statusLine, _ = probe.readHead()
        assert statusLine in (
            "HTTP/1.1 101 Switching Protocols",
            "HTTP/1.1 503 Service Unavailable",
        ), statusLine
        accepted = statusLine.startswith("HTTP/1.1 101")
        if accepted:
            probe.reset()
        return accepted


@pytest.mark.parametrize(
    "attack",
    ["close-and-stop-reading", "vanish-while-paused-reset", "vanish-while-paused-fin"],
)
@pytest_twisted.ensureDeferred
async def test_slotComesBack(slotTarget: Target, logEvents: Any, attack: str) -> None:
    """
    With C{maxClients} 2, a bystander and an attacker fill the server (a
    new client gets 503); the attacker's slot comes back within the bound
    of its row, and a new client is let in.
    """
    run, row = SLOT_ATTACKS[attack]
    target = slotTarget
    bystander, mark = await bystanderOf(target), target.mark()
    _, client = await deferToThread(run, target)
    took = await deferToThread(
        waitUntil, lambda: probeAccepted(target.port), deadline(row)
    )
    client.sock.close()
    assert took is not None, f"no slot after {deadline(row)} s"
    await assertStillServed(target, bystander, logEvents, mark)


def pausedFlood(target: Target) -> int:
    """
    Stall C{/stall}'s callback, then send 40 MiB of messages behind it
    (stopping when the server stops reading); RST at the end.

    @return: the server's RSS growth.
    """
    client = openClient(target.port, "/stall")
    client.send(clientFrame(0x1, b"never done"))
    message = clientFrame(0x1, b"a" * 65536)
    with PeakRSS(target.pid) as rss:
        client.sendFor(message, 640, 2.0)
    client.reset()
    return rss.growth


@pytest_twisted.ensureDeferred
async def test_pausedClientMemory(target: Target, logEvents: Any) -> None:
    """
    While a callback is pending, whatever the server reads to notice a
    vanished peer is bounded: the "queued events" row.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    growth = await deferToThread(pausedFlood, target)
    assert growth <= rssBound("queued events"), growth
    await assertStillServed(target, bystander, logEvents, mark)


def trickle(port: int, seconds: float) -> tuple[bytes, bool, float]:
    """
    Send a request head one byte every 0.3 s until the server answers or
    closes, or C{seconds} pass.

    @return: what the server sent, whether it closed, and when (seconds
        from the first byte).
    """
    client = HostileClient(port)
    start = time.monotonic()
    for byte in upgradeRequest("/echo"):
        if time.monotonic() - start > seconds:
            break
        try:
            client.send(bytes((byte,)))
        except (BrokenPipeError, ConnectionResetError):
            break
        _, closed = client.readToEOF(0.3)
        if closed or client._buffer:
            break
    data, closed = client.readToEOF(max(0.0, seconds - (time.monotonic() - start)))
    client.sock.close()
    return data, closed, time.monotonic() - start


@pytest_twisted.ensureDeferred
async def test_trickledHead(target: Target, logEvents: Any) -> None:
    """
    A head trickled one byte every 0.3 s is answered 408 at
    C{handshakeTimeout} and the connection closed.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    data, closed, took = await deferToThread(
        trickle, target.port, deadline("request head")
    )
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data[:100]
    assert closed and took <= deadline("request head"), took
    await assertStillServed(target, bystander, logEvents, mark)


def refusal(port: int, request: bytes) -> tuple[str, dict[str, str], bytes, bool]:
    """
    Send C{request}; the answer's status line, headers and body, and
    whether the server then closed the connection.
    """
    data, closed = _answer(port, request)
    statusLine, headers, body = splitResponse(data)
    return statusLine, headers, body, closed


def _answer(port: int, request: bytes) -> tuple[bytes, bool]:
    with HostileClient(port) as client:
        try:
            client.send(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return client.readToEOF(5.0)


def padded(count: int, size: int) -> bytes:
    """
    An opening handshake with C{count} extra headers of C{size} bytes each.
    """
    return upgradeRequest(extra=tuple((f"X-Pad-{i}", "p" * size) for i in range(count)))


OVERSIZED = {
    "5000-byte-line": padded(1, 5000),
    "150-headers": padded(150, 1),
    "20k-head": padded(50, 400),
}


@pytest.mark.parametrize("request_", list(OVERSIZED.values()), ids=list(OVERSIZED))
@pytest_twisted.ensureDeferred
async def test_oversizedHead(target: Target, logEvents: Any, request_: bytes) -> None:
    """
    A head over C{maxHeadSize} (4096), or with more than 100 header lines,
    is answered 431 and closed, on every entry point.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    statusLine, headers, body, closed = await deferToThread(
        refusal, target.port, request_
    )
    assert statusLine == "HTTP/1.1 431 Request Header Fields Too Large"
    assert headers["content-length"] == str(len(body)) and closed
    await assertStillServed(target, bystander, logEvents, mark)


@pytest_twisted.ensureDeferred
async def test_obsFold(target: Target, logEvents: Any) -> None:
    """
    Obsolete line folding (RFC 9112 5.2) is refused with 400 everywhere.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    request = upgradeRequest(extra=(("X-Folded", "a\r\n b"),))
    statusLine, _, _, closed = await deferToThread(refusal, target.port, request)
    assert statusLine == "HTTP/1.1 400 Bad Request" and closed
    await assertStillServed(target, bystander, logEvents, mark)


@pytest.mark.parametrize("path", ["/echo/anything", "/echo/", "/lobby", "/rooms/"])
@pytest_twisted.ensureDeferred
async def test_routingExact(target: Target, logEvents: Any, path: str) -> None:
    """
    Routing is an exact path match on every entry point: below a mounted
    path, a trailing slash, and an intermediate node (C{/lobby}, where
    only C{/lobby/main} is mounted) are 404.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    request = upgradeRequest(path)
    statusLine, headers, body, closed = await deferToThread(
        refusal, target.port, request
    )
    assert statusLine == "HTTP/1.1 404 Not Found"
    assert headers["content-length"] == str(len(body)) and closed
    await assertStillServed(target, bystander, logEvents, mark)


def servedBy(port: int, path: str) -> str:
    """
    The answer of the resource at C{path} to C{hi}.
    """
    with openClient(port, path) as client:
        return client.echo("hi").payload.decode("utf-8")


@pytest_twisted.ensureDeferred
async def test_routingNested(target: Target, logEvents: Any) -> None:
    """
    With C{/rooms} and C{/rooms/main} both mounted, each path is served by
    its own resource.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    assert await deferToThread(servedBy, target.port, "/rooms") == "rooms: hi"
    assert await deferToThread(servedBy, target.port, "/rooms/main") == "main: hi"
    assert await deferToThread(servedBy, target.port, "/lobby/main") == "main: hi"
    await assertStillServed(target, bystander, logEvents, mark)


def hixieRequest(target: bytes) -> bytes:
    """
    A draft-hixie-76 opening handshake for C{target}, with its 8 bytes.
    """
    lines = [
        b"GET " + target + b" HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Upgrade: WebSocket",
        b"Connection: Upgrade",
        b"Origin: http://127.0.0.1",
        f"Sec-WebSocket-Key1: {KEY1}".encode(),
        f"Sec-WebSocket-Key2: {KEY2}".encode(),
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + BODY


@pytest_twisted.ensureDeferred
async def test_hixie76NonAsciiTarget(target: Target, logEvents: Any) -> None:
    """
    A hixie-76 request for C{/echo?\\xe9} gets an HTTP answer, the same
    status as an RFC 6455 request for that target, not an internal error
    and a reset.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    hixie = await deferToThread(headStatus, target.port, hixieRequest(b"/echo?\xe9"))
    rfc6455 = await deferToThread(headStatus, target.port, upgradeRequest("/echo?\xe9"))
    assert hixie is not None and hixie == rfc6455
    await assertStillServed(target, bystander, logEvents, mark)


def headStatus(port: int, request: bytes) -> int | None:
    """
    The status of the answer to C{request}, or L{None} if the connection
    ended (or was reset) with no answer.
    """
    with HostileClient(port) as client:
        client.send(request)
        try:
            statusLine, _ = client.readHead()
        except (EOFError, ConnectionResetError):
            return None
        return int(statusLine.split(" ")[1])


def absoluteForm(port: int) -> ServerFrame:
    """
    Open C{http://127.0.0.1/echo} in absolute form and echo a message.
    """
    with openClient(port, "http://127.0.0.1/echo") as client:
        return client.echo("absolute")


@pytest_twisted.ensureDeferred
async def test_absoluteFormTarget(target: Target, logEvents: Any) -> None:
    """
    An absolute-form target (RFC 6455 4.2.1, RFC 9112 3.2.2) is accepted
    and routed like its path.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    echoed = await deferToThread(absoluteForm, target.port)
    assert echoed == ServerFrame(True, 0, 0x1, b"absolute")
    await assertStillServed(target, bystander, logEvents, mark)


# -- the bad-input cases of test_bad_input, on every entry point --------------


@pytest.mark.parametrize(
    "data, code", list(VIOLATIONS.values()), ids=list(VIOLATIONS.keys())
)
@pytest_twisted.ensureDeferred
async def test_protocolViolation(
    target: Target, logEvents: Any, data: bytes, code: int
) -> None:
    """
    A frame that breaks RFC 6455 gets nothing but a close frame with the
    right code, then the server closes its side of the connection.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    before, close, eof = await deferToThread(failedWith, target.port, data)
    assert before == []
    assert (close.fin, close.rsv, close.closeCode) == (True, 0, code)
    close.payload[2:].decode("utf-8")
    assert eof
    await assertStillServed(target, bystander, logEvents, mark)


@pytest_twisted.ensureDeferred
async def test_frameOverLimit(target: Target, logEvents: Any) -> None:
    """
    A frame over C{maxFrameSize} is refused with 1009
    as soon as its header says so.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    limit = LIMITS["maxFrameSize"]
    header = b"\x82\xff" + (limit + 1).to_bytes(8, "big") + b"\x00" * 4
    before, close, eof = await deferToThread(failedWith, target.port, header)
    assert (before, close.closeCode, eof) == ([], 1009, True)
    await assertStillServed(target, bystander, logEvents, mark)


def echoAtLimit(port: int) -> ServerFrame:
    """
    Echo a binary message of exactly C{maxFrameSize} bytes.
    """
    with openClient(port) as client:
        client.send(clientFrame(0x2, b"x" * LIMITS["maxFrameSize"]))
        return client.readFrame()


@pytest_twisted.ensureDeferred
async def test_frameAtLimit(target: Target, logEvents: Any) -> None:
    """
    A frame of exactly C{maxFrameSize} bytes is accepted and echoed: the
    limits above are the limits, not lower.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    echoed = await deferToThread(echoAtLimit, target.port)
    assert echoed == ServerFrame(True, 0, 0x2, b"x" * LIMITS["maxFrameSize"])
    await assertStillServed(target, bystander, logEvents, mark)


@pytest_twisted.ensureDeferred
async def test_messageOverLimit(target: Target, logEvents: Any) -> None:
    """
    A message over C{maxMessageSize}, in frames each under the frame
    limit, is refused with 1009.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    first = 600 * 1024
    data = clientFrame(0x1, b"a" * first, fin=False) + clientFrame(
        0x0, b"b" * (LIMITS["maxMessageSize"] - first + 1)
    )
    before, close, eof = await deferToThread(failedWith, target.port, data)
    assert (before, close.closeCode, eof) == ([], 1009, True)
    await assertStillServed(target, bystander, logEvents, mark)


def _replaced(old: bytes, new: bytes) -> bytes:
    request = upgradeRequest()
    assert old in request
    return request.replace(old, new)


#: More bad handshakes than test_bad_input's, on the same rules: method,
#: HTTP version, Host, Upgrade and Connection.
MORE_REFUSALS: dict[str, tuple[bytes, int, str]] = {
    "method-post": (_replaced(b"GET ", b"POST "), 405, "Method Not Allowed"),
    "http-1.0": (_replaced(b"HTTP/1.1", b"HTTP/1.0"), 400, "Bad Request"),
    "no-host": (_replaced(b"Host: 127.0.0.1\r\n", b""), 400, "Bad Request"),
    "two-hosts": (
        _replaced(b"Host: 127.0.0.1\r\n", b"Host: a\r\nHost: b\r\n"),
        400,
        "Bad Request",
    ),
    "no-upgrade": (
        _replaced(b"Upgrade: websocket\r\n", b""),
        426,
        "Upgrade Required",
    ),
    "upgrade-h2c": (
        _replaced(b"Upgrade: websocket", b"Upgrade: h2c"),
        426,
        "Upgrade Required",
    ),
    "connection-keep-alive": (
        _replaced(b"Connection: Upgrade", b"Connection: keep-alive"),
        400,
        "Bad Request",
    ),
}

ALL_REFUSALS = {
    **{name: case for name, case in REFUSALS.items() if b"/strict" not in case[0]},
    **MORE_REFUSALS,
}
STRICT_REFUSALS = {
    name: case for name, case in REFUSALS.items() if b"/strict" in case[0]
}


def assertRefusal(
    answer: tuple[str, dict[str, str], bytes, bool], status: int, reason: str
) -> None:
    """
    The answer is exactly C{status} C{reason}, with a body whose length the
    headers state, C{Connection: close}, and the server closed; a 426 says
    which versions the server speaks (RFC 6455 4.4).
    """
    statusLine, headers, body, closed = answer
    assert statusLine == f"HTTP/1.1 {status} {reason}"
    assert headers["content-length"] == str(len(body))
    assert headers["connection"] == "close" and closed
    if status == 426:
        assert headers["sec-websocket-version"] == "13, 8, 7"
    else:
        assert "sec-websocket-version" not in headers


@pytest.mark.parametrize(
    "request_, status, reason", list(ALL_REFUSALS.values()), ids=list(ALL_REFUSALS)
)
@pytest_twisted.ensureDeferred
async def test_handshakeRefused(
    target: Target, logEvents: Any, request_: bytes, status: int, reason: str
) -> None:
    """
    A bad opening handshake gets exactly the HTTP status the RFC asks for,
    on every entry point.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    answer = await deferToThread(refusal, target.port, request_)
    assertRefusal(answer, status, reason)
    await assertStillServed(target, bystander, logEvents, mark)


@pytest.mark.parametrize(
    "request_, status, reason",
    list(STRICT_REFUSALS.values()),
    ids=list(STRICT_REFUSALS),
)
@pytest_twisted.ensureDeferred
async def test_originRefused(
    strictTarget: Target, logEvents: Any, request_: bytes, status: int, reason: str
) -> None:
    """
    A foreign or missing origin is refused 403 where only
    L{GOOD_ORIGIN} is accepted; that origin itself is accepted.
    """
    target = strictTarget
    bystander = await bystanderOf(target, GOOD_ORIGIN)
    mark = target.mark()
    answer = await deferToThread(refusal, target.port, request_)
    assertRefusal(answer, status, reason)
    await assertStillServed(target, bystander, logEvents, mark, GOOD_ORIGIN)


# -- attacks with memory measured -------------------------------------------


def tinyFragments(target: Target, count: int) -> tuple[bytes, float, int]:
    """
    Send one text message as C{count} one-byte fragments, while a second
    client measures how long its echoes take.

    @return: the echoed message, the slowest bystander echo in seconds,
        and the server's RSS growth.
    """
    data = (
        clientFrame(0x1, b"a", fin=False)
        + clientFrame(0x0, b"a", fin=False) * (count - 2)
        + clientFrame(0x0, b"a")
    )
    slowest = 0.0
    with openClient(target.port) as attacker, openClient(target.port) as watcher:
        with PeakRSS(target.pid) as rss:
            sender = threading.Thread(target=attacker.send, args=(data,))
            sender.start()
            while sender.is_alive():
                start = time.monotonic()
                assert watcher.echo("ping?").payload == b"ping?"
                slowest = max(slowest, time.monotonic() - start)
                time.sleep(0.05)
            sender.join()
            payload = b""
            while True:
                frame = attacker.readFrame()
                payload += frame.payload
                if frame.fin:
                    break
    return payload, slowest, rss.growth


@pytest_twisted.ensureDeferred
async def test_tinyFragments(target: Target, logEvents: Any) -> None:
    """
    100,000 one-byte fragments make one message, delivered whole; memory
    stays within the "one message" bound and other clients get their
    echoes within L{GRACE} meanwhile.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    payload, slowest, growth = await deferToThread(tinyFragments, target, 100_000)
    assert payload == b"a" * 100_000
    assert slowest <= 1.0, slowest
    assert growth <= rssBound("one message"), growth
    await assertStillServed(target, bystander, logEvents, mark)


def pingFlood(target: Target) -> tuple[int, float | None]:
    """
    Send 200,000 pings without ever reading a pong (tiny receive buffer),
    stopping when the server stops reading; then stay silent.

    @return: the server's RSS growth, and how long after the flood the
        server let go of the connection (L{None}: it did not).
    """
    baseline = target.sockets()
    client = openClient(target.port, receiveBuffer=4096)
    ping = clientFrame(0x9, b"p" * 125)
    with PeakRSS(target.pid) as rss:
        client.sendFor(ping, 200_000, 2.0)
    localPort = client.localPort
    took = waitUntil(lambda: not target.holds(localPort, baseline), deadline("idle"))
    client.reset()
    return rss.growth, took


@pytest_twisted.ensureDeferred
async def test_pingFlood(target: Target, logEvents: Any) -> None:
    """
    Pongs to a client that never reads do not pile up: memory stays within
    the "write buffer" bound, and the silent client is dropped within the
    "idle" bound.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    growth, took = await deferToThread(pingFlood, target)
    assert growth <= rssBound("write buffer"), growth
    assert took is not None
    await assertStillServed(target, bystander, logEvents, mark)


def halfClosedAnswer(target: Target, afterHead: bool) -> tuple[bytes, bool]:
    """
    Half-close (SHUT_WR) and read what the server sends until it closes.
    """
    _, client = halfClose(target, afterHead)
    with client:
        return client.readToEOF(deadline("closing connection"))


@pytest.mark.parametrize("afterHead", [True, False], ids=["after-head", "mid-message"])
@pytest_twisted.ensureDeferred
async def test_halfClosed(target: Target, logEvents: Any, afterHead: bool) -> None:
    """
    A client that shuts its sending side is closed within the "closing
    connection" bound, with at most a close frame: no message is made of
    half a message.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    data, closed = await deferToThread(halfClosedAnswer, target, afterHead)
    assert closed
    if afterHead and data:
        statusLine, _, data = splitResponse(data)
        assert statusLine == "HTTP/1.1 101 Switching Protocols"
    frames, rest = parseFrames(data)
    assert rest == b"" and [f.opcode for f in frames] in ([], [0x8])
    await assertStillServed(target, bystander, logEvents, mark)


# -- issue 12: TLS ----------------------------------------------------------------

TLS_CLIENTS = int(os.environ.get("TXCLWS_HOSTILE_TLS_CLIENTS", "20"))


def tlsSilence(target: Target) -> list[tuple[int, bool, float]]:
    """
    L{TLS_CLIENTS} clients at once, half silent, half with half a hello.
    """

    def one(index: int) -> tuple[int, bool, float]:
        client = HostileClient(target.port)
        localPort = client.localPort
        start = time.monotonic()
        if index % 2:
            client.send(halfClientHello())
        _, closed = client.readToEOF(deadline("connections"))
        took = time.monotonic() - start
        client.reset()
        return localPort, closed, took

    with ThreadPoolExecutor(TLS_CLIENTS) as pool:
        return list(pool.map(one, range(TLS_CLIENTS)))


@pytest_twisted.ensureDeferred
async def test_tlsNeverHandshakes(
    tlsTarget: Target, certificate: tuple[Path, Path]
) -> None:
    """
    Clients that never finish the TLS handshake are dropped by the server
    within C{handshakeTimeout} + 1 s, and their descriptors come back; a
    TLS client is served meanwhile.
    """
    target = tlsTarget
    baseline = socketDescriptors(target.pid) if target.daemon is not None else None
    results = await deferToThread(tlsSilence, target)
    late = [(port, took) for port, closed, took in results if not closed]
    assert late == []
    assert max(took for _, _, took in results) <= deadline("connections")
    held = [port for port, _, _ in results if target.holds(port, baseline or 0)]
    assert held == []
    if baseline is not None:
        assert socketDescriptors(target.pid) <= baseline
    status, echoed = await deferToThread(tlsEcho, target.port, certificate, None)
    assert (status, echoed) == ("HTTP/1.1 101 Switching Protocols", "over tls")


def tlsEcho(
    port: int,
    certificate: tuple[Path, Path],
    alpn: list[str] | None,
    speaksH2: bool = False,
) -> tuple[str, str]:
    """
    Over TLS offering C{alpn}: the status of the opening handshake and the
    echo; checks the protocol the server selected: C{h2} when offered to
    a server that speaks HTTP/2 (then the WebSocket is an RFC 8441 stream),
    else C{http/1.1} when offered.
    """
    with tlsClient(port, str(certificate[0]), alpn) as (sock, selected):
        if speaksH2 and alpn and "h2" in alpn:
            assert selected == "h2", selected
        else:
            assert selected == ("http/1.1" if alpn else None), selected
            return upgradeOver(sock)
    return h2EchoOver(port)


def h2EchoOver(port: int) -> tuple[str, str]:
    """
    An RFC 8441 WebSocket on a new HTTP/2 connection: the status line its
    200 stands for, and the echo.
    """
    with H2Client(port) as client:
        streamID = accept(client)
        client.send(streamID, maskedFrame(0x1, b"over tls"))
        [(_, _, payload)] = client.frames(streamID, 1)
    return "HTTP/1.1 101 Switching Protocols", payload.decode("utf-8")


@pytest.mark.parametrize(
    "alpn", [["http/1.1"], ["h2", "http/1.1"]], ids=["http1.1", "h2-http1.1"]
)
@pytest_twisted.ensureDeferred
async def test_tlsAlpn(
    tlsTarget: Target, certificate: tuple[Path, Path], alpn: list[str]
) -> None:
    """
    A client offering ALPN (as every browser does) completes the TLS
    handshake and gets C{http/1.1}, and is upgraded (101); the daemon,
    which speaks HTTP/2, selects C{h2} when it is offered, and the same
    echo runs as an RFC 8441 stream (its 200 counted as the upgrade).
    """
    speaksH2 = tlsTarget.daemon is not None
    status, echoed = await deferToThread(
        tlsEcho, tlsTarget.port, certificate, alpn, speaksH2
    )
    assert (status, echoed) == ("HTTP/1.1 101 Switching Protocols", "over tls")


def curlUpgrade(curl: str, port: int, cafile: Path) -> str:
    """
    The first line of what C{curl --http1.1} gets for a WebSocket upgrade.
    """
    result = subprocess.run(
        [
            curl,
            "--http1.1",
            "--silent",
            "--include",
            "--no-buffer",
            "--max-time",
            "3",
            "--cacert",
            str(cafile),
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
            f"Sec-WebSocket-Key: {SAMPLE_KEY}",
            f"https://localhost:{port}/echo",
        ],
        capture_output=True,
        timeout=10,
    )
    return result.stdout.split(b"\r\n", 1)[0].decode("latin-1")


@pytest_twisted.ensureDeferred
async def test_tlsCurl(tlsTarget: Target, certificate: tuple[Path, Path]) -> None:
    """
    C{curl --http1.1} (which offers ALPN) gets its 101 over TLS.
    """
    curl = findOrInstall(["curl"], ["curl"])
    line = await deferToThread(curlUpgrade, curl, tlsTarget.port, certificate[0])
    assert line == "HTTP/1.1 101 Switching Protocols"


# -- the fuzz target ----------------------------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("TXCLWS_HOSTILE_FUZZ_EXAMPLES", "30"))

REQUEST_LINES = [
    b"GET /echo HTTP/1.1",
    b"GET /echo?\xe9 HTTP/1.1",
    b"GET http://127.0.0.1/echo HTTP/1.1",
    b"GET /echo HTTP/1.0",
    b"POST /echo HTTP/1.1",
    b"GET /echo/x HTTP/1.1",
    b"GET * HTTP/1.1",
    b"GET /rooms/main HTTP/1.1",
    b"get /echo HTTP/1.1",
    b"GET /echo HTTP/2.0",
    b"GET  /echo HTTP/1.1",
    b"GET /echo#f HTTP/1.1",
]

HEADER_LINES = [
    b"Host: 127.0.0.1",
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Key: " + SAMPLE_KEY.encode(),
    b"Sec-WebSocket-Version: 13",
]

EXTRA_LINES = [
    b"Sec-WebSocket-Extensions: permessage-deflate",
    b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8",
    b"Sec-WebSocket-Protocol: chat",
    b"Origin: http://evil.example",
    b" folded",
    b"Sec-WebSocket-Key1: " + KEY1.encode(),
    b"Sec-WebSocket-Key2: " + KEY2.encode(),
    b"Sec-WebSocket-Version: 8",
    b"Sec-WebSocket-Version: 0",
    b"Host: other",
    b"X-Nul: \x00",
    b"\xff\xfe: v",
    b"Upgrade: h2c",
    b"Transfer-Encoding: chunked",
    b"Content-Length: 5",
    b"X-Long: " + b"l" * 5000,
    b"no colon",
]

KNOWN_STATUSES = {101, 400, 403, 404, 405, 408, 426, 431, 503, 505}


@st.composite
def mutatedRequests(draw: Any) -> bytes:
    """
    A valid opening handshake, mutated: another request line, header
    lines dropped, duplicated, added or with a byte changed, a different
    end of head, then a few frames (valid or not).
    """
    lines = list(HEADER_LINES)
    for _ in range(draw(st.integers(0, 4))):
        operation = draw(st.sampled_from(["drop", "duplicate", "add", "byte"]))
        index = draw(st.integers(0, max(0, len(lines) - 1)))
        if operation == "drop" and lines:
            del lines[index]
        elif operation == "duplicate" and lines:
            lines.insert(index, lines[index])
        elif operation == "add":
            lines.insert(index, draw(st.sampled_from(EXTRA_LINES)))
        elif lines:
            line = bytearray(lines[index])
            at = draw(st.integers(0, len(line) - 1))
            line[at] = draw(st.integers(0, 255))
            lines[index] = bytes(line)
    requestLine = draw(st.sampled_from(REQUEST_LINES))
    end = draw(st.sampled_from([b"\r\n\r\n"] * 8 + [b"\n\n", b"\r\n"]))
    head = b"\r\n".join([requestLine, *lines]) + end
    body = draw(st.sampled_from([b"", b"", BODY]))
    frames = draw(st.lists(fuzzFrames, max_size=3))
    return head + body + b"".join(frames)


def isUpgrade(request: bytes) -> bool:
    """
    Whether C{request}'s head asks to upgrade to WebSocket: an C{Upgrade}
    header with a C{websocket} token, as the front door reads it.
    """
    head = request.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.lower() == b"upgrade":
            tokens = [t.strip().lower() for t in value.split(b",")]
            if b"websocket" in tokens:
                return True
    return False


def readSettled(client: HostileClient, cap: float) -> tuple[bytes, bool]:
    """
    Read until the server closes, or (after a 101) nothing comes for 0.3 s,
    or C{cap} seconds pass.
    """
    end = time.monotonic() + cap
    while time.monotonic() < end:
        data, closed = client.readToEOF(0.3)
        if closed:
            return data, True
        if data.startswith(b"HTTP/1.1 101") and b"\r\n\r\n" in data:
            return data, False
    return bytes(client._buffer), False


def checkAnswer(data: bytes, closed: bool, plainHTTP: bool = False) -> None:
    """
    The server answered with a known HTTP status (and after a 101 only
    well-formed server frames), or closed the connection.
    """
    if not data:
        assert closed, "no answer and the connection kept"
        return
    status = statusOf(data)
    assert status in KNOWN_STATUSES, status
    statusLine, headers, rest = splitResponse(data)
    if status != 101 and not (plainHTTP and status == 404):
        # A refused upgrade closes; a plain HTTP request (no Upgrade:
        # websocket) to a site is twisted.web's to answer, and its 404
        # keeps the connection alive, as HTTP/1.1 allows.
        assert closed, f"{statusLine} and the connection kept"
    elif "sec-websocket-accept" in headers:
        frames, _ = parseFrames(rest)
        assert all(f.opcode in (0x0, 0x1, 0x2, 0x8, 0x9, 0xA) for f in frames)


def fuzz(port: int, logEvents: Any, site: bool) -> None:
    """
    Run the hypothesis target against the server on C{port}; C{site}: it
    is a L{WebSocketSite}, which hands plain HTTP requests to twisted.web.
    """

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=mutatedRequests())
    def exchange(request: bytes) -> None:
        with HostileClient(port) as client:
            try:
                client.send(request)
            except (BrokenPipeError, ConnectionResetError):
                pass
            data, closed = readSettled(client, deadline("request head") + GRACE_FUZZ)
            client.reset()
        checkAnswer(data, closed, site and not isUpgrade(request))
        assert failuresLogged(logEvents) == []

    exchange()


#: Extra seconds the fuzz client waits for an answer after the head bound.
GRACE_FUZZ = 1.0


@pytest.mark.parametrize("target", ["direct", "site"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_fuzzOpeningAndFrames(target: Target, logEvents: Any) -> None:
    """
    Mutations of a valid opening handshake followed by a few frames always
    get an HTTP status, close frames or a closed connection, and never an
    internal error; the server goes on serving.
    """
    bystander, mark = await bystanderOf(target), target.mark()
    await deferToThread(fuzz, target.port, logEvents, target.kind == "site")
    await assertStillServed(target, bystander, logEvents, mark)
