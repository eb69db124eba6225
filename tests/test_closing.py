"""
Closing connections and vanished peers over real sockets (issue 11, defects
2 and 3; issue 12's TLS close): every closing connection is gone within
C{closeTimeout}, a peer that leaves while its callback is pending is seen,
a half-closed peer is closed, and over TLS every close is a TLS close.

Each server runs in this process on 127.0.0.1, directly on a
L{WebSocketFactory} and through a L{WebSocketSite}; its descriptors are
those of C{/proc/self/fd}.  Clients are raw sockets, in threads, each
operation bounded by a timeout.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource

from tests._daemon import Daemon
from tests._rawsocket import RawClient, clientFrame, closePayload
from tests._silent_tls_clients import silentClients
from tests.test_tls import endpointString, makeCertificate
from txclws import IWebSocketClient, ResourceRegistry, WebSocketFactory, anyOrigin
from txclws._resource import WebSocketResource
from txclws.web import WebSocketSite, mountWebSocket

#: The factory's closeTimeout in these tests, in seconds.
CLOSE_TIMEOUT = 1.0

#: The keepalive of these tests: a sweep every second (a quarter of the
#: ping interval), but a client that does not answer pings is dropped only
#: after 4 + 30 s, so that a drop in a few seconds is not keepalive's.
PING_INTERVAL = 4.0
PING_TIMEOUT = 30.0
SWEEP = PING_INTERVAL / 4

#: maxQueuedBytes in these tests.
QUEUE_BOUND = 64 * 1024

#: The largest read of a Twisted transport, beyond the queue's bound.
READ_SIZE = 64 * 1024

#: A reply larger than the kernel buffers of a client whose receive buffer
#: is small: it stays in the server's write buffer.
BIG_REPLY = 8 << 20


class BigReply(WebSocketResource):
    """
    Answers every text message with 8 MiB.
    """

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        client.writeBinary(b"\x00" * BIG_REPLY)


class Hold(WebSocketResource):
    """
    Holds every text message's callback on a Deferred nobody fires (until
    the test does); records disconnections.
    """

    def __init__(self) -> None:
        self.pending: list[Deferred[None]] = []
        self.gone: list[IWebSocketClient] = []

    def receivedText(self, client: IWebSocketClient, message: str) -> Deferred[None]:
        self.pending.append(Deferred())
        return self.pending[-1]

    def clientDisconnected(self, client: IWebSocketClient) -> None:
        self.gone.append(client)


class Served:
    """
    A resource served at C{/r} on 127.0.0.1.

    @ivar port: the port.
    @ivar factory: the factory whose clients are counted.
    """

    def __init__(self, port: int, factory: WebSocketFactory) -> None:
        self.port = port
        self.factory = factory


def makeFactory(**limits: Any) -> WebSocketFactory:
    """
    A factory with this module's timeouts and C{limits}.
    """
    settings: dict[str, Any] = {
        "closeTimeout": CLOSE_TIMEOUT,
        "pingInterval": PING_INTERVAL,
        "pingTimeout": PING_TIMEOUT,
        "maxQueuedBytes": QUEUE_BOUND,
        **limits,
    }
    return WebSocketFactory(ResourceRegistry(), **settings)


async def serve(
    resource: WebSocketResource, entry: str, endpoint: str = "tcp:0:interface=127.0.0.1"
) -> tuple[Served, Any]:
    """
    Serve C{resource} at C{/r} through C{entry}: C{"direct"} (the factory's
    registry) or C{"site"} (mounted in a L{WebSocketSite}'s tree).

    @return: the L{Served} and the listening port.
    """
    factory = makeFactory()
    if entry == "direct":
        factory.registerResource("/r", resource, anyOrigin)
        listener: Any = factory
    else:
        root = Resource()
        mountWebSocket(root, "/r", resource, anyOrigin, factory)
        listener = WebSocketSite(root, factory)
    listening = await serverFromString(reactor, endpoint).listen(listener)
    return Served(listening.getHost().port, factory), listening


async def stop(served: Served, listening: Any) -> None:
    """
    Stop listening and drop whatever client is left.
    """
    await listening.stopListening()
    for client in list(served.factory.clients):
        client.abort()
    await until(lambda: not served.factory.clients, 5.0)


ENTRIES = ["direct", "site"]


def descriptors() -> int:
    """
    The descriptors this process (the server, and the test's clients) has.
    """
    return len(os.listdir("/proc/self/fd"))


async def until(condition: Callable[[], bool], seconds: float) -> float:
    """
    Let the reactor run until C{condition()} holds, for at most C{seconds}.

    @return: how long it took.
    @raise AssertionError: it did not hold in time.
    """
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not within {seconds} s")
        await deferLater(reactor, 0.02, lambda: None)
    return time.monotonic() - start


def openClient(port: int, receiveBuffer: int | None = None) -> RawClient:
    """
    A raw client past the opening handshake at C{/r} (blocking).

    @param receiveBuffer: C{SO_RCVBUF}, set before connecting (it bounds
        the TCP window), or L{None} for the default.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receiveBuffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receiveBuffer)
    sock.settimeout(5.0)
    sock.connect(("127.0.0.1", port))
    client = RawClient.fromSocket(sock)
    client.handshake("/r")
    return client


def reset(sock: socket.socket) -> None:
    """
    Close C{sock} with a reset (C{SO_LINGER} 0), as a vanishing host does.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- issue 11, defect 2: close, then stop reading ------------------------


@pytest.mark.parametrize("entry", ENTRIES)
@pytest_twisted.ensureDeferred
async def test_closeFrameThenNoReading(entry: str) -> None:
    """
    A client sends, in one packet, a message whose answer is 8 MiB and its
    close frame, and never reads.  The server echoes the close and closes
    once its write buffer drains, which never happens: C{closeTimeout}
    after the close frame the connection is aborted, its C{maxClients}
    slot and descriptor come back (within C{closeTimeout} plus a second).
    Before, the close waited for ever, past the keepalive sweep too.
    """
    served, listening = await serve(BigReply(), entry)
    try:
        baseline = descriptors()
        client = await deferToThread(openClient, served.port, 4096)
        try:
            assert len(served.factory.clients) == 1
            frames = clientFrame(0x1, b"big") + clientFrame(0x8, closePayload(1000))
            await deferToThread(client.send, frames)
            took = await until(lambda: not served.factory.clients, CLOSE_TIMEOUT + 1.0)
            assert took >= CLOSE_TIMEOUT * 0.9, took  # the timeout dropped it
            await until(lambda: descriptors() == baseline + 1, 0.5)
        finally:
            client.sock.close()
    finally:
        await stop(served, listening)


# -- issue 11, defect 3: gone while a callback is pending ----------------


def messagesThen(port: int, leave: str, flood: int) -> RawClient:
    """
    Open, send two messages (the first one's callback never finishes), or
    C{flood} bytes of messages, then leave as C{leave} says: C{"fin"}
    (C{shutdown(SHUT_WR)}, then close) or C{"rst"}.
    """
    client = openClient(port)
    client.send(clientFrame(0x1, b"one") + clientFrame(0x1, b"two"))
    if flood:
        message = clientFrame(0x1, b"f" * 4000)
        client.send(message * (flood // len(message) + 1))
    if leave == "fin":
        client.sock.shutdown(socket.SHUT_WR)
        client.sock.close()
    else:
        reset(client.sock)
    return client


@pytest.mark.parametrize("leave", ["fin", "rst"])
@pytest.mark.parametrize("entry", ENTRIES)
@pytest_twisted.ensureDeferred
async def test_goneWhilePending(entry: str, leave: str) -> None:
    """
    A client whose first message's callback never finishes sends another
    message, then leaves (FIN or RST).  The server reads on while the
    callback is pending, so it sees the client leave at once: its slot and
    descriptor come back (well within a keepalive sweep); the resource is
    told once the callback finishes, and never of the queued message.
    Before, reading was paused with a message queued, and the client held
    its slot for ever.
    """
    resource = Hold()
    served, listening = await serve(resource, entry)
    try:
        baseline = descriptors()
        await deferToThread(messagesThen, served.port, leave, 0)
        await until(lambda: not served.factory.clients, SWEEP)
        await until(lambda: descriptors() == baseline, 0.5)
        assert len(resource.pending) == 1 and resource.gone == []
        resource.pending[0].callback(None)
        assert len(resource.gone) == 1
    finally:
        await stop(served, listening)


@pytest.mark.parametrize("entry", ENTRIES)
@pytest_twisted.ensureDeferred
async def test_floodThenGoneWhilePending(entry: str) -> None:
    """
    A client whose callback is pending floods 1 MiB of messages, past
    C{maxQueuedBytes} (64 KiB), then resets.  The server queues at most the
    bound plus one read, stops reading, and finds at its next keepalive
    sweep that the peer is gone (the socket's TCP state): the slot and the
    descriptor come back within a sweep (plus a second), long before a
    keepalive ping could time out.
    """
    resource = Hold()
    served, listening = await serve(resource, entry)
    try:
        baseline = descriptors()
        client = await deferToThread(openClient, served.port)
        sessions = list(served.factory.clients)
        await deferToThread(client.send, clientFrame(0x1, b"one"))
        message = clientFrame(0x1, b"f" * 4000)
        await deferToThread(client.send, message * 256)
        [session] = sessions
        await until(lambda: session._pausedForCallback, 5.0)
        queued = sum(len(event.data) + 64 for event in session._queue)
        assert QUEUE_BOUND < queued <= QUEUE_BOUND + READ_SIZE + 64 * 17, queued
        reset(client.sock)
        took = await until(lambda: not served.factory.clients, SWEEP + 1.0)
        print(f"\nflood then RST: dropped after {took:.2f} s")
        await until(lambda: descriptors() == baseline, 0.5)
        resource.pending[0].callback(None)
        assert len(resource.gone) == 1
    finally:
        await stop(served, listening)


# -- half-closed peers ------------------------------------------------------


def halfClose(port: int, partial: bytes) -> bytes:
    """
    Open, send C{partial} (nothing, or the start of a frame), shut our
    writing half, and read until the server closes (bounded).

    @return: what the server sent after the handshake.
    """
    client = openClient(port)
    client.send(partial)
    client.sock.shutdown(socket.SHUT_WR)
    received = client.unread
    try:
        while chunk := client.sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    client.sock.close()
    return received


@pytest.mark.parametrize(
    "partial",
    [b"", clientFrame(0x1, b"x" * 100)[:40]],
    ids=["after-head", "mid-message"],
)
@pytest.mark.parametrize("entry", ENTRIES)
@pytest_twisted.ensureDeferred
async def test_halfClosed(entry: str, partial: bytes) -> None:
    """
    A client that shuts its writing half after the handshake, or halfway
    through a frame, is closed by the server (1006: no close frame is
    owed to a peer whose stream ended), and its slot comes back within
    C{closeTimeout}.
    """
    resource = Hold()
    served, listening = await serve(resource, entry)
    try:
        received = deferToThread(halfClose, served.port, partial)
        assert await received in (b"", b"\x88\x02\x03\xea")
        await until(lambda: not served.factory.clients, CLOSE_TIMEOUT)
        assert len(resource.gone) == 1
    finally:
        await stop(served, listening)


# -- TLS: every close is a TLS close --------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """
    A throw-away certificate for C{localhost}.
    """
    return makeCertificate(tmp_path_factory.mktemp("tls"))


class Closer(WebSocketResource):
    """
    Closes the client with 4000 when it sends C{"close me"}; otherwise
    echoes.
    """

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        if message == "close me":
            client.close(4000, "")
        else:
            client.writeText(message)


def closeOverTLS(port: int, cert: Path, how: str) -> tuple[int | None, str]:
    """
    Over TLS (ragged EOFs not suppressed): open, then end the WebSocket
    as C{how} says: C{"peer"}, our close frame; C{"server"}, the server's
    (answered); C{"failure"}, a reserved opcode the server fails.  Then read
    once more and shut TLS down.

    @return: the server's close code, and what followed: C{"close_notify"}
        (the read found the TLS close, and C{unwrap} completed), or the
        exception's name.
    """
    context = ssl.create_default_context(cafile=str(cert))
    sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    client = RawClient.fromSocket(
        context.wrap_socket(
            sock, server_hostname="localhost", suppress_ragged_eofs=False
        )
    )
    client.handshake("/r")
    if how == "peer":
        client.send(clientFrame(0x8, closePayload(1000)))
    elif how == "server":
        client.send(clientFrame(0x1, b"close me"))
    else:
        client.send(clientFrame(0x3))
    _, close = client.readUntilClose()
    if how == "server":
        client.send(clientFrame(0x8, closePayload(4000)))
    try:
        assert client.unread == b""
        after = client.sock.recv(1)
        if after != b"":
            return close.closeCode, f"data {after!r}"
        client.sock.unwrap()
        return close.closeCode, "close_notify"
    except (ssl.SSLError, OSError) as error:
        return close.closeCode, type(error).__name__
    finally:
        client.sock.close()


@pytest.mark.parametrize(
    "how, code",
    [("peer", 1000), ("server", 4000), ("failure", 1002)],
    ids=["peer-closes", "server-closes", "server-fails"],
)
@pytest.mark.parametrize("entry", ENTRIES)
@pytest_twisted.ensureDeferred
async def test_tlsCloseNotify(
    entry: str, how: str, code: int, certificate: tuple[Path, Path]
) -> None:
    """
    Over TLS, after the WebSocket close handshake, whoever started it (or
    a failure of the client's), the server closes TLS (C{close_notify},
    RFC 8446 6.1) before TCP: the client reads the TLS close, not a
    truncation, and its own TLS shutdown completes.  Before, a failure
    half-closed TCP under TLS (the TLS wrapper forwards
    C{loseWriteConnection} to TCP): a ragged EOF.
    """
    served, listening = await serve(Closer(), entry, endpointString(certificate))
    try:
        result = await deferToThread(closeOverTLS, served.port, certificate[0], how)
        assert result == (code, "close_notify")
        await until(lambda: not served.factory.clients, CLOSE_TIMEOUT + 1.0)
    finally:
        await stop(served, listening)


# -- the daemon on ssl: drops silent TLS clients ----------------------------


def test_daemonDropsSilentTLS(certificate: tuple[Path, Path]) -> None:
    """
    C{twistd clws} on an C{ssl:} port (the front door, through
    L{WebSocketSite}) drops 20 clients that never send a ClientHello at
    C{--handshake-timeout} (1 s), all within a second after it.
    """
    cert, key = certificate
    port = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}:backlog=511"
    with Daemon("--port", port, "--handshake-timeout", "1") as daemon:
        outcomes = silentClients(daemon.port, 20, 0, 4.0)
    late = [o for o in outcomes if o[0] is None or not 0.9 <= o[0] <= 2.0]
    assert not late, outcomes
    assert {how for _, how in outcomes} <= {"eof", "reset"}, outcomes
