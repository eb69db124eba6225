"""
Helpers for the hostile-input suite (L{tests.test_hostile}): the limits
every entry point runs with, the bounds the suite asserts (the security
table of the docs), the resources served, measurements of a server from
outside (its memory, whether it still holds a connection, its descriptors)
and blocking raw clients for hostile exchanges.

Everything here that touches a socket blocks, with a bound on every wait:
call it from a thread (C{deferToThread}), never from the reactor thread.
"""

from __future__ import annotations

import os
import queue
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests._rawsocket import (
    SAMPLE_ACCEPT,
    TIMEOUT,
    RawClient,
    ServerFrame,
    clientFrame,
    upgradeRequest,
)

MiB = 1 << 20

#: The limits of every server of the suite, as C{WebSocketFactory}
#: arguments; L{daemonArguments} gives the same as C{twistd clws} options.
LIMITS: dict[str, Any] = {
    "handshakeTimeout": 1.0,
    "closeTimeout": 1.0,
    "pingInterval": 1.0,
    "pingTimeout": 1.0,
    "maxMessageSize": 1 * MiB,
    "maxFrameSize": 1 * MiB,
    "maxHeadSize": 4096,
    "maxBuffer": 1 * MiB,
    "deflate": True,
    "protocol76Support": True,
}

#: Scheduling slack allowed on top of every time bound, in seconds: two
#: cores shared with other jobs.
GRACE = 1.0

#: Memory the interpreter may gain during a case for reasons of its own
#: (allocator arenas, thread stacks, test bookkeeping), on top of a bound.
RSS_SLACK = 8 * MiB

#: How many copies of a bounded amount a server may hold at once: a message
#: as read, as assembled, as decoded text.
COPIES = 3


@dataclass(frozen=True)
class Bound:
    """
    What a hostile client can make a server hold, in bytes per connection
    and in seconds, with L{LIMITS}; L{None} where the row bounds nothing of
    that kind.

    @ivar setting: the settings that make the bound.
    """

    memory: int | None
    seconds: float | None
    setting: str


#: The security table (docs/security.md): one row per thing a client can
#: make the server hold.  The suite asserts each: memory as growth of the
#: server's RSS (at most C{COPIES * memory + RSS_SLACK}), time as how long
#: the server keeps the connection (at most C{seconds + GRACE}).
BOUNDS: dict[str, Bound] = {
    "request head": Bound(
        memory=LIMITS["maxHeadSize"] + 3,
        seconds=LIMITS["handshakeTimeout"],
        setting="maxHeadSize, handshakeTimeout (and at most 100 header lines)",
    ),
    "one message": Bound(
        memory=LIMITS["maxMessageSize"],
        seconds=None,
        setting="maxMessageSize (compressed messages count inflated bytes, "
        "and bytes after the end of a deflate stream are refused)",
    ),
    "queued events": Bound(
        memory=LIMITS["maxMessageSize"] + LIMITS["maxFrameSize"],
        seconds=LIMITS["pingInterval"] + LIMITS["pingTimeout"] + LIMITS["closeTimeout"],
        setting="maxMessageSize, maxFrameSize while a callback is pending; "
        "a peer that vanishes meanwhile is dropped by keepalive",
    ),
    "write buffer": Bound(
        memory=LIMITS["maxBuffer"],
        seconds=None,
        setting="maxBuffer (reading pauses while the write buffer is full: "
        "pongs cannot pile up)",
    ),
    "closing connection": Bound(
        memory=LIMITS["maxBuffer"],
        seconds=LIMITS["closeTimeout"] + LIMITS["pingInterval"],
        setting="closeTimeout (whichever side started the close, drained or "
        "not), checked at each keepalive sweep",
    ),
    "idle": Bound(
        memory=None,
        seconds=LIMITS["pingInterval"] + LIMITS["pingTimeout"] + LIMITS["closeTimeout"],
        setting="pingInterval, pingTimeout, closeTimeout",
    ),
    "connections": Bound(
        memory=None,
        seconds=LIMITS["handshakeTimeout"],
        setting="maxClients (503 beyond it); a connection that has not "
        "finished TLS and its head within handshakeTimeout is aborted",
    ),
}


