"""
Connection scale: 100,000 concurrent idle WebSocket connections to one machine.

    python benchmarks/scale.py [--quick] [--connections N] [--workers W]
                               [--generators G] [--hold SECONDS] [--json FILE]

Run by hand, not in CI, with the project's venv Python (it runs
`twistd -n clws --workers W` from this work tree, serving
C{txclws.demo.EchoResource} at /echo with every other option at its
default, keepalive included, but a listen backlog above the handshakes in
flight, on a free port of 127.0.0.1).  The load
comes from G processes of the C load generator of benchmarks/run
(benchmarks/loadgen.c, built into benchmarks/.cache/), each opening its
share of the connections (100 handshakes in flight each) from its own
source addresses: generator k (from 1) binds its sockets to 127.0.k.1,
127.0.k.2, ... (--per-source connections on each), so that no source address runs
short of ephemeral ports and no process holds more than its descriptor
limit.  It reports:

  - RSS (and PSS) of every server process, the parent and each worker,
    before and with the connections open; the growth per connection;
  - the kernel's memory for the sockets (slab and TCP buffer pages, both
    ends, as the whole machine's counters: noisy on a shared machine);
  - handshakes per second, aggregate, while opening, and the CPU the
    server processes and the generators used meanwhile;
  - how the connections spread over the workers (SO_REUSEPORT), counted
    from each worker's open socket descriptors;
  - with --hold, the server's CPU while the connections sit idle;
  - one echo of a 32-byte text message on every connection, all at once:
    every one must come back; the time until the last did;
  - a clean close of every connection (close frames both ways, as many
    under way at once as handshakes were), closes per second, and that
    the workers' sockets all went;
  - the load average before, during (the highest seen) and after.

--quick opens 20,000 connections (2 generators) instead of 100,000.
--server txclws|websockets|node-ws measures one process of
benchmarks/servers instead of the daemon (at most about 19,000
connections here).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from scaling import HERE, REPO, Daemon, cpuSeconds, ensureLoadgen

#: Most connections one generator opens: under this machine's hard limit of
#: 20,000 descriptors per process, with room for the rest.
PER_GENERATOR = 19_000
#: Seconds for each phase before the run is declared failed.
TIMEOUT = 150.0
KIB = 1024


#: The one-process servers of benchmarks/run (never pinging), for --server.
SERVERS = {
    "txclws": [sys.executable, str(HERE / "servers" / "txclws_server.py")],
    "websockets": [sys.executable, str(HERE / "servers" / "websockets_server.py")],
    "node-ws": ["node", str(HERE / "servers" / "ws_server.js")],
}


class OneProcess:
    """
    One benchmark server process of benchmarks/servers, on a free port:
    what L{Daemon} offers L{snapshot}, with no workers.
    """

    def __init__(self, name: str) -> None:
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            NODE_PATH=str(HERE / ".cache" / "node" / "node_modules"),
        )
        self.process = subprocess.Popen(
            [*SERVERS[name], "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("LISTENING "):
            self.process.kill()
            raise SystemExit(f"{name} did not start: {line!r}")
        self.port = int(line.split()[1])
        self.workers: list[int] = []

    def log(self) -> str:
        return ""

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def readSysctl(name: str) -> str:
    return Path("/proc/sys", *name.split(".")).read_text().strip()


def status(pid: int, field: str) -> int:
    """
    A C{kB} field of C{/proc/PID/status} (C{VmRSS}, ...) in bytes.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * KIB
    return 0


def pss(pid: int) -> int:
    """
    The proportional set size of C{pid} (shared pages divided among their
    users), in bytes.
    """
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * KIB
    return 0


