"""
Scaling benchmarks of txclws: worker processes, and the hub through Redis.

    python benchmarks/scaling.py [--quick] [--repeat N] [--duration S] [--json FILE]

Run it with a Python that has txclws' dependencies and txredisapi (the
project's venv); it runs `twistd clws` from this work tree.  Three parts:

1. echo: small-message echo throughput of `twistd clws --workers 1` and
   `--workers 2`, under the C load generator of benchmarks/run
   (benchmarks/loadgen.c, built into benchmarks/.cache/ if needed): 50
   connections, 10 echoes of 32 bytes in flight on each.  Nothing is
   pinned: two workers need both cores, so the load generator shares them
   (its CPU use is printed; it is the caveat of the ratio).  Also prints how
   the 50 connections spread over the two workers.
2. fan-out: latency of one chat message to 50 members, through the
   in-process hub (one daemon) and through Redis (the sender on one daemon,
   the members on another; needs redis-server), measured by a minimal
   client on plain sockets: from the send to the first and to the last
   member's receipt.
3. spread: how evenly connections reach 2 Twisted processes accepting
   from one shared listening socket, versus one SO_REUSEPORT socket each:
   connections one by one, in bursts of 50, and one by one with one
   process busy 80% of the time (the measurement behind the choice in
   txclws/_workers.py).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".cache"
LOADGEN = CACHE / "loadgen"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TWISTD = [
    sys.executable,
    "-c",
    "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
]
#: The same, with the workers sharing one listening socket per port (what
#: txclws does where SO_REUSEPORT does not balance), for comparison.
TWISTD_SHARED = [
    sys.executable,
    "-c",
    "import sys, txclws._workers as w; w.BALANCED_REUSEPORT = False; "
    "from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
]
LOCAL = "tcp:0:interface=127.0.0.1"
WAIT = 60.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensureLoadgen() -> Path:
    """
    The load generator of benchmarks/run, built if missing or stale.
    """
    source = HERE / "loadgen.c"
    if LOADGEN.exists() and LOADGEN.stat().st_mtime >= source.stat().st_mtime:
        return LOADGEN
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not compiler:
        raise SystemExit("needs a C compiler (gcc or cc) for benchmarks/loadgen.c")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([compiler, "-O2", "-Wall", "-o", LOADGEN, source, "-lz"], check=True)
    return LOADGEN


def cpuSeconds(pid: int) -> float:
    """
    CPU seconds (user + system) used so far by process C{pid}.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Daemon:
    """
    One `twistd -n clws` from this work tree, on a free loopback port.
    """

    def __init__(self, *arguments: str, workers: int = 1, shared: bool = False) -> None:
        self.directory = tempfile.TemporaryDirectory(prefix="clws-bench-")
        self.logPath = Path(self.directory.name, "twistd.log")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with self.logPath.open("wb") as log:
            self.process = subprocess.Popen(
                [*(TWISTD_SHARED if shared else TWISTD), "-n", "--pidfile="]
                + ["clws", "--port", LOCAL, *arguments]
                + (["--workers", str(workers)] if workers > 1 else []),
                cwd=self.directory.name,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        found = self.waitFor(r"clws listening on [^:]+:(\d+) ")
        self.port = int(found[0])
        if workers > 1:
            self.waitFor(r"worker \d+ ready", workers)
        self.workers = [
            int(p) for p in re.findall(r"started worker \d+ pid=(\d+)", self.log())
        ]

    def log(self) -> str:
        return self.logPath.read_text(errors="replace")

    def waitFor(self, pattern: str, count: int = 1) -> list[str]:
        deadline = time.monotonic() + WAIT
        while True:
            found = re.findall(pattern, self.log())
            if len(found) >= count:
                return found
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"twistd clws did not start:\n{self.log()}")
            time.sleep(0.05)

    def cpu(self) -> float:
        return sum(cpuSeconds(pid) for pid in [self.process.pid, *self.workers])

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.directory.cleanup()


# -- 1. echo throughput ----------------------------------------------------


