"""
Streaming benchmark of txclws: one large message through a streaming echo
resource, server and client both txclws, each in a process of its own.

    python benchmarks/streaming.py [--size BYTES] [--deflate] [--json FILE]

The client (C{connectWebSocket} with an L{IStreamingResource}) sends one
binary message of C{--size} bytes (2 GiB by default) with C{writeFrom}
from a file-like source that makes its bytes as they are read; the
server's resource (L{StreamingEcho}) relays each piece it is given into a
C{writeFrom} of a L{MessagePipe}, so the echo goes out while the message
comes in, and the client counts the echoed bytes.  Backpressure runs end
to end: the server's write buffer full pauses the pipe, whose pending
Deferred holds the server's delivery, which stops it reading; the client's
write buffer full pauses its file.  Reported: throughput (message bytes
per second, one way) and the RSS growth of each process (its peak RSS,
C{VmHWM}, less its RSS once connected).  Target: each under 64 MiB.

Modes (used by the driver and by tests/test_streaming_loopback.py):

    python benchmarks/streaming.py serve        # prints the port
    python benchmarks/streaming.py client PORT SIZE [--deflate]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from txclws import (
    ConnectionClosed,
    IStreamingResource,
    MessagePipe,
    PerMessageDeflate,
    ResourceRegistry,
    WebSocketFactory,
    WebSocketResource,
    anyOrigin,
    connectWebSocket,
)

MiB = 1 << 20


def rssKiB(pid: int | str = "self") -> tuple[int, int]:
    """
    The current and the peak resident set size of a process, in KiB.
    """
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def resetPeak(pid: int | str = "self") -> None:
    """
    Reset the peak RSS (C{VmHWM}) to the current RSS (Linux 4.0+), so that
    the peak measured covers the transfer only.
    """
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


@implementer(IStreamingResource)
class StreamingEcho(WebSocketResource):
    """
    Echoes each message as it comes: each piece goes into a L{MessagePipe}
    that a C{writeFrom} sends; its Deferred (pending while the client's
    write buffer is full) holds the next pieces.  C{/count} paths answer
    with the message's length instead, as text, at its end.
    """

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.pipes: dict[Any, MessagePipe] = {}
        self.counts: dict[Any, int] = {}

    def messageStarted(self, client: Any, opcode: int) -> None:
        self.counts[client] = 0
        if self.echo:
            pipe = self.pipes[client] = MessagePipe()
            done = client.writeFrom(pipe, binary=opcode == 2)
            done.addErrback(lambda failure: failure.trap(ConnectionClosed))

    def messageData(self, client: Any, data: bytes | str) -> Deferred[None] | None:
        self.counts[client] += len(data)
        if self.echo:
            return self.pipes[client].write(data)
        return None

    def messageEnded(self, client: Any) -> None:
        count = self.counts.pop(client)
        if self.echo:
            self.pipes.pop(client).finish()
        else:
            client.writeText(str(count))

    def clientDisconnected(self, client: Any) -> None:
        pipe = self.pipes.pop(client, None)
        if pipe is not None:
            pipe.fail(ConnectionClosed("client gone"))


def serve() -> None:
    """
    Serve L{StreamingEcho} at C{/echo} and its counting form at C{/count}
    on 127.0.0.1 (any port, printed), permessage-deflate offered.
    """
    from twisted.internet import reactor

    registry = ResourceRegistry()
    registry.register("/echo", StreamingEcho(), anyOrigin)
    registry.register("/count", StreamingEcho(echo=False), anyOrigin)
    factory = WebSocketFactory(registry, deflate=PerMessageDeflate())
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    print(port.getHost().port, flush=True)
    reactor.run()  # type: ignore[attr-defined]


class MadeFile:
    """
    A file-like source of C{size} bytes, made as they are read (a fixed
    pattern: no file, and nothing held).
    """

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = bytes(range(256)) * 256

    def read(self, size: int) -> bytes:
        size = min(size, self.left)
        self.left -= size
        if size <= len(self.block):
            return self.block[:size]
        return (self.block * (size // len(self.block) + 1))[:size]


@implementer(IStreamingResource)
class Counter(WebSocketResource):
    """
    Counts the bytes of the message that comes back; fires L{done} at its
    end with the count.
    """

    def __init__(self) -> None:
        self.received = 0
        self.done: Deferred[int] = Deferred()

    def messageStarted(self, client: Any, opcode: int) -> None:
        self.received = 0

    def messageData(self, client: Any, data: bytes | str) -> None:
        self.received += len(data)

    def messageEnded(self, client: Any) -> None:
        self.done.callback(self.received)


async def runClient(
    reactor: Any, port: int, size: int, deflate: bool
) -> dict[str, Any]:
    """
    Send one message of C{size} bytes to C{/echo} and wait for its echo.
    """
    resource = Counter()
    client = await connectWebSocket(
        reactor, f"ws://127.0.0.1:{port}/echo", resource, deflate=deflate or None
    )
    rss, _ = rssKiB()
    resetPeak()
    start = time.perf_counter()
    sent = client.writeFrom(MadeFile(size), binary=True)
    received = await resource.done
    await sent
    elapsed = time.perf_counter() - start
    _, peak = rssKiB()
    client.close()
    return {
        "bytes": size,
        "echoed": received,
        "seconds": elapsed,
        "MiBps": size / MiB / elapsed,
        "clientRssStartKiB": rss,
        "clientGrowthKiB": max(0, peak - rss),
    }


def client(port: int, size: int, deflate: bool) -> None:
    """
    The client process: print the result as one JSON line.
    """
    from twisted.internet import defer, task

    def main(reactor: Any) -> Deferred[None]:
        async def run() -> None:
            print(json.dumps(await runClient(reactor, port, size, deflate)), flush=True)

        return defer.ensureDeferred(run())

    task.react(main)


def measure(size: int, deflate: bool) -> dict[str, Any]:
    """
    Run a server and a client process; return the client's figures and the
    server's RSS growth over the transfer.
    """
    here = os.path.abspath(__file__)
    server = subprocess.Popen(
        [sys.executable, here, "serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        time.sleep(0.2)
        serverRss, _ = rssKiB(server.pid)
        resetPeak(server.pid)
        args = [sys.executable, here, "client", str(port), str(size)]
        if deflate:
            args.append("--deflate")
        out = subprocess.run(args, capture_output=True, text=True, check=True)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        _, serverPeak = rssKiB(server.pid)
        result["serverRssStartKiB"] = serverRss
        result["serverGrowthKiB"] = max(0, serverPeak - serverRss)
        result["deflate"] = deflate
        return result
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="measure")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--size", type=int, default=2 << 30)
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--json")
    options = parser.parse_args()
    if options.mode == "serve":
        serve()
    elif options.mode == "client":
        client(int(options.args[0]), int(options.args[1]), options.deflate)
    else:
        result = measure(options.size, options.deflate)
        result["load"] = os.getloadavg()
        print(
            f"{result['bytes'] / MiB:.0f} MiB echoed in {result['seconds']:.1f} s: "
            f"{result['MiBps']:.1f} MiB/s each way; RSS growth: server "
            f"{result['serverGrowthKiB'] / 1024:.1f} MiB, client "
            f"{result['clientGrowthKiB'] / 1024:.1f} MiB (load "
            f"{result['load'][0]:.2f})"
        )
        if options.json:
            with open(options.json, "w") as out:
                json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
