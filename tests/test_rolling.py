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
import time
from typing import Any, cast

import pytest
from twisted.internet.error import ProcessDone
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from websockets.asyncio.client import connect as asyncConnect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests._daemon import Daemon, connect, runTwistd
from txclws._rolling import READY_TIMEOUT, SETTLE, RollingRestart, retireTimeout
from txclws._workerprocess import WorkerProcess, howEnded

LOCAL = "tcp:0:interface=127.0.0.1"

#: The clients held through the restart, as the issue asks.
CLIENTS = 100

#: Seconds the whole restart scenario may take before the test fails.
SCENARIO = 60.0


def _pool(*extra: str) -> Daemon:
    daemon = Daemon(
        "--port",
        LOCAL,
        "--workers",
        "2",
        "--resource",
        "/whoami=tests.scaling_resources.WhoAmI",
        "--close-timeout",
        "2",
        "--drain-spread",
        "0.5",
        *extra,
    )
    try:
        daemon.waitForLog(r"worker \d+ ready", count=2)
    except BaseException:
        daemon.stop()
        raise
    return daemon


class _Tally:
    """
    What the clients saw: echoes, 1012s, reconnections, failures.
    """

    def __init__(self) -> None:
        self.echoes = 0
        self.restarts = 0
        self.reconnected = 0
        self.other: list[str] = []
        self.attempts = 0
        self.refused: list[str] = []
        self.pids: set[int] = set()


async def _open(url: str, tally: _Tally) -> Any:
    client = await asyncConnect(url, proxy=None, compression=None, open_timeout=10)
    tally.pids.add(int(await asyncio.wait_for(client.recv(), 10)))
    return client


async def _echoer(url: str, tally: _Tally, stop: asyncio.Event) -> None:
    """
    Echo until told to stop; on a 1012, reconnect and go on.
    """
    client = await _open(url, tally)
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
                tally.other.append(f"closed {code}")
                return
            tally.restarts += 1
            client = await _open(url, tally)
            tally.reconnected += 1
        await asyncio.sleep(0.05)
    await client.close()


async def _connector(url: str, tally: _Tally, stop: asyncio.Event) -> None:
    """
    Open (and close) connections one after another during the restart.
    """
    while not stop.is_set():
        tally.attempts += 1
        try:
            client = await _open(url, tally)
            await client.close()
        except (OSError, InvalidStatus, ConnectionClosed) as error:
            tally.refused.append(repr(error))


async def _scenario(daemon: Daemon, tally: _Tally) -> float:
    url = daemon.url("/whoami")
    stop = asyncio.Event()
    echoers = [asyncio.create_task(_echoer(url, tally, stop)) for _ in range(CLIENTS)]
    await asyncio.sleep(1.0)  # all connected and echoing
    connector = asyncio.create_task(_connector(url, tally, stop))
    started = time.monotonic()
    os.kill(daemon.process.pid, signal.SIGHUP)
    while "rolling restart done" not in daemon.log():
        await asyncio.sleep(0.05)
    took = time.monotonic() - started
    await asyncio.sleep(0.5)  # the last reconnections echo too
    stop.set()
    await asyncio.gather(connector, *echoers)
    return took


def test_rollingRestartKeepsServing() -> None:
    """
    SIGHUP with 100 echo clients connected: both workers are replaced (new
    pids, one at a time), every client either keeps echoing or gets 1012
    and reconnects, and every connection attempted during the restart
    succeeds.
    """
    daemon = _pool()
    try:
        before = set(
            map(int, re.findall(r"started worker \d+ pid=(\d+)", daemon.log()))
        )
        tally = _Tally()
        took = asyncio.run(asyncio.wait_for(_scenario(daemon, tally), SCENARIO))
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
    assert tally.restarts == tally.reconnected
    assert tally.restarts > 0
    assert len(re.findall(r"worker \d+ pid=\d+ retired", log)) == 2
    assert "died" not in log
    after = {int(p) for p in re.findall(r"worker \d+ pid=(\d+) ready: draining", log)}
    assert len(after) == 2 and not after & before
    # Each old worker drained after the settling time: once.
    assert log.count("SIGUSR2: draining") == 2
    assert SETTLE < took < SCENARIO


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