def echo(workers: int, duration: float, shared: bool = False) -> dict[str, Any]:
    """
    Echo throughput of `--workers N` under the load generator.

    @param shared: the workers share one listening socket.
    """
    daemon = Daemon(
        "--resource",
        "/echo=txclws.demo.EchoResource",
        "--ping-interval",
        "0",
        workers=workers,
        shared=shared,
    )
    try:
        command = [
            ensureLoadgen(),
            "--port",
            daemon.port,
            "--path",
            "/echo",
            "--mode",
            "echo",
            "--conns",
            "50",
            "--outstanding",
            "10",
            "--size",
            "32",
            "--duration",
            duration,
            "--no-wait",
        ]
        cpu0 = daemon.cpu()
        result = subprocess.run(
            [str(c) for c in command], capture_output=True, text=True, timeout=WAIT
        )
        cpu = daemon.cpu() - cpu0
        lines = [json.loads(line) for line in result.stdout.splitlines() if line]
        done = next((line for line in lines if line.get("phase") == "done"), None)
        if done is None or done["errors"] or done["timed_out"]:
            raise SystemExit(f"load generator failed: {result.stdout}{result.stderr}")
        opened = re.findall(r"worker (\d+) pid=\d+: .* open 127", daemon.log())
        return {
            "workers": workers,
            "shared": shared,
            "msg_per_s": done["msg_per_s"],
            "lat_p50_us": done["lat_p50_us"],
            "lat_p99_us": done["lat_p99_us"],
            "server_cpu_per_s": cpu / done["wall_s"],
            "loadgen_cpu_per_s": done["cpu_s"] / done["wall_s"],
            "connections_per_worker": sorted(collections.Counter(opened).values()),
        }
    finally:
        daemon.stop()


# -- 2. fan-out latency ----------------------------------------------------


class RawClient:
    """
    A minimal blocking WebSocket client on a plain socket, for timing: its
    reads are one C{recv} and a frame header check, nothing more, so that
    the client adds microseconds, not the milliseconds of a general one.
    """

    KEY = "dGhlIHNhbXBsZSBub25jZQ=="

    def __init__(self, url: str) -> None:
        rest = url.split("://", 1)[1]
        hostport, path = rest.split("/", 1)
        host, port = hostport.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(
            (
                f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {self.KEY}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"handshake refused: {head[:40]!r}")
        self.buffer = head.split(b"\r\n\r\n", 1)[1]
        self.sock.setblocking(False)

    def send(self, text: str) -> None:
        payload = text.encode()
        assert len(payload) < 126
        # FIN + text; masked, with an all-zero key (RFC 6455 5.3 allows any)
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + b"\0" * 4 + payload)

    def messages(self) -> list[bytes]:
        """
        The whole messages received so far (small unfragmented frames).
        """
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.buffer += data
        except BlockingIOError:
            pass
        found = []
        while len(self.buffer) >= 2:
            size, start = self.buffer[1] & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(self.buffer[2:4], "big"), 4
            if len(self.buffer) < start + size:
                break
            found.append(self.buffer[start : start + size])
            self.buffer = self.buffer[start + size :]
        return found


def fanout(sender: str, members: str, count: int, messages: int) -> dict[str, float]:
    """
    Send C{messages} chat messages, one at a time, from a member connected
    at C{sender} to C{count} members connected at C{members}: the latency
    to the first and to the last of them (client-side clock).
    """
    import selectors

    listeners = [RawClient(f"{members}?name=m{i}") for i in range(count)]
    source = RawClient(f"{sender}?name=sender")
    selector = selectors.DefaultSelector()
    for listener in listeners:
        selector.register(listener.sock, selectors.EVENT_READ, listener)
    quiet = time.monotonic() + 0.5
    while time.monotonic() < quiet:  # the join notices go by
        for key, _ in selector.select(0.1):
            if key.data.messages():
                quiet = time.monotonic() + 0.5
    first, last = [], []
    for number in range(messages):
        marker = f'"name": "sender", "text": "{number}"'.encode()
        waiting = set(listeners)
        start = time.perf_counter()
        source.send(str(number))
        arrivals = []
        deadline = time.monotonic() + WAIT
        while waiting:
            for key, _ in selector.select(1.0):
                if key.data in waiting and any(
                    marker in m for m in key.data.messages()
                ):
                    arrivals.append(time.perf_counter())
                    waiting.discard(key.data)
            if time.monotonic() > deadline:
                raise SystemExit("a fan-out message was lost")
        source.messages()
        first.append(arrivals[0] - start)
        last.append(arrivals[-1] - start)
    for client in [*listeners, source]:
        client.sock.close()
    return {
        "first_p50_us": statistics.median(first) * 1e6,
        "last_p50_us": statistics.median(last) * 1e6,
        "last_p99_us": sorted(last)[max(0, int(len(last) * 0.99) - 1)] * 1e6,
    }