def rssBound(row: str) -> int:
    """
    The most a server's RSS may grow under an attack on C{row}.
    """
    memory = BOUNDS[row].memory
    assert memory is not None, row
    return COPIES * memory + RSS_SLACK


def deadline(row: str) -> float:
    """
    The most seconds a server may keep a connection under an attack on
    C{row}.
    """
    seconds = BOUNDS[row].seconds
    assert seconds is not None, row
    return seconds + GRACE


def daemonArguments(limits: dict[str, Any], maxClients: int | None) -> list[str]:
    """
    The C{twistd clws} options giving C{limits} (and C{maxClients}).
    """
    arguments = [
        f"--handshake-timeout={limits['handshakeTimeout']}",
        f"--close-timeout={limits['closeTimeout']}",
        f"--ping-interval={limits['pingInterval']}",
        f"--ping-timeout={limits['pingTimeout']}",
        f"--max-message-size={limits['maxMessageSize']}",
        f"--max-frame-size={limits['maxFrameSize']}",
        f"--max-head-size={limits['maxHeadSize']}",
        f"--max-buffer={limits['maxBuffer']}",
    ]
    if limits["deflate"]:
        arguments.append("--deflate")
    if limits["protocol76Support"]:
        arguments.append("--hixie76")
    if maxClients is not None:
        arguments.append(f"--max-clients={maxClients}")
    return arguments


#: The resources every server of the suite serves, by path: the names
#: C{twistd clws --resource} imports.  C{/lobby} is an intermediate node:
#: only C{/lobby/main} is mounted.
RESOURCES: dict[str, str] = {
    "/echo": "txclws.demo.EchoResource",
    "/rooms": "tests.clws_resources.Rooms",
    "/rooms/main": "tests.clws_resources.MainRoom",
    "/lobby/main": "tests.clws_resources.MainRoom",
    "/stall": "tests.clws_resources.Stall",
    "/flood": "tests.clws_resources.Flood",
}

#: The origin the servers of the origin cases accept, and nothing else.
GOOD_ORIGIN = "http://good.example"


# -- measuring a server from outside ----------------------------------------


def vmRSS(pid: int) -> int:
    """
    The resident set size of process C{pid}, in bytes.
    """
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def socketDescriptors(pid: int) -> int:
    """
    How many sockets process C{pid} has open.
    """
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                count += 1
        except FileNotFoundError:  # closed while we looked
            pass
    return count


def serverHolds(serverPort: int, clientPort: int) -> bool:
    """
    Whether the server side of the TCP connection from C{clientPort} to
    C{serverPort} on 127.0.0.1 is still open in some process: an entry of
    C{/proc/net/tcp} with an owner (an inode), whatever its state.  An
    orphan (closed by the server, the kernel finishing) has inode 0.
    """
    wanted = (f"{serverPort:04X}", f"{clientPort:04X}")
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (local.split(":")[1], remote.split(":")[1]) == wanted:
                if inode != "0":
                    return True
    return False


def waitUntil(predicate: Callable[[], bool], seconds: float) -> float | None:
    """
    Poll C{predicate} until true, for at most C{seconds}.

    @return: the seconds it took, or L{None} if it never became true.
    """
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > seconds:
            return None
        time.sleep(0.05)


