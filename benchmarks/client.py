"""
Benchmark of txclws' client role: what the client process spends per echo
of a message it sends to a txclws server and reads back, one at a time.

    python benchmarks/client.py [--size BYTES] [--count N] [--tune-allocator]

It starts the benchmark server (C{servers/txclws_server.py}, echo at
C{/echo}) with the same Python, pinned to CPU 0 where C{taskset} exists,
pins itself to CPU 1, connects with C{txclws.connectWebSocket}, warms up
with 10 echoes, then times C{--count} echoes of C{--size} bytes (binary;
1 MiB by default) and of 32-byte text messages.  Reported per echo: the
client process's CPU (user + system, C{getrusage}: masking and sending the
message, reading and joining the echo) and the wall time.  The server
tunes glibc's malloc as C{twistd clws} does; the client does only with
C{--tune-allocator} (L{txclws.tuneAllocatorForMessages}), as an
application of its own may.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred

import txclws
from txclws import WebSocketResource, connectWebSocket

HERE = Path(__file__).resolve().parent


class Echoes(WebSocketResource):
    """
    Fires C{waiting} with each message the server sends back.
    """

    waiting: Deferred[Any] | None = None

    def _got(self, message: object) -> None:
        waiting, self.waiting = self.waiting, None
        assert waiting is not None
        waiting.callback(message)

    def receivedText(self, client: Any, message: str) -> None:
        self._got(message)

    def receivedBinary(self, client: Any, message: bytes) -> None:
        self._got(message)


def startServer() -> tuple[subprocess.Popen[str], int]:
    """
    The benchmark server on a free port of 127.0.0.1, and that port.
    """
    command = [sys.executable, str(HERE / "servers" / "txclws_server.py"), "0"]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    for line in server.stdout:
        if line.startswith("LISTENING "):
            return server, int(line.split()[1])
    raise SystemExit("the server did not start")


async def measure(port: int, size: int, count: int) -> list[str]:
    """
    Time C{count} echoes of C{size} bytes, then of 32-byte texts.
    """
    echoes = Echoes()
    client = await connectWebSocket(
        reactor,
        f"ws://127.0.0.1:{port}/echo",
        echoes,
        maxMessageSize=max(size, 1 << 20),
        maxFrameSize=max(size, 1 << 20),
    )
    lines = []
    for label, send, message, n in (
        (f"{size:,} B binary echo", client.writeBinary, b"\x07" * size, count),
        ("32 B text echo", client.writeText, "x" * 32, count * 20),
    ):
        for _ in range(10):
            echoes.waiting = Deferred()
            send(message)
            await echoes.waiting
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(n):
            echoes.waiting = Deferred()
            send(message)
            assert len(await echoes.waiting) == len(message)
        after, end = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        lines.append(
            f"{label}: client CPU {cpu / n * 1e6:,.1f} us per echo, "
            f"wall {(end - start) / n * 1e6:,.1f} us ({n:,} echoes)"
        )
    client.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--tune-allocator", action="store_true")
    args = parser.parse_args()
    if args.tune_allocator:
        print("client allocator:", txclws.tuneAllocatorForMessages(args.size))
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {1})
    server, port = startServer()
    lines: list[str] = []

    async def run() -> None:
        lines.extend(await measure(port, args.size, args.count))

    done = ensureDeferred(run())
    done.addErrback(lambda failure: failure.printTraceback())
    done.addBoth(lambda _: reactor.stop())
    try:
        reactor.run()
    finally:
        server.terminate()
        server.wait()
    print(f"txclws {txclws.__version__}, load average {os.getloadavg()[0]:.2f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
