"""
Zero-downtime restart (issue 17, L{txclws._rolling}): on the real daemon,
C{SIGHUP} to the parent of C{--workers} replaces the workers one at a
time on the same listening sockets, the drain options are checked as
usage errors, and C{SIGHUP} without C{--workers} is logged and ignored;
L{RollingRestart}'s order and failure paths on fake workers and a fake
clock.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from twisted.internet.error import ProcessDone
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from websockets.asyncio.client import connect as asyncConnect
from websockets.asyncio.client import unix_connect as unixConnect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests._daemon import Daemon, connect, runTwistd
from tests._rawsocket import RawClient, upgradeRequest
from tests.test_tls import makeCertificate
from tests.test_workers import startPool
from txclws._rolling import READY_TIMEOUT, SETTLE, RollingRestart, retireTimeout
from txclws._workerprocess import WorkerProcess, howEnded

LOCAL = "tcp:0:interface=127.0.0.1"

#: The clients held through the restart, as the issue asks.
CLIENTS = 100

#: Seconds the whole restart scenario may take before the test fails.
SCENARIO = 60.0


def _pool(*ports: str, extra: tuple[str, ...] = ()) -> Daemon:
    """
    L{startPool} with a short close timeout and drain spread, so that a
    restart's drains end quickly.
    """
    return startPool(*ports, extra=(*extra, "--drain-spread", "0.5"), closeTimeout="2")


#: Opens a connection to C{/whoami} (on one port).
Opener = Callable[[], Awaitable[Any]]


class _Tally:
    """
    What the clients saw: echoes, 1012s (by port), reconnections, failures.
    """

    def __init__(self) -> None:
        self.echoes = 0
        self.restarts: dict[str, int] = {}
        self.reconnected = 0
        self.other: list[str] = []
        self.attempts = 0
        self.refused: list[str] = []
        self.pids: set[int] = set()


async def _open(opener: Opener, tally: _Tally) -> Any:
    client = await opener()
    tally.pids.add(int(await asyncio.wait_for(client.recv(), 10)))
    return client


async def _echoer(
    kind: str, opener: Opener, tally: _Tally, stop: asyncio.Event
) -> None:
    """
    Echo until told to stop; on a 1012, reconnect and go on.
    """
    client = await _open(opener, tally)
    count = 0
    while not stop.is_set():
        count += 1
        try:
            await client.send(f"m{count}")
            answer = await asyncio.wait_for(client.recv(), 10)
            assert answer == f"m{count}"
            tally.echoes += 1
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            if code != 1012:
                tally.other.append(f"{kind} closed {code}")
                return
            tally.restarts[kind] = tally.restarts.get(kind, 0) + 1
            client = await _open(opener, tally)
            tally.reconnected += 1
        await asyncio.sleep(0.05)
    await client.close()


async def _connector(opener: Opener, tally: _Tally, stop: asyncio.Event) -> None:
    """
    Open (and close) connections one after another during the restart.
    """
    while not stop.is_set():
        tally.attempts += 1
        try:
            client = await _open(opener, tally)
            await client.close()
        except (OSError, InvalidStatus, ConnectionClosed) as error:
            tally.refused.append(repr(error))


def _openers(daemon: Daemon, cert: Path, path: Path) -> dict[str, Opener]:
    """
    How to open a connection on each of the daemon's ports: tcp, ssl,
    stdssl, unix.
    """
    options: dict[str, Any] = {"proxy": None, "compression": None, "open_timeout": 10}
    context = ssl.create_default_context(cafile=str(cert))
    tcp, tls, stdtls = daemon.ports
    return {
        "tcp": lambda: asyncConnect(f"ws://127.0.0.1:{tcp}/whoami", **options),
        "ssl": lambda: asyncConnect(
            f"wss://localhost:{tls}/whoami", ssl=context, **options
        ),
        "stdssl": lambda: asyncConnect(
            f"wss://localhost:{stdtls}/whoami", ssl=context, **options
        ),
        "unix": lambda: unixConnect(str(path), "ws://localhost/whoami", **options),
    }


#: How many of the L{CLIENTS} are on each port.
SHARE = {"tcp": 70, "ssl": 10, "stdssl": 10, "unix": 10}


async def _scenario(daemon: Daemon, openers: dict[str, Opener], tally: _Tally) -> float:
    stop = asyncio.Event()
    echoers = [
        asyncio.create_task(_echoer(kind, openers[kind], tally, stop))
        for kind, count in SHARE.items()
        for _ in range(count)
    ]
    await asyncio.sleep(1.0)  # all connected and echoing
    connectors = [
        asyncio.create_task(_connector(openers[kind], tally, stop))
        for kind in ("tcp", "stdssl", "unix")
    ]
    started = time.monotonic()
    os.kill(daemon.process.pid, signal.SIGHUP)
    while "rolling restart done" not in daemon.log():
        await asyncio.sleep(0.05)
    took = time.monotonic() - started
    await asyncio.sleep(0.5)  # the last reconnections echo too
    stop.set()
    await asyncio.gather(*connectors, *echoers)
    return took


def test_rollingRestartKeepsServing(tmp_path: Path) -> None:
    """
    SIGHUP with 100 echo clients connected (on tcp:, ssl:, stdssl: and
    unix: ports): both workers are replaced (new pids, one at a time), every
    client either keeps echoing or gets 1012 and reconnects, and every
    connection attempted during the restart succeeds.
    """
    cert, key = makeCertificate(tmp_path)
    path = tmp_path / "clws.sock"
    daemon = _pool(
        LOCAL,
        f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
        f"stdssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
        f"unix:{path}",
    )
    try:
        started = re.findall(r"started worker \d+ pid=(\d+)", daemon.log())
        before = {int(pid) for pid in started}
        tally = _Tally()
        scenario = _scenario(daemon, _openers(daemon, cert, path), tally)
        took = asyncio.run(asyncio.wait_for(scenario, SCENARIO))
        log = daemon.log()
    finally:
        daemon.stop()
    print(
        f"restart {took:.2f}s; echoes {tally.echoes}; 1012 {tally.restarts};"
        f" attempts {tally.attempts}"
    )
    assert tally.other == []
    assert tally.refused == []
    assert tally.attempts > 0
    assert sum(tally.restarts.values()) == tally.reconnected
    assert set(tally.restarts) == set(SHARE)  # a drain on every kind of port
    assert len(re.findall(r"worker \d+ pid=\d+ retired", log)) == 2
    assert "died" not in log
    after = {int(p) for p in re.findall(r"worker \d+ pid=(\d+) ready: draining", log)}
    assert len(after) == 2 and not after & before
    assert tally.pids >= after
    # Each old worker drained once, after the settling time.
    assert log.count("SIGUSR2: draining") == 2
    assert SETTLE < took < SCENARIO


def _holdOn(daemon: Daemon, pid: int) -> RawClient:
    """
    A WebSocket client on the worker C{pid} that will never answer a close.
    """
    for _ in range(200):
        client = RawClient(daemon.port)
        client.handshake("/whoami")
        if int(client.readFrame().payload) == pid:
            return client
        client.sock.close()
    raise AssertionError(f"200 connections did not reach pid {pid}")


def test_handshakeDuringDrainRefused() -> None:
    """
    A connection that the retiring worker had accepted before its drain,
    and whose request head comes during the drain, is refused with 503
    and Retry-After: 1 (the retry goes to the replacement); those that
    the other worker holds are accepted.
    """
    daemon = _pool(LOCAL, extra=("--handshake-timeout", "30"))
    clients: list[RawClient] = []
    try:
        old = dict(re.findall(r"started worker (\d+) pid=(\d+)", daemon.log()))["1"]
        # Held open, unanswered, it keeps worker 1 draining for its close
        # timeout (2 s).
        clients.append(_holdOn(daemon, int(old)))
        idle = [RawClient(daemon.port) for _ in range(20)]
        clients.extend(idle)
        time.sleep(0.5)  # accepted by the workers, heads not sent yet
        os.kill(daemon.process.pid, signal.SIGHUP)
        daemon.waitForLog(rf"worker 1 pid={old}: .*draining \d+ clients")
        answers = []
        for client in idle:
            client.send(upgradeRequest("/whoami"))
            statusLine, headers = client.readHead()
            answers.append((statusLine.split()[1], headers.get("retry-after")))
    finally:
        for client in clients:
            client.sock.close()
        daemon.stop()
    print(sorted(answers))
    assert set(answers) <= {("101", None), ("503", "1")}
    assert ("503", "1") in answers


def test_hangupWithoutWorkersIgnored() -> None:
    """
    Without --workers, SIGHUP is logged and ignored: the daemon serves on.
    """
    with Daemon("--port", LOCAL) as daemon:
        os.kill(daemon.process.pid, signal.SIGHUP)
        daemon.waitForLog(r"SIGHUP ignored: a rolling restart needs --workers 2")
        assert daemon.process.poll() is None
        with connect(daemon.url("/echo")) as client:
            client.send("still here")
            assert client.recv(10) == "still here"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--drain-spread", "-1"], "--drain-spread"),
        (["--drain-spread", "soon"], "--drain-spread"),
        (["--drain-timeout", "nan"], "--drain-timeout"),
        (["--drain-spread", "5", "--drain-timeout", "2"], "--drain-timeout 2 is under"),
    ],
)
def test_drainOptionsChecked(arguments: list[str], message: str) -> None:
    """
    A bad drain option is a usage message naming it, from real twistd.
    """
    result = runTwistd("--port", LOCAL, *arguments)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


class _Transport:
    """
    A worker's process transport that records the signals sent.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals: list[object] = []

    def signalProcess(self, name: object) -> None:
        self.signals.append(name)


