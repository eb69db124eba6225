"""
A real C{redis-server} for the hub and scaling tests, on a free loopback
port, with nothing saved to disk; and a tiny blocking Redis client to look
at it (C{PUBSUB NUMSUB}: which channels the txclws processes subscribed).

Needs Debian's C{redis-server}: when it is missing and the tests run as
root on a machine with apt, they install it (L{findRedisServer}); otherwise
they fail, they never skip.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests._debian import findOrInstall

#: Debian's package of the server.
REDIS_PACKAGES = ["redis-server"]

#: Seconds to wait for the server to start or stop.
WAIT = 15.0


def findRedisServer() -> str:
    """
    The C{redis-server} executable, installed first if need be (see
    L{findOrInstall}).
    """
    return findOrInstall(("redis-server", "/usr/bin/redis-server"), REDIS_PACKAGES)


def freePort() -> int:
    """
    A TCP port free on 127.0.0.1 just now.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """
    One C{redis-server} on 127.0.0.1, which can be stopped and started
    again on the same port (to play an outage).

    @ivar port: its port.
    """

    def __init__(self, persistent: bool = False) -> None:
        """
        @param persistent: keep the data across restarts (an append-only
            file, synced at every write); otherwise nothing is saved.
        """
        self.persistent = persistent
        self.executable = findRedisServer()
        self.port = freePort()
        self.directory = tempfile.TemporaryDirectory(prefix="clws-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        """
        The C{--hub} URL of this server.
        """
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """
        Start the server and wait until it answers.
        """
        log = Path(self.directory.name, "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.executable,
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.directory.name,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + WAIT
        while True:
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not start:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """
        Stop the server (it closes every client connection).
        """
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(WAIT)
        self.process = None

    def close(self) -> None:
        """
        Stop the server and remove its directory.
        """
        self.stop()
        self.directory.cleanup()

    def log(self) -> str:
        """
        The server's log.
        """
        path = Path(self.directory.name, "redis.log")
        return path.read_text(errors="replace") if path.exists() else ""

    def command(self, *arguments: str) -> Any:
        """
        Run one command on a new connection and return its reply.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=WAIT) as conn:
            request = [f"*{len(arguments)}\r\n".encode()]
            for argument in arguments:
                data = argument.encode()
                request.append(b"$%d\r\n%s\r\n" % (len(data), data))
            conn.sendall(b"".join(request))
            return _readReply(conn.makefile("rb"))

    def subscribers(self, channel: str) -> int:
        """
        How many connections are subscribed to C{channel}: one per txclws
        process with subscribers in it.
        """
        _, count = self.command("PUBSUB", "NUMSUB", channel)
        return int(count)

    def waitForSubscribers(self, channel: str, count: int) -> None:
        """
        Wait until C{count} connections are subscribed to C{channel}.
        """
        deadline = time.monotonic() + WAIT
        while self.subscribers(channel) != count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{channel}: {self.subscribers(channel)} subscribers, not {count}"
                )
            time.sleep(0.02)


def _readReply(stream: Any) -> Any:
    """
    One RESP reply: a status, error, integer, bulk string or array.
    """
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise AssertionError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2]
    if kind == b"*":
        return [_readReply(stream) for _ in range(int(rest))]
    raise OSError(f"not a Redis reply: {line!r}")