def startRedis() -> tuple[subprocess.Popen[bytes], int]:
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit(
            "the fan-out part needs redis-server (apt-get install redis-server)"
        )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            executable,
            "--save",
            "",
            "--appendonly",
            "no",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + WAIT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return process, port
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("redis-server did not start")
        time.sleep(0.05)


def fanoutBoth(count: int, messages: int) -> dict[str, dict[str, float]]:
    """
    Fan-out latency in one process (the in-process hub), and from one
    daemon to another through Redis.
    """
    results = {}
    local = Daemon()
    try:
        url = local.url("/chat")
        results["in-process"] = fanout(url, url, count, messages)
    finally:
        local.stop()
    redis, port = startRedis()
    try:
        hub = f"redis://127.0.0.1:{port}/0"
        east, west = Daemon("--hub", hub), Daemon("--hub", hub)
        try:
            east.waitFor(r"hub: connected to Redis .*\(subscriber\)")
            west.waitFor(r"hub: connected to Redis .*\(subscriber\)")
            results["redis"] = fanout(
                east.url("/chat"), west.url("/chat"), count, messages
            )
        finally:
            east.stop()
            west.stop()
    finally:
        redis.terminate()
        redis.wait()
    return results


# -- 3. accept spread ------------------------------------------------------

ACCEPTOR = r"""
import os, socket, sys, time
from twisted.internet import reactor, protocol, task
fd, busy = int(sys.argv[1]), sys.argv[2] == "busy"
class Tell(protocol.Protocol):
    def connectionMade(self):
        self.transport.write(b"%d\n" % os.getpid())
reactor.adoptStreamPort(fd, socket.AF_INET, protocol.Factory.forProtocol(Tell))
if busy:
    def spin():
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            pass
    task.LoopingCall(spin).start(0.025)
print("ready", flush=True)
reactor.run()
"""


def listening(port: int, reusePort: bool) -> socket.socket:
    sock = socket.socket()
    if reusePort:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(511)
    sock.setblocking(False)
    return sock


def burst(port: int, count: int) -> list[int]:
    """
    Open C{count} connections at once (non-blocking connects, as the load
    generator does), then read which pid took each.
    """
    conns = []
    for _ in range(count):
        conn = socket.socket()
        conn.setblocking(False)
        conn.connect_ex(("127.0.0.1", port))
        conns.append(conn)
    pids = []
    for conn in conns:
        conn.setblocking(True)
        conn.settimeout(WAIT)
        pids.append(int(conn.makefile().readline()))
        conn.close()
    return pids