class _Pool:
    """
    A pool of fake workers on a fake clock, for L{RollingRestart} alone.
    """

    stopTimeout = 10.0

    def __init__(self, count: int) -> None:
        self.reactor = MemoryReactorClock()
        self.launched: list[WorkerProcess] = []
        self.rolling = RollingRestart(self)
        self.workers = {index: self._make(index) for index in range(1, count + 1)}

    def _make(self, index: int) -> WorkerProcess:
        worker = WorkerProcess(index, self._ended)
        worker.makeConnection(_Transport(1000 + len(self.launched) + index * 100))
        return worker

    def launch(self, index: int) -> WorkerProcess:
        worker = self._make(index)
        self.launched.append(worker)
        return worker

    def _ended(self, worker: WorkerProcess, reason: Failure) -> None:
        assert self.rolling.claims(worker, howEnded(reason))


def _ready(worker: WorkerProcess) -> None:
    worker.childDataReceived(
        1, f"[txclws._workerchild#info] worker {worker.index} ready\n".encode()
    )


def _exit(worker: WorkerProcess) -> None:
    worker.processEnded(Failure(ProcessDone(0)))


def _signals(worker: WorkerProcess) -> list[object]:
    return list(cast(_Transport, worker.transport).signals)


def test_oneWorkerAtATime() -> None:
    """
    Each worker is replaced in turn: the replacement is registered and the
    old worker sent SIGUSR2 once the replacement is ready, and the next
    replacement starts only once the old worker has exited.
    """
    pool = _Pool(2)
    first, second = pool.workers[1], pool.workers[2]
    pool.rolling.start()
    assert [w.index for w in pool.launched] == [1]
    assert _signals(first) == []
    _ready(pool.launched[0])
    assert pool.workers[1] is pool.launched[0]
    assert _signals(first) == [signal.SIGUSR2]
    assert len(pool.launched) == 1  # the next waits for the old one to go
    _exit(first)
    assert [w.index for w in pool.launched] == [1, 2]
    _ready(pool.launched[1])
    assert _signals(second) == [signal.SIGUSR2]
    _exit(second)
    assert not pool.rolling.running
    assert pool.rolling.extra == []
    assert pool.workers == {1: pool.launched[0], 2: pool.launched[1]}
    assert not pool.reactor.getDelayedCalls()


