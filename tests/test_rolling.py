"""
Zero-downtime restart of the real daemon (issue 17, L{txclws._rolling}):
C{SIGHUP} to the parent of C{--workers} replaces the workers one at a
time on the same listening sockets; the drain options are checked as
usage errors; C{SIGHUP} without C{--workers} is logged and ignored.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect as asyncConnect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests._daemon import Daemon, connect, runTwistd
from txclws._rolling import SETTLE

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