def sockets(pid: int) -> int:
    """
    How many socket descriptors C{pid} holds.
    """
    count = 0
    directory = f"/proc/{pid}/fd"
    for name in os.listdir(directory):
        try:
            if os.readlink(f"{directory}/{name}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def kernelMemory() -> dict[str, int]:
    """
    The machine's slab memory and TCP buffer memory, in bytes.
    """
    meminfo = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, value = line.split(":", 1)
        meminfo[name] = int(value.split()[0]) * KIB
    tcpPages = 0
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()[1:]
            tcpPages = int(fields[fields.index("mem") + 1])
    return {
        "slab": meminfo["Slab"],
        "tcp_buffers": tcpPages * os.sysconf("SC_PAGESIZE"),
    }


def listenDrops() -> dict[str, int]:
    """
    The machine's counters of connections a full listen queue refused.
    """
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(
                zip(names.split()[1:], map(int, values.split()[1:]), strict=True)
            )
            return {k: table.get(k, 0) for k in ("ListenOverflows", "ListenDrops")}
    return {}


def serving(daemon: Daemon | OneProcess) -> list[int]:
    """
    The processes that hold the clients: the workers, or the one process.
    """
    return daemon.workers or [daemon.process.pid]


def snapshot(daemon: Daemon | OneProcess) -> dict[str, Any]:
    """
    Memory, sockets and CPU of every server process, and the kernel's memory.
    """
    pids = [daemon.process.pid, *daemon.workers]
    return {
        "rss": {pid: status(pid, "VmRSS") for pid in pids},
        "pss": {pid: pss(pid) for pid in pids},
        "peak": {pid: status(pid, "VmHWM") for pid in pids},
        "sockets": {pid: sockets(pid) for pid in serving(daemon)},
        "cpu": {pid: cpuSeconds(pid) for pid in pids},
        "kernel": kernelMemory(),
        "time": time.monotonic(),
    }


class LoadWatch:
    """
    Sample the 1-minute load average every second, in a thread.
    """

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict[str, float]:
        self.stopping.set()
        self.thread.join()
        samples = self.samples or [os.getloadavg()[0]]
        return {"max": max(samples), "mean": sum(samples) / len(samples)}


class Generator:
    """
    One load generator process, and a thread reading its JSON lines.
    """

    def __init__(
        self, index: int, port: int, conns: int, perSource: int, concurrency: int
    ) -> None:
        self.index = index
        self.conns = conns
        self.source = f"127.0.{index + 1}.1"
        command = [
            str(ensureLoadgen()),
            "--port",
            str(port),
            "--path",
            "/echo",
            "--mode",
            "echo",
            "--conns",
            str(conns),
            "--outstanding",
            "1",
            "--duration",
            "0",
            "--size",
            "32",
            "--concurrency",
            str(concurrency),
            "--timeout",
            str(TIMEOUT),
            "--source",
            self.source,
            "--per-source",
            str(perSource),
            "--close",
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        for line in stdout:
            if line.strip():
                self.lines.put((time.monotonic(), json.loads(line)))
        self.lines.put((time.monotonic(), {"phase": "exited"}))

    def expect(self, phase: str) -> tuple[float, dict[str, Any]]:
        """
        The next line, which must be of C{phase}: its arrival time and fields.
        """
        try:
            arrived, line = self.lines.get(timeout=TIMEOUT * 4)
        except queue.Empty:
            raise SystemExit(f"generator {self.index}: no {phase!r} line") from None
        if line.get("phase") != phase:
            raise SystemExit(f"generator {self.index}: {line} instead of {phase!r}")
        return arrived, line

    def go(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write("go\n")
        stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def warmUp(port: int) -> None:
    """
    Open, echo on and close 60 connections, so that every worker has
    imported and allocated what a first client makes it, before the
    baseline is measured.
    """
    warm = Generator(250, port, 60, 60, 60)
    try:
        warm.expect("connected")
        warm.go()
        warm.expect("done")
        warm.expect("closed")
    finally:
        warm.stop()


def preflight(connections: int, workers: int, generators: int) -> dict[str, Any]:
    """
    The machine's limits that bound the run, checked against its shape.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low, high = map(int, readSysctl("net.ipv4.ip_local_port_range").split())
    limits = {
        "nofile_hard": hard,
        "ip_local_port_range": [low, high],
        "somaxconn": int(readSysctl("net.core.somaxconn")),
        "tcp_max_syn_backlog": int(readSysctl("net.ipv4.tcp_max_syn_backlog")),
        "cores": os.cpu_count(),
    }
    perWorker = connections / workers
    # SO_REUSEPORT hashes: allow 5 standard deviations above the mean.
    worst = perWorker + 5 * math.sqrt(connections * (1 / workers) * (1 - 1 / workers))
    if hard != resource.RLIM_INFINITY and worst + 100 > hard:
        raise SystemExit(
            f"{workers} workers would hold up to {worst:,.0f} connections each; "
            f"a process may hold {hard:,} descriptors: use more --workers"
        )
    if connections / generators > min(PER_GENERATOR, hard - 100):
        raise SystemExit("too many connections per generator: use more --generators")
    return limits


def perConnection(before: dict[str, int], after: dict[str, int], count: int) -> float:
    return (sum(after.values()) - sum(before.values())) / count / KIB


def run(arguments: argparse.Namespace) -> dict[str, Any]:
    count, workers = arguments.connections, arguments.workers
    generators = arguments.generators or math.ceil(count / 17_000)
    limits = preflight(
        count, workers if arguments.server == "daemon" else 1, generators
    )
    say(f"limits: {limits}")
    loadBefore = os.getloadavg()
    say(f"load average before: {loadBefore[0]:.2f}")
    extra = (
        ["--ping-interval", arguments.ping_interval] if arguments.ping_interval else []
    )
    daemon: Daemon | OneProcess
    if arguments.server == "daemon":
        # Every handshake in flight may end up queued on one worker that the
        # scheduler left waiting (the others finish theirs): a backlog above
        # all of them, or a full queue drops SYNs (1 s retries).
        backlog = max(511, generators * arguments.concurrency + 100)
        daemon = Daemon(
            "--resource",
            "/echo=txclws.demo.EchoResource",
            "--backlog",
            str(backlog),
            *extra,
            workers=workers,
        )
    else:
        daemon = OneProcess(arguments.server)
    gens: list[Generator] = []
    try:
        warmUp(daemon.port)
        time.sleep(1.0)
        idle = snapshot(daemon)
        drops0 = listenDrops()
        watch = LoadWatch()
        shares = [
            count // generators + (i < count % generators) for i in range(generators)
        ]
        say(f"opening {count:,} connections from {generators} generators {shares}")
        started = time.monotonic()
        gens = [
            Generator(i, daemon.port, n, arguments.per_source, arguments.concurrency)
            for i, n in enumerate(shares)
        ]
        connected = [g.expect("connected") for g in gens]
        opened = max(arrived for arrived, _ in connected) - started
        held = snapshot(daemon)
        drops1 = listenDrops()
        openCount = sum(line["open"] for _, line in connected)
        openErrors = sum(line["errors"] for _, line in connected)
        say(f"open: {openCount:,} in {opened:.1f} s, errors {openErrors}")
        holdCpu = 0.0
        if arguments.hold:
            say(f"holding them idle for {arguments.hold} s")
            time.sleep(arguments.hold)
            heldLater = snapshot(daemon)
            holdCpu = sum(heldLater["cpu"].values()) - sum(held["cpu"].values())
        echoStart = time.monotonic()
        for g in gens:
            g.go()
        done = [g.expect("done") for g in gens]
        echoed = max(arrived for arrived, _ in done) - echoStart
        afterEcho = snapshot(daemon)
        closeStart = time.monotonic()
        closed = [g.expect("closed") for g in gens]
        closing = max(arrived for arrived, _ in closed) - closeStart
        for g in gens:
            g.process.wait(TIMEOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = {pid: sockets(pid) for pid in serving(daemon)}
            if left == idle["sockets"]:
                break
            time.sleep(0.5)
        afterClose = snapshot(daemon)
        load = watch.stop()
    finally:
        for g in gens:
            g.stop()
        if arguments.log:
            arguments.log.write_text(daemon.log())
        daemon.stop()
    loadAfter = os.getloadavg()

    messages = sum(line["messages"] for _, line in done)
    failures = [
        (g.index, line)
        for g, (_, line) in zip(gens, done, strict=True)
        if line["errors"] or line["timed_out"] or line["messages"] != g.conns
    ]
    closeFailures = [
        line
        for _, line in closed
        if line["timed_out"] or line["clean"] != line["asked"]
    ]
    serverCpu = sum(held["cpu"].values()) - sum(idle["cpu"].values())
    parent = daemon.process.pid
    split = {
        pid: held["sockets"][pid] - idle["sockets"][pid] for pid in serving(daemon)
    }
    return {
        "connections": count,
        "server": (
            f"twistd clws --workers {workers}"
            if arguments.server == "daemon"
            else f"{arguments.server}, one process"
        ),
        "workers": workers,
        "workers_pids": daemon.workers,
        "generators": generators,
        "limits": limits,
        "load_before": loadBefore[0],
        "load_during_max": load["max"],
        "load_during_mean": load["mean"],
        "load_after": loadAfter[0],
        "open": openCount,
        "open_errors": openErrors,
        "open_seconds": opened,
        "handshakes_per_s": openCount / opened,
        "server_cpu_open_s": serverCpu,
        "server_cores_open": serverCpu / opened,
        "server_cpu_us_per_handshake": serverCpu / openCount * 1e6,
        "parent_cpu_open_s": held["cpu"][parent] - idle["cpu"][parent],
        "generator_cpu_open_s": sum(line["cpu_s"] for _, line in connected),
        "generator_seconds": [round(line["seconds"], 2) for _, line in connected],
        "listen_drops": {k: drops1[k] - drops0[k] for k in drops0},
        "per_worker": sorted(split.values()),
        "rss_idle_mib": sum(idle["rss"].values()) / KIB / KIB,
        "rss_held_mib": sum(held["rss"].values()) / KIB / KIB,
        "rss_per_process_idle_mib": [v / KIB / KIB for v in idle["rss"].values()],
        "rss_per_process_held_mib": [v / KIB / KIB for v in held["rss"].values()],
        "rss_kib_per_conn": perConnection(idle["rss"], held["rss"], openCount),
        "pss_kib_per_conn": perConnection(idle["pss"], held["pss"], openCount),
        "parent_rss_growth_kib": (held["rss"][parent] - idle["rss"][parent]) / KIB,
        "kernel_kib_per_conn_both_ends": {
            k: (held["kernel"][k] - idle["kernel"][k]) / openCount / KIB
            for k in idle["kernel"]
        },
        "hold_s": arguments.hold,
        "hold_server_cpu_s": holdCpu,
        "echo_messages": messages,
        "echo_failures": failures,
        "echo_seconds": echoed,
        "echo_server_cpu_s": sum(afterEcho["cpu"].values()) - sum(held["cpu"].values()),
        "peak_during_echo_kib_per_conn": (
            sum(afterEcho["peak"].values()) - sum(held["rss"].values())
        )
        / openCount
        / KIB,
        "rss_after_echo_kib_per_conn": perConnection(
            idle["rss"], afterEcho["rss"], openCount
        ),
        "pings_answered": sum(line["pings"] for _, line in done),
        "close_seconds": closing,
        "close_clean": sum(line["clean"] for _, line in closed),
        "close_failures": closeFailures,
        "sockets_left": sum(afterClose["sockets"].values())
        - sum(idle["sockets"].values()),
        "rss_after_close_mib": sum(afterClose["rss"].values()) / KIB / KIB,
    }


def report(r: dict[str, Any]) -> list[tuple[str, str]]:
    kernel = r["kernel_kib_per_conn_both_ends"]
    rows = [
        (
            "connections",
            f"{r['open']:,} of {r['connections']:,} ({r['open_errors']} errors)",
        ),
        ("shape", f"{r['server']}; {r['generators']} load generators"),
        (
            "load average (1 min)",
            f"{r['load_before']:.2f} before, {r['load_during_mean']:.2f} mean and "
            f"{r['load_during_max']:.2f} max during, {r['load_after']:.2f} after",
        ),
        (
            "handshakes per second (aggregate)",
            f"{r['handshakes_per_s']:,.0f} "
            f"({r['open']:,} in {r['open_seconds']:.1f} s)",
        ),
        (
            "CPU while opening",
            f"server {r['server_cores_open']:.2f} cores "
            f"({r['server_cpu_us_per_handshake']:.0f} us per handshake"
            + (
                f", the parent {r['parent_cpu_open_s']:.1f} s"
                if r["workers_pids"]
                else ""
            )
            + "), generators "
            f"{r['generator_cpu_open_s'] / r['open_seconds']:.2f} cores",
        ),
        ("listen queue overflows (machine)", str(r["listen_drops"])),
        ("connections per worker", " / ".join(f"{n:,}" for n in r["per_worker"])),
        (
            "server RSS, all processes",
            f"{r['rss_idle_mib']:.0f} MiB idle, {r['rss_held_mib']:.0f} MiB open",
        ),
        (
            "RSS per connection (all processes)",
            f"{r['rss_kib_per_conn']:.2f} KiB (PSS {r['pss_kib_per_conn']:.2f} KiB"
            + (
                f"; the parent grew {r['parent_rss_growth_kib']:.0f} KiB)"
                if r["workers_pids"]
                else ")"
            ),
        ),
        (
            "kernel per connection, both ends",
            f"slab {kernel['slab']:.1f} KiB, "
            f"TCP buffers {kernel['tcp_buffers']:.1f} KiB",
        ),
    ]
    if r["hold_s"]:
        rows.append(
            (
                f"server CPU, {r['hold_s']:.0f} s idle",
                f"{r['hold_server_cpu_s']:.2f} s "
                f"({r['hold_server_cpu_s'] / r['hold_s'] / r['open'] * 1e6:.2f} "
                "us per connection-second)",
            )
        )
    ok = "all came back" if not r["echo_failures"] else f"FAILED {r['echo_failures']}"
    rows += [
        (
            "one echo each, all at once",
            f"{r['echo_seconds']:.2f} s, {r['echo_messages']:,} echoes, {ok}; "
            f"server CPU {r['echo_server_cpu_s']:.1f} s",
        ),
        (
            "peak RSS growth during the echo",
            f"{r['peak_during_echo_kib_per_conn']:.2f} KiB per connection",
        ),
        (
            "RSS per connection after the echo",
            f"{r['rss_after_echo_kib_per_conn']:.2f} KiB",
        ),
        ("keepalive pings answered", f"{r['pings_answered']:,}"),
        (
            "clean close of every connection",
            f"{r['close_seconds']:.2f} s ({r['close_clean'] / r['close_seconds']:,.0f}"
            f"/s), {r['close_clean']:,} clean"
            + (f", FAILED {r['close_failures']}" if r["close_failures"] else ""),
        ),
        (
            "after the close",
            f"{r['sockets_left']} client sockets left, "
            f"RSS {r['rss_after_close_mib']:.0f} MiB",
        ),
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 connections")
    parser.add_argument("--connections", type=int, default=None)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument(
        "--server",
        choices=["daemon", *SERVERS],
        default="daemon",
        help="daemon: twistd clws --workers W (the default); or one process "
        "of benchmarks/servers (no keepalive; at most about 19,000 connections)",
    )
    parser.add_argument("--generators", type=int, default=0, help="default: N/17,000")
    parser.add_argument("--per-source", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100, help="per generator")
    parser.add_argument("--hold", type=float, default=0.0, help="idle seconds")
    parser.add_argument("--ping-interval", help="passed to twistd clws")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--log", type=Path, help="keep the daemon's log here")
    arguments = parser.parse_args(argv)
    if arguments.connections is None:
        arguments.connections = 20_000 if arguments.quick else 100_000
    result = run(arguments)
    rows = report(result)
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    if arguments.json:
        arguments.json.write_text(json.dumps(result, indent=2))
    failed = (
        result["echo_failures"] or result["close_failures"] or result["open_errors"]
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