def spread(mode: str, scenario: str, connections: int) -> list[int]:
    """
    Connections taken by each of 2 Twisted processes accepting on one port:
    C{mode} C{"shared"} (one listening socket inherited by both) or
    C{"reuseport"} (two SO_REUSEPORT sockets, one inherited by each, as
    txclws does); C{scenario} C{"one by one"}, C{"burst"} or C{"busy"}
    (one by one, the first process busy 80% of the time).

    @return: the first process's count, then the second's.
    """
    first = listening(0, mode == "reuseport")
    port = first.getsockname()[1]
    sockets = [first, listening(port, True)] if mode == "reuseport" else [first]
    acceptors = []
    try:
        for index in range(2):
            sock = sockets[index % len(sockets)]
            busy = "busy" if scenario == "busy" and index == 0 else "idle"
            acceptors.append(
                subprocess.Popen(
                    [sys.executable, "-c", ACCEPTOR, str(sock.fileno()), busy],
                    pass_fds=[sock.fileno()],
                    stdout=subprocess.PIPE,
                )
            )
        for acceptor in acceptors:
            assert acceptor.stdout is not None
            acceptor.stdout.readline()
        pids: list[int] = []
        if scenario == "burst":
            for _ in range(connections // 50):
                pids += burst(port, 50)
                time.sleep(0.2)
        else:
            for _ in range(connections):
                pids += burst(port, 1)
                time.sleep(0.002)
        counts = collections.Counter(pids)
        return [counts[acceptor.pid] for acceptor in acceptors]
    finally:
        for acceptor in acceptors:
            acceptor.kill()
            acceptor.wait()
        for sock in sockets:
            sock.close()


# -- report ----------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--repeat", type=int, default=3, help="keep the best of N")
    parser.add_argument(
        "--duration", type=float, default=8.0, help="seconds of each echo run"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    duration = 3 if args.quick else args.duration
    repeat = 1 if args.quick else args.repeat
    say(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    # Interleaved, so that a change of load on a shared machine hits every
    # configuration alike.
    configurations = {"1": (1, False), "2": (2, False), "2 shared": (2, True)}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configurations}
    for _ in range(repeat):
        for name, (workers, shared) in configurations.items():
            runs[name].append(echo(workers, duration, shared))
    best = {n: max(r, key=lambda e: e["msg_per_s"]) for n, r in runs.items()}
    print(f"echo, 50 connections x 10 x 32 B in flight (best of {repeat}):")
    for name, e in best.items():
        label = f"--workers {name[0]}" + (", one shared socket" if e["shared"] else "")
        print(
            f"  {label:>32}: {e['msg_per_s']:>9,.0f} msg/s  "
            f"p50 {e['lat_p50_us']:>6,.0f} us  "
            f"server CPU {e['server_cpu_per_s']:.2f} cores  "
            f"loadgen CPU {e['loadgen_cpu_per_s']:.2f} cores"
            + (
                f"  connections per worker {e['connections_per_worker']}"
                if e["workers"] > 1
                else ""
            )
        )
    ratio = best["2"]["msg_per_s"] / best["1"]["msg_per_s"]
    perCore = {n: e["msg_per_s"] / e["server_cpu_per_s"] for n, e in best.items()}
    print(
        f"  ratio --workers 2 / --workers 1: {ratio:.2f} "
        f"(msg per server CPU second: {perCore['1']:,.0f} vs {perCore['2']:,.0f}; "
        "server CPU near 1 core with 2 workers means the machine had no "
        "second core to give)"
    )

    count, messages = 50, (50 if args.quick else 200)
    fan = fanoutBoth(count, messages)
    print(f"fan-out of a chat message to {count} members ({messages} messages):")
    for name, f in fan.items():
        print(
            f"  {name:>10}: first member p50 {f['first_p50_us']:>7,.0f} us, "
            f"last member p50 {f['last_p50_us']:>7,.0f} us, "
            f"p99 {f['last_p99_us']:>7,.0f} us"
        )
    fanRatio = fan["redis"]["last_p50_us"] / fan["in-process"]["last_p50_us"]
    firstRatio = fan["redis"]["first_p50_us"] / fan["in-process"]["first_p50_us"]
    print(
        f"  ratio redis / in-process, p50: first member {firstRatio:.2f}, "
        f"last member {fanRatio:.2f}"
    )

    conns = 100 if args.quick else 200
    print(f"accept spread over 2 processes, {conns} connections (first, second):")
    spreads = {}
    for mode in ("shared", "reuseport"):
        for scenario in ("one by one", "burst", "busy"):
            label = f"{mode} socket, {scenario}"
            if scenario == "burst":
                label += " (50 at once)"
            if scenario == "busy":
                label = f"{mode} socket, one by one, first busy 80%"
            spreads[label] = spread(mode, scenario, conns)
            print(f"  {label:>45}: {spreads[label]}")
    say(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "echo": runs,
                    "echo_ratio": ratio,
                    "fanout": fan,
                    "fanout_ratio": fanRatio,
                    "spread": spreads,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