class PeakRSS:
    """
    Samples a process's RSS in a thread while a block runs: C{peak - base}
    is how much the attack made it grow.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base = vmRSS(pid)
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, vmRSS(self.pid))

    @property
    def growth(self) -> int:
        """
        The largest RSS seen, less the RSS at the start.
        """
        return self.peak - self.base

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        self.peak = max(self.peak, vmRSS(self.pid))


# -- hostile raw clients ------------------------------------------------------


class HostileClient(RawClient):
    """
    A L{RawClient} that can shrink its receive buffer (so that a server's
    reply stays in the server), reset instead of closing, and read whatever
    comes until the server closes.
    """

    def __init__(
        self, port: int, *, receiveBuffer: int | None = None, timeout: float = TIMEOUT
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receiveBuffer is not None:
            # Before connect(), so that the window scale stays small.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receiveBuffer)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self._buffer = bytearray()
        self._sending = threading.Lock()

    def send(self, data: bytes) -> None:
        """
        Send all of C{data} (one sender at a time: pongs go from the thread
        that reads).
        """
        with self._sending:
            self.sock.sendall(data)

    def readFrame(self) -> ServerFrame:
        """
        The next server frame that is not a ping; pings (the server's
        keepalive) are answered with a pong on the way.
        """
        while True:
            frame = super().readFrame()
            if frame.opcode != 0x9:
                return frame
            self.send(clientFrame(0xA, frame.payload))

    def handshake(self, target: str = "/echo", origin: str | None = None) -> None:
        """
        Open the WebSocket connection (with an C{Origin} if given); fail
        unless the server accepts.
        """
        self.send(upgradeRequest(target, origin=origin))
        statusLine, headers = self.readHead()
        assert statusLine == "HTTP/1.1 101 Switching Protocols", statusLine
        assert headers["sec-websocket-accept"] == SAMPLE_ACCEPT, headers

    def reset(self) -> None:
        """
        Close with a TCP reset (SO_LINGER 0) instead of a FIN.
        """
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.sock.close()

    def readToEOF(self, seconds: float) -> tuple[bytes, bool]:
        """
        Read until the server closes (EOF or reset), for at most C{seconds}.

        @return: what was read, and whether the server closed in time.
        """
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return bytes(self._buffer), False
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                continue
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return bytes(self._buffer), True
            if not chunk:
                return bytes(self._buffer), True
            self._buffer += chunk

    def sendFor(self, data: bytes, repeat: int, seconds: float) -> int:
        """
        Send C{data} C{repeat} times, stopping early when the server stops
        reading for C{seconds} (back-pressure) or closes.

        @return: how many bytes were sent.
        """
        sent = 0
        self.sock.settimeout(seconds)
        try:
            for _ in range(repeat):
                self.sock.sendall(data)
                sent += len(data)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.sock.settimeout(TIMEOUT)
        return sent


class Bystander:
    """
    A well-behaved client: it reads all the time (in a thread of its own),
    answers the server's pings, and echoes on demand.
    """

    def __init__(self, port: int, origin: str | None = None) -> None:
        self.client = openClient(port, origin=origin)
        self._frames: queue.Queue[ServerFrame | BaseException] = queue.Queue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stopped.is_set():
            try:
                self._frames.put(self.client.readFrame())
            except TimeoutError:
                continue
            except (OSError, EOFError, AssertionError) as error:
                self._frames.put(error)
                return

    def echo(self, text: str) -> ServerFrame:
        """
        Send C{text} and return the next frame that comes back.
        """
        self.client.send(clientFrame(0x1, text.encode("utf-8")))
        got = self._frames.get(timeout=TIMEOUT)
        if isinstance(got, BaseException):
            raise AssertionError(f"the bystander lost its connection: {got!r}")
        return got

    def close(self) -> None:
        """
        Stop reading and close the connection.
        """
        self._stopped.set()
        try:
            # Wakes the reading thread, which close() alone would not.
            self.client.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.client.sock.close()
        self._thread.join(TIMEOUT)


def failedWith(port: int, data: bytes) -> tuple[list[ServerFrame], ServerFrame, bool]:
    """
    Open a connection, send C{data}, and read up to the server's close
    frame (answering keepalive pings).

    @return: the frames before the close frame, the close frame, and whether
        the server then closed its side of the TCP connection.
    """
    with openClient(port) as client:
        client.send(data)
        before, close = client.readUntilClose()
        try:
            eof = client.atEOF()
        except ConnectionResetError:
            eof = True
        return before, close, eof


def openClient(
    port: int, target: str = "/echo", origin: str | None = None, **options: Any
) -> HostileClient:
    """
    A L{HostileClient} past a successful handshake on C{target}.
    """
    client = HostileClient(port, **options)
    client.handshake(target, origin)
    return client


def parseFrames(data: bytes) -> tuple[list[ServerFrame], bytes]:
    """
    The whole server frames at the start of C{data} (checked unmasked), and
    what follows them.
    """
    frames = []
    while len(data) >= 2:
        first, second = data[0], data[1]
        assert not second & 0x80, "a server frame is masked"
        length, offset = second & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                break
            (length,) = struct.unpack("!H", data[2:4])
            offset = 4
        elif length == 127:
            if len(data) < 10:
                break
            (length,) = struct.unpack("!Q", data[2:10])
            offset = 10
        if len(data) < offset + length:
            break
        frames.append(
            ServerFrame(
                bool(first & 0x80),
                first & 0x70,
                first & 0x0F,
                data[offset : offset + length],
            )
        )
        data = data[offset + length :]
    return frames, data


def splitResponse(data: bytes) -> tuple[str, dict[str, str], bytes]:
    """
    An HTTP response's status line, headers (lower-case names) and what
    follows the head.
    """
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, f"no complete response head: {data[:200]!r}"
    statusLine, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return statusLine, headers, rest


def statusOf(data: bytes) -> int:
    """
    The status code of the HTTP response at the start of C{data}.
    """
    statusLine, _, _ = splitResponse(data)
    version, code, *_ = statusLine.split(" ")
    assert version == "HTTP/1.1", statusLine
    return int(code)


def answer(port: int, request: bytes, seconds: float = TIMEOUT) -> tuple[bytes, bool]:
    """
    Send C{request} on a new connection, then read until the server closes
    (at most C{seconds}).

    @return: what was read, and whether the server closed in time.
    """
    with HostileClient(port) as client:
        client.send(request)
        return client.readToEOF(seconds)


# -- TLS ------------------------------------------------------------------------


def halfClientHello() -> bytes:
    """
    The first half of a real TLS ClientHello.
    """
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    connection = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        connection.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[:1] == b"\x16", hello[:10]  # a handshake record
    return hello[: len(hello) // 2]


@contextmanager
def tlsClient(
    port: int, cafile: str, alpn: list[str] | None
) -> Iterator[tuple[ssl.SSLSocket, str | None]]:
    """
    A Python C{ssl} client of C{port} trusting C{cafile}, offering C{alpn};
    yields the socket, past the TLS handshake, and the protocol the server
    selected.
    """
    context = ssl.create_default_context(cafile=cafile)
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    with context.wrap_socket(raw, server_hostname="localhost") as wrapped:
        yield wrapped, wrapped.selected_alpn_protocol()


def upgradeOver(sock: socket.socket) -> tuple[str, str]:
    """
    Send an opening handshake over C{sock} and echo one text message.

    @return: the status line and the echoed text.
    """
    sock.sendall(upgradeRequest("/echo"))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    statusLine, headers, rest = splitResponse(data)
    if not statusLine.startswith("HTTP/1.1 101"):
        return statusLine, ""
    assert headers["sec-websocket-accept"] == SAMPLE_ACCEPT
    sock.sendall(clientFrame(0x1, b"over tls"))
    while True:
        frames, _ = parseFrames(rest)
        if frames:
            return statusLine, frames[0].payload.decode("utf-8")
        chunk = sock.recv(65536)
        if not chunk:
            return statusLine, ""
        rest += chunk
