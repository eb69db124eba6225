"""
Channels benchmark (issue 18): fan-out of one channel to many subscribers
spread over several `twistd clws` daemons sharing a Redis hub, and the
cost of history on publish.

    .venv/bin/python benchmarks/channels.py [--subscribers 10000]
        [--daemons 4] [--loaders 4] [--messages 40] [--interval 0.25]

Needs redis-server (as the tests do).  Two parts:

1. fan-out: N subscribers (raw WebSocket clients on plain sockets, in
   --loaders processes, each bound to its own 127.0.0.X source address)
   spread evenly over --daemons daemons, each serving `FanOut` below
   (every client subscribed to channel "fan").  A publisher on the first
   daemon sends --messages messages, one every --interval seconds, each
   carrying its send time; for each message, the time until the last
   subscriber received it (p50, p99, max), and deliveries per second over
   the run.  Then a burst: --burst messages back to back, and the
   deliveries per second until every subscriber had all of them.  Done
   without history, then with (the channel kept, `HistoryPolicy(1000)`).
2. publish: one process publishing through a RedisHub as fast as Redis
   answers (--window publishes in flight), without and with history: one
   PUBLISH, or one EVALSHA of XADD + PUBLISH.

The machine is shared: every figure depends on what else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from txclws import WebSocketResource  # noqa: E402
from txclws._history import HistoryPolicy  # noqa: E402

CHANNEL = "fan"


class FanOut(WebSocketResource):
    """
    Subscribes each client to L{CHANNEL}, except C{?publish} clients,
    whose text messages are published to it.  With C{TXCLWS_BENCH_KEPT=1}
    the channel keeps a history.
    """

    def __init__(self, hub: Any = None) -> None:
        self.hub = hub
        if os.environ.get("TXCLWS_BENCH_KEPT") == "1":
            hub.keepHistory(CHANNEL, HistoryPolicy(size=1000))

    def clientConnected(self, client: Any) -> None:
        if client.queryString != "publish":
            self.hub.subscribe(CHANNEL, client)

    def receivedText(self, client: Any, message: str) -> Any:
        return self.hub.publish(CHANNEL, message).addErrback(lambda _: None)


# -- raw WebSocket clients -------------------------------------------------


def handshake(path: str, port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def maskedText(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


async def subscriber(
    port: int, source: str, latest: dict[int, float], counts: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(source, 0)
    )
    writer.write(handshake("/fan", port))
    await reader.readuntil(b"\r\n\r\n")
    while True:
        head = await reader.readexactly(2)
        size = head[1] & 0x7F
        if size == 126:
            size = int.from_bytes(await reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(size)
        if head[0] & 0x0F != 1:
            continue
        now = time.time()
        sequence = int(payload.split(b" ", 1)[0])
        if latest.get(sequence, 0.0) < now:
            latest[sequence] = now
        counts[0] += 1


def loader(ports: list[int], count: int, source: str, pipe: Any) -> None:
    """
    One load process: C{count} subscribers over C{ports}; reports when
    connected, then on request what it received.
    """

    async def main() -> None:
        latest: dict[int, float] = {}
        counts = [0]
        tasks = []
        for n in range(count):
            tasks.append(
                asyncio.ensure_future(
                    subscriber(ports[n % len(ports)], source, latest, counts)
                )
            )
            if n % 200 == 199:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        failed = sum(1 for t in tasks if t.done())
        pipe.send(("ready", failed))
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, pipe.recv)
            if command == "report":
                pipe.send((dict(latest), counts[0]))
                latest.clear()
                counts[0] = 0
            else:
                return

    asyncio.run(main())


# -- daemons ---------------------------------------------------------------


def startRedis() -> tuple[Any, int]:
    from tests._redis import RedisServer

    server = RedisServer()
    server.start()
    return server, server.port


def startDaemon(url: str, kept: bool) -> tuple[subprocess.Popen[bytes], int, Path]:
    import re
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="clws-bench-"))
    log = directory / "twistd.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")])
    env["TXCLWS_BENCH_KEPT"] = "1" if kept else "0"
    command = [
        sys.executable,
        "-c",
        "import sys; from twisted.scripts.twistd import run; "
        "sys.argv[0] = 'twistd'; run()",
        "-n",
        "--pidfile=",
        "clws",
        "--port",
        "tcp:0:interface=127.0.0.1:backlog=4096",
        "--hub",
        url,
        "--resource",
        "/fan=channels.FanOut",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        found = re.search(r"clws listening on \S+:(\d+) ", text)
        if found and "(subscriber)" in text and "(publisher)" in text:
            return process, int(found[1]), log
        time.sleep(0.1)
    raise SystemExit(f"daemon did not start:\n{log.read_text()}")


class Publisher:
    """
    A raw client publishing on a daemon.
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(handshake("/fan?publish", port))
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(4096)

    def send(self, sequence: int) -> float:
        now = time.time()
        self.sock.sendall(maskedText(f"{sequence} {now:.6f}".encode()))
        return now


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def collect(pipes: list[Any]) -> tuple[dict[int, float], int]:
    latest: dict[int, float] = {}
    total = 0
    for pipe in pipes:
        pipe.send("report")
    for pipe in pipes:
        got, count = pipe.recv()
        total += count
        for sequence, when in got.items():
            latest[sequence] = max(latest.get(sequence, 0.0), when)
    return latest, total