def test_replacementDiesFirst() -> None:
    """
    A replacement that exits before it is ready ends the restart: the old
    worker is kept, never signalled, and no further worker is replaced.
    """
    pool = _Pool(2)
    first = pool.workers[1]
    pool.rolling.start()
    _exit(pool.launched[0])
    assert pool.workers[1] is first
    assert _signals(first) == []
    assert len(pool.launched) == 1
    assert not pool.rolling.running


def test_oldWorkerDiesDuringTheSwap() -> None:
    """
    If the old worker dies while its replacement starts, and the pool
    starts another in its place, that one is retired once the replacement
    is ready: no extra worker is left behind.
    """
    pool = _Pool(1)
    first = pool.workers[1]
    pool.rolling.start()
    replacement = pool.launched[0]
    respawned = pool.launch(1)  # what the pool does when worker 1 dies
    pool.workers[1] = respawned
    first.ended.callback(None)
    _ready(replacement)
    assert pool.workers[1] is replacement
    assert _signals(first) == []
    assert _signals(respawned) == [signal.SIGUSR2]
    _exit(respawned)
    assert not pool.rolling.running


def test_replacementNotReadyInTime() -> None:
    """
    A replacement silent for READY_TIMEOUT is killed, and the old worker
    goes on serving.
    """
    pool = _Pool(1)
    first = pool.workers[1]
    pool.rolling.start()
    pool.reactor.advance(READY_TIMEOUT)
    assert _signals(pool.launched[0]) == ["KILL"]
    assert pool.workers[1] is first and _signals(first) == []
    _exit(pool.launched[0])
    assert pool.rolling.extra == []


def test_retiringWorkerKilledAfterItsBound() -> None:
    """
    An old worker still there retireTimeout seconds after its SIGUSR2 is
    killed; a second SIGHUP meanwhile is ignored.
    """
    pool = _Pool(1)
    pool.rolling.retireTimeout = 7.0
    first = pool.workers[1]
    pool.rolling.start()
    _ready(pool.launched[0])
    pool.rolling.start()
    assert len(pool.launched) == 1
    pool.reactor.advance(6.9)
    assert _signals(first) == [signal.SIGUSR2]
    pool.reactor.advance(0.2)
    assert _signals(first) == [signal.SIGUSR2, "KILL"]
    _exit(first)
    assert not pool.rolling.running


def test_retireTimeout() -> None:
    """
    A retiring worker's bound: settling, its drain (--drain-timeout, or
    --drain-spread + --close-timeout), and the grace.
    """
    options = {"drain-timeout": None, "drain-spread": 2.0, "close-timeout": 3.0}
    assert retireTimeout(options, 5.0) == SETTLE + 10.0
    assert retireTimeout({**options, "drain-timeout": 4.0}, 5.0) == SETTLE + 9.0
