"""
Soak: many concurrent idle WebSocket connections to one txclws server.

Starts one txclws echo server (this script with C{--serve}: a
L{WebSocketFactory} with its default settings, so keepalive on, pinging
every 20 s, serving C{txclws.demo.EchoResource}), opens N
connections to it (5,000 by default) with a client that does the opening
handshake by hand over asyncio sockets, and reports:

  - the server's RSS before and with the N connections open, and the
    difference per connection;
  - the time to open them all;
  - the time for every connection to send one message and get its echo,
    all at once;
  - the server's RSS after that.

Not a unit test:

    python benchmarks/soak.py [--connections 5000] [--concurrency 500]
                              [--hold SECONDS]

It raises its own limit on open files to the hard limit (the server
inherits it), and needs a hard limit above N plus a few dozen.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: The mask key of every client frame (any key will do).
MASK = b"\x37\xfa\x21\x3d"


def raiseFileLimit(needed: int) -> int:
    """
    Raise the soft limit on open files to the hard one.

    @return: the new soft limit.
    @raise SystemExit: the hard limit is below C{needed}.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"the hard limit on open files is {hard}; {needed} needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def startServer() -> tuple[subprocess.Popen[str], int]:
    """
    Start the echo server; return it and its port.
    """
    env = dict(os.environ)
    paths = [str(ROOT), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("LISTENING "):
        server.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return server, int(line.split()[1])


def serve() -> None:
    """
    Be the server: echo on a free port of 127.0.0.1, every factory setting
    at its default, and say C{LISTENING <port>} on standard output.
    """
    from twisted.internet import reactor
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    from txclws import ResourceRegistry, WebSocketFactory, anyOrigin
    from txclws.demo import EchoResource

    # Warnings only: a log line per connection is not what is measured.
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    observer = FilteringLogObserver(textFileLogObserver(sys.stderr), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    registry = ResourceRegistry()
    registry.register("/echo", EchoResource(), anyOrigin)
    factory = WebSocketFactory(registry)
    port = reactor.listenTCP(0, factory, backlog=1024, interface="127.0.0.1")
    print(f"LISTENING {port.getHost().port}", flush=True)
    reactor.run()


def rss(pid: int) -> int:
    """
    The resident set size of process C{pid}, in bytes.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def maskedFrame(opcode: int, payload: bytes) -> bytes:
    """
    A client frame (FIN set, masked), for payloads under 126 bytes.
    """
    assert len(payload) < 126
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + MASK + masked


class Client:
    """
    One WebSocket connection, opened by hand.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, number: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(number.to_bytes(16, "big")).decode()
        writer.write(
            (
                "GET /echo HTTP/1.1\r\n"
                "Host: 127.0.0.1\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101 "):
            raise RuntimeError(f"refused: {head[:40]!r}")
        return cls(reader, writer)

    async def readFrame(self) -> tuple[int, bytes]:
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def echo(self, text: str) -> None:
        """
        Send C{text}; wait for it to come back, answering keepalive pings.
        """
        self.writer.write(maskedFrame(0x1, text.encode()))
        while True:
            opcode, payload = await self.readFrame()
            if opcode == 0x9:
                self.writer.write(maskedFrame(0xA, payload))
            elif opcode == 0x1 and payload == text.encode():
                return
            else:
                raise RuntimeError(f"unexpected frame {opcode:#x} {payload[:20]!r}")

    def close(self) -> None:
        self.writer.close()


async def openAll(port: int, count: int, concurrency: int) -> list[Client]:
    """
    Open C{count} connections, at most C{concurrency} handshakes at once.
    """
    limit = asyncio.Semaphore(concurrency)

    async def one(number: int) -> Client:
        async with limit:
            return await Client.open(port, number)

    return await asyncio.gather(*(one(number) for number in range(count)))


async def soak(arguments: argparse.Namespace) -> list[tuple[str, str]]:
    server, port = startServer()
    try:
        # Let the server finish starting before measuring it idle.
        probe = await Client.open(port, 0)
        await probe.echo("warm up")
        probe.close()
        idle = rss(server.pid)
        started = time.perf_counter()
        clients = await openAll(port, arguments.connections, arguments.concurrency)
        opening = time.perf_counter() - started
        held = rss(server.pid)
        if arguments.hold:
            await asyncio.sleep(arguments.hold)
        started = time.perf_counter()
        await asyncio.gather(
            *(client.echo(f"hello {n}") for n, client in enumerate(clients))
        )
        echoing = time.perf_counter() - started
        after = rss(server.pid)
        for client in clients:
            client.close()
    finally:
        server.kill()
        server.wait()
    count = arguments.connections
    mib = 1024 * 1024
    return [
        ("connections", f"{count:,}"),
        ("server RSS, idle", f"{idle / mib:.1f} MiB"),
        ("server RSS, connections open", f"{held / mib:.1f} MiB"),
        ("RSS per connection", f"{(held - idle) / count / 1024:.1f} KiB"),
        (
            "time to open them",
            f"{opening:.2f} s ({count / opening:,.0f}/s, "
            f"{arguments.concurrency} handshakes at a time)",
        ),
        ("time for one echo each, all at once", f"{echoing:.2f} s"),
        ("server RSS after the echoes", f"{after / mib:.1f} MiB"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--hold",
        type=float,
        default=0.0,
        help="seconds to hold the connections idle before the echoes "
        "(over 20, the server's keepalive pings them)",
    )
    arguments = parser.parse_args()
    raiseFileLimit(arguments.connections + 64)
    if arguments.serve:
        serve()
        return
    rows = asyncio.run(soak(arguments))
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
