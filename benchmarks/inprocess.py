"""
In-process cost of the server's hot paths, with no sockets and no reactor:
a factory's protocol on an in-memory transport, driven through the public
Twisted contract (C{buildProtocol}, C{makeConnection}, C{dataReceived}).

    python benchmarks/inprocess.py echo32 20000
    python benchmarks/inprocess.py echo1m 50
    python benchmarks/inprocess.py broadcast 200

Wall-clock times from this script move with the machine's load.  For a
figure that does not, count instructions with callgrind, at two sizes, and
divide the difference by the difference in messages (the fixed start-up
cost cancels out)::

    benchmarks/instructions.sh

which prints instructions per message (echo32, echo1m) or per delivery
(broadcast): the before/after figure for a change to the adapter or the
session, repeatable to within a fraction of a percent on any load.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from txclws import (
    ResourceRegistry,
    WebSocketFactory,
    WebSocketResource,
    anyOrigin,
    writeToClientsText,
)

KEY = base64.b64encode(b"0123456789abcdef").decode()
MASK = b"\x37\xfa\x21\x3d"


def clientFrame(opcode: int, payload: bytes) -> bytes:
    """
    A masked client frame (RFC 6455 5.2), FIN set.
    """
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload[:4096]))
    if n > 4096:
        # Content does not matter for the cost; keep building it cheap.
        masked += payload[4096:]
    return header + MASK + masked


class Echo(WebSocketResource):
    def receivedText(self, client: Any, message: str) -> None:
        client.writeText(message)

    def receivedBinary(self, client: Any, message: bytes) -> None:
        client.writeBinary(message)


class Quiet(WebSocketResource):
    pass


class SinkTransport(StringTransport):
    """
    A transport that forgets what is written, so memory stays flat.
    """

    def write(self, data: bytes) -> None:
        self.written = getattr(self, "written", 0) + len(data)

    def writeSequence(self, seq: Any) -> None:
        for data in seq:
            self.write(data)


def connect(factory: WebSocketFactory, path: str) -> Any:
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    transport = SinkTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(
        (
            f"GET {path} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return protocol


def makeFactory(**options: Any) -> WebSocketFactory:
    registry = ResourceRegistry()
    registry.register("/echo", Echo(), anyOrigin)
    registry.register("/quiet", Quiet(), anyOrigin)
    return WebSocketFactory(
        registry,
        maxFrameSize=1 << 24,
        maxMessageSize=1 << 24,
        pingInterval=None,
        reactor=MemoryReactorClock(),
        **options,
    )


def echo32(count: int) -> None:
    protocol = connect(makeFactory(), "/echo")
    batch = clientFrame(0x1, b"x" * 32) * 10
    for _ in range(count // 10):
        protocol.dataReceived(batch)


def echo1m(count: int) -> None:
    protocol = connect(makeFactory(), "/echo")
    frame = clientFrame(0x2, os.urandom(1 << 20))
    chunks = [frame[i : i + 65536] for i in range(0, len(frame), 65536)]
    for _ in range(count):
        for chunk in chunks:
            protocol.dataReceived(chunk)


def broadcast(count: int) -> None:
    factory = makeFactory()
    clients = [connect(factory, "/quiet") for _ in range(1000)]
    message = "m" * 64
    for _ in range(count):
        writeToClientsText(clients, message)


def echo32metrics(count: int) -> None:
    """
    echo32 with Prometheus metrics on (issue 17: their cost per message).
    """
    from txclws._metrics import ServerMetrics

    protocol = connect(makeFactory(metrics=ServerMetrics()), "/echo")
    batch = clientFrame(0x1, b"x" * 32) * 10
    for _ in range(count // 10):
        protocol.dataReceived(batch)


def echo32ratelimit(count: int) -> None:
    """
    echo32 with a per-client rate limit on, never reached (issue 17: the
    cost of counting messages and bytes).
    """
    from txclws import RateLimit

    limit = RateLimit(messagesPerSecond=1e9, bytesPerSecond=1e12)
    protocol = connect(makeFactory(rateLimit=limit), "/echo")
    batch = clientFrame(0x1, b"x" * 32) * 10
    for _ in range(count // 10):
        protocol.dataReceived(batch)


WORKLOADS = {
    "echo32": echo32,
    "echo32metrics": echo32metrics,
    "echo32ratelimit": echo32ratelimit,
    "echo1m": echo1m,
    "broadcast": broadcast,
}


def main() -> None:
    name, count = sys.argv[1], int(sys.argv[2])
    started = time.perf_counter()
    WORKLOADS[name](count)
    elapsed = time.perf_counter() - started
    print(f"{name} {count}: {elapsed:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
