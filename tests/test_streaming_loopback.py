"""
Streaming over real sockets on 127.0.0.1: a large message through a
streaming echo resource in a server process of its own (its RSS measured
cleanly: growth bounded), a streamed upload interleaved with pings
answered on time, and the client streaming a file up.  The server and the
client are both txclws; the echo resource and the benchmark's client are
those of C{benchmarks/streaming.py}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from zope.interface import implementer

from txclws import (
    IStreamingResource,
    ResourceRegistry,
    WebSocketFactory,
    WebSocketResource,
    anyOrigin,
    connectWebSocket,
)

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARK = os.path.join(os.path.dirname(HERE), "benchmarks", "streaming.py")
MiB = 1 << 20


def test_largeEchoFlatMemory() -> None:
    """
    256 MiB streamed through the streaming echo (server and client each in
    a process of its own, the echo going out while the message comes in)
    come back whole, and neither process's peak RSS grows by 64 MiB.
    """
    out = subprocess.run(
        [sys.executable, BENCHMARK, "--size", str(256 * MiB), "--json", "/dev/stdout"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(out.stdout[out.stdout.index("{") :])
    assert result["echoed"] == 256 * MiB
    assert result["serverGrowthKiB"] < 64 * 1024
    assert result["clientGrowthKiB"] < 64 * 1024


@implementer(IStreamingResource)
class Sink(WebSocketResource):
    """
    Counts each streamed message's bytes, and answers its length at its end.
    """

    def __init__(self) -> None:
        self.count = 0
        self.pieces = 0
        self.digest: list[bytes] = []

    def messageStarted(self, client: Any, opcode: int) -> None:
        self.count = 0

    def messageData(self, client: Any, data: bytes | str) -> None:
        self.count += len(data)
        self.pieces += 1
        if len(self.digest) < 2:
            head = data[:4]
            self.digest.append(head.encode() if isinstance(head, str) else head)

    def messageEnded(self, client: Any) -> None:
        client.writeText(str(self.count))


class Answers(WebSocketResource):
    """
    The client's resource: records text answers and pong times.
    """

    def __init__(self) -> None:
        self.answers: list[str] = []
        self.pongs: list[float] = []
        self.answered: Deferred[str] = Deferred()

    def receivedText(self, client: Any, message: str) -> None:
        self.answers.append(message)
        self.answered.callback(message)

    def receivedPong(self, client: Any, payload: bytes) -> None:
        self.pongs.append(time.monotonic() - float(payload.decode()))


def listen(resource: Any) -> Any:
    """
    Serve C{resource} at C{/up} on 127.0.0.1.
    """
    registry = ResourceRegistry()
    registry.register("/up", resource, anyOrigin)
    return reactor.listenTCP(  # type: ignore[attr-defined]
        0, WebSocketFactory(registry), interface="127.0.0.1"
    )


class MadeFile:
    """
    A file-like source of C{size} bytes, made as they are read.
    """

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, size: int) -> bytes:
        size = min(size, self.left)
        self.left -= size
        return b"u" * size


@pytest_twisted.ensureDeferred
async def test_uploadWithPingsAnswered() -> None:
    """
    While the client streams 64 MiB up, its pings (every 20 ms) go out
    between fragments and come back, each within a second; the server's
    resource was given the message in many pieces, and counted all of it.
    """
    sink = Sink()
    port = listen(sink)
    answers = Answers()
    try:
        client = await connectWebSocket(
            reactor, f"ws://127.0.0.1:{port.getHost().port}/up", answers
        )

        def ping() -> None:
            client.ping(repr(time.monotonic()).encode())

        pinger = task.LoopingCall(ping)
        pinger.start(0.02)
        try:
            await client.writeFrom(MadeFile(64 * MiB))
            answer = await answers.answered
        finally:
            pinger.stop()
        assert answer == str(64 * MiB)
        assert sink.pieces > 64
        assert len(answers.pongs) >= 2
        assert max(answers.pongs) < 1.0
        client.close()
        await client.whenDisconnected()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_clientStreamsFileUp() -> None:
    """
    The client sends a real file with C{writeFrom(open(...))} as a text
    message; the server's streaming resource gets its bytes in order.
    """
    sink = Sink()
    port = listen(sink)
    answers = Answers()
    with tempfile.TemporaryFile() as source:
        source.write(b"abcd" + b"e" * (3 * MiB))
        source.seek(0)
        try:
            client = await connectWebSocket(
                reactor, f"ws://127.0.0.1:{port.getHost().port}/up", answers
            )
            await client.writeFrom(source, binary=False, frameSize=100000)
            assert await answers.answered == str(4 + 3 * MiB)
            assert sink.digest[0] == b"abcd"
            client.close()
            await client.whenDisconnected()
        finally:
            await port.stopListening()