def settle(pipes: list[Any]) -> tuple[dict[int, float], int]:
    """
    Collect until nothing more arrives for 2 s: every delivery made.
    """
    latest: dict[int, float] = {}
    total = 0
    quiet = 0
    while quiet < 2:
        time.sleep(1.0)
        got, count = collect(pipes)
        for sequence, when in got.items():
            latest[sequence] = max(latest.get(sequence, 0.0), when)
        total += count
        quiet = quiet + 1 if count == 0 else 0
    return latest, total


def fanOut(options: argparse.Namespace, kept: bool) -> dict[str, Any]:
    """
    One fan-out run; see the module docstring.
    """
    redis, port = startRedis()
    url = f"redis://127.0.0.1:{port}/0"
    daemons = [startDaemon(url, kept) for _ in range(options.daemons)]
    ports = [p for _, p, _ in daemons]
    pipes, loaders = [], []
    try:
        share = options.subscribers // options.loaders
        for n in range(options.loaders):
            ours, theirs = multiprocessing.Pipe()
            process = multiprocessing.Process(
                target=loader, args=(ports, share, f"127.0.0.{n + 2}", theirs)
            )
            process.start()
            pipes.append(ours)
            loaders.append(process)
        failed = sum(pipe.recv()[1] for pipe in pipes)
        publisher = Publisher(ports[0])
        subscribers = share * options.loaders
        deadline = time.monotonic() + 60
        while True:  # every subscriber subscribed: a warm-up reaches all
            publisher.send(0)
            time.sleep(1.0)
            latest, total = collect(pipes)
            if total >= subscribers or time.monotonic() > deadline:
                break
        settle(pipes)
        sent = {}
        started = time.time()
        for sequence in range(1, options.messages + 1):
            sent[sequence] = publisher.send(sequence)
            time.sleep(options.interval)
        latest, total = settle(pipes)
        ended = max(latest.values(), default=started)
        latencies = [latest[s] - sent[s] for s in sent if s in latest]
        paced = {
            "deliveries": total,
            "expected": subscribers * options.messages,
            "deliveries_per_s": total / (ended - started),
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * percentile(latencies, 0.99),
            "max_ms": 1000 * max(latencies),
        }
        base = options.messages + 1
        started = time.time()
        for sequence in range(base, base + options.burst):
            publisher.send(sequence)
        latest, total = settle(pipes)
        ended = max(latest.values(), default=started)
        burst = {
            "deliveries": total,
            "expected": subscribers * options.burst,
            "deliveries_per_s": total / (ended - started),
            "last_ms": 1000 * (ended - started),
        }
        return {
            "kept": kept,
            "subscribers": subscribers,
            "connect_failures": failed,
            "paced": paced,
            "burst": burst,
        }
    finally:
        for pipe in pipes:
            pipe.send("stop")
        for process in loaders:
            process.join(10)
            if process.is_alive():
                process.kill()
        for process, _, _ in daemons:
            process.terminate()
        for process, _, _ in daemons:
            process.wait(30)
        redis.close()


# -- publish rate ------------------------------------------------------------


def publishRates(count: int, window: int) -> dict[str, float]:
    """
    Publishes per second through one RedisHub, without and with history.
    """
    script = f"""
import json, sys, time
sys.path.insert(0, {str(ROOT)!r})
from twisted.internet import defer, task
from txclws._history import HistoryPolicy
from txclws.redishub import RedisHub

async def main(reactor, port):
    hub = RedisHub("127.0.0.1", port)
    hub.startService()
    while not hub.connected:
        await task.deferLater(reactor, 0.05, lambda: None)
    hub.keepHistory("kept", HistoryPolicy(size=1000))
    rates = {{}}
    for channel in ("plain", "kept", "plain", "kept"):
        started = time.perf_counter()
        for offset in range(0, {count}, {window}):
            await defer.gatherResults(
                [hub.publish(channel, "x" * 32) for _ in range({window})]
            )
        rate = {count} / (time.perf_counter() - started)
        rates[channel] = max(rates.get(channel, 0), rate)
    print(json.dumps(rates))
    await hub.stopService()

task.react(lambda reactor: defer.ensureDeferred(main(reactor, int(sys.argv[1]))))
"""
    redis, port = startRedis()
    try:
        output = subprocess.run(
            [sys.executable, "-c", script, str(port)],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        return dict(json.loads(output.strip().splitlines()[-1]))
    finally:
        redis.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--daemons", type=int, default=4)
    parser.add_argument("--loaders", type=int, default=4)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--publishes", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--json", help="write the figures there too")
    options = parser.parse_args()
    results: dict[str, Any] = {"load": os.getloadavg()}
    results["publish_per_s"] = publishRates(options.publishes, options.window)
    print(json.dumps(results["publish_per_s"]), flush=True)
    results["fanout"] = []
    for kept in (False, True):
        run = fanOut(options, kept)
        print(json.dumps(run), flush=True)
        results["fanout"].append(run)
    results["load_after"] = os.getloadavg()
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
