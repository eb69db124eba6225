"""
A burst of close frames read in one long reactor turn (issue 16, seen by
the 100,000-connection benchmark): the close timer bounds a peer that does
not read, never the server's own slowness.

Each close reply is queued in its transport during the turn that reads the
client's close frame; Twisted writes it on a later turn, once the poller
says the socket is writable.  Twisted's reactor runs the expired timers
(C{runUntilCurrent}) I{before} it polls for I/O, so when the turn that read
the close frames lasted longer than C{closeTimeout}, the timers armed early
in it expired first and aborted connections whose replies were queued,
though every client read.  The fix gives the stream one more reactor turn
for I/O on expiry before it aborts.

These tests need a real reactor and real sockets: L{twisted.internet.task.Clock}
runs a C{callLater(0)} made during C{advance()} within the same C{advance()},
so in memory the extra turn does not exist.
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource

from tests._rawsocket import RawClient, clientFrame, closePayload
from tests.test_closing import BIG_REPLY, ENTRIES, Served, openClient, stop, until
from txclws import IWebSocketClient, ResourceRegistry, WebSocketFactory, anyOrigin
from txclws._resource import WebSocketResource
from txclws.web import WebSocketSite, mountWebSocket

#: The factory's closeTimeout here, in seconds.
CLOSE_TIMEOUT = 0.3

#: How long the slow turn blocks the reactor: longer than closeTimeout.
SLOW_TURN = CLOSE_TIMEOUT * 2

#: Well-behaved clients closing at once.
CLIENTS = 100

#: Scheduling slack on top of a time bound: two cores shared with others.
GRACE = 1.0


class SlowTurn(WebSocketResource):
    """
    Counts the text messages it receives; the C{slowAt}-th blocks the
    reactor for L{SLOW_TURN} (the server being slow, as when it reads
    thousands of close frames in one turn).  A C{"big"} message is answered
    with 8 MiB (more than a client that does not read can take).

    @ivar closingBefore: when the slow callback began, how many clients had
        armed their close timer (had read their close frame).
    """

    def __init__(self, slowAt: int, factory: WebSocketFactory) -> None:
        self.slowAt = slowAt
        self.factory = factory
        self.count = 0
        self.closingBefore = -1

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        self.count += 1
        if message == "big":
            client.writeBinary(b"\x00" * BIG_REPLY)
        if self.count == self.slowAt:
            clients: Any = self.factory.clients
            self.closingBefore = sum(c._timer is not None for c in clients)
            time.sleep(SLOW_TURN)


async def serve(slowAt: int, entry: str) -> tuple[Served, Any, SlowTurn]:
    """
    Serve a L{SlowTurn} at C{/r} through C{entry} (C{"direct"} or
    C{"site"}), with C{closeTimeout} L{CLOSE_TIMEOUT} and no keepalive.
    """
    factory = WebSocketFactory(
        ResourceRegistry(), closeTimeout=CLOSE_TIMEOUT, pingInterval=None
    )
    resource = SlowTurn(slowAt, factory)
    if entry == "direct":
        factory.registerResource("/r", resource, anyOrigin)
        listener: Any = factory
    else:
        root = Resource()
        mountWebSocket(root, "/r", resource, anyOrigin, factory)
        listener = WebSocketSite(root, factory)
    endpoint = serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    listening = await endpoint.listen(listener)
    served = Served(listening.getHost().port, factory)
    return served, listening, resource


def openClients(port: int, count: int) -> list[RawClient]:
    """
    C{count} raw clients past the opening handshake (blocking).
    """
    return [openClient(port) for _ in range(count)]


def serverSockets(served: Served) -> list[socket.socket]:
    """
    The server's side of each client's connection (this process's).
    """
    return [client.transport.getHandle() for client in served.factory.clients]


def sendAllAtOnce(clients: list[tuple[RawClient, bytes]], served: Served) -> None:
    """
    From the reactor thread, so that the server reads nothing meanwhile:
    send each client's bytes, then wait (bounded) until every server
    socket is readable, so that the reactor's next poll finds all of them
    and reads them in one turn.
    """
    for client, data in clients:
        client.sock.send(data)
    waiting = serverSockets(served)
    deadline = time.monotonic() + 2.0
    while waiting and time.monotonic() < deadline:
        readable, _, _ = select.select(waiting, [], [], 0.05)
        waiting = [sock for sock in waiting if sock not in readable]
    assert not waiting, f"{len(waiting)} server sockets got nothing"


def outcome(client: RawClient) -> tuple[int | None, str]:
    """
    Read up to the server's close frame, then the end of the stream
    (bounded by the socket's timeout).

    @return: the close code (None: none came) and how the stream ended:
        C{"eof"} (a clean TCP close), C{"reset"} or C{"timeout"}.
    """
    code = None
    try:
        _, close = client.readUntilClose()
        code = close.closeCode
        return code, "eof" if client.atEOF() else "data"
    except (ConnectionResetError, EOFError) as error:
        return code, "reset" if isinstance(error, ConnectionResetError) else "eof"
    except TimeoutError:
        return code, "timeout"
    finally:
        client.sock.close()


def outcomes(clients: list[RawClient]) -> list[tuple[int | None, str]]:
    """
    L{outcome} of each client, in turn (blocking).
    """
    return [outcome(client) for client in clients]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest_twisted.ensureDeferred
async def test_closeBurstInSlowTurn(entry: str) -> None:
    """
    100 clients each send a message and their close frame at the same
    moment, and one client that never reads (its receive buffer small)
    sends a message answered with 8 MiB and its close frame.  The server
    reads all of them in one reactor turn, and the last message's callback
    blocks that turn for twice C{closeTimeout}, so the close timers armed
    before it have expired when the turn ends, with every close reply
    still queued.

    The slow callback is the last of the turn by count (whichever client's
    it is), so all the other clients had read their close frames and armed
    their timers first: checked (C{closingBefore}), as is that all the
    bytes were in the server's sockets before the reactor polled.

    Every well-behaved client gets the server's close frame and a clean
    TCP close (FIN, no reset); the client that does not read is still
    aborted, within C{closeTimeout} plus the slow turn (and a grace).
    Before, the expired timers aborted every connection whose close frame
    was read before the slow callback: no close frame, a reset.
    """
    served, listening, resource = await serve(CLIENTS + 1, entry)
    try:
        clients = await deferToThread(openClients, served.port, CLIENTS)
        stuck = await deferToThread(openClient, served.port, 4096)
        assert len(served.factory.clients) == CLIENTS + 1
        closing = clientFrame(0x8, closePayload(1000))
        burst = [(client, clientFrame(0x1, b"x") + closing) for client in clients]
        burst.append((stuck, clientFrame(0x1, b"big") + closing))
        started = time.monotonic()
        sendAllAtOnce(burst, served)
        results = await deferToThread(outcomes, clients)
        bound = CLOSE_TIMEOUT + SLOW_TURN + GRACE
        await until(lambda: not served.factory.clients, bound)
        dropped = time.monotonic() - started
        stuck.sock.close()
        assert resource.closingBefore == CLIENTS, resource.closingBefore
        bad = [(i, got) for i, got in enumerate(results) if got != (1000, "eof")]
        assert not bad, f"{len(bad)} of {CLIENTS}: {bad[:5]}"
        assert dropped <= bound, dropped
    finally:
        await stop(served, listening)


@pytest.mark.parametrize("entry", ENTRIES)
@pytest_twisted.ensureDeferred
async def test_nonReaderStillAbortedOnTime(entry: str) -> None:
    """
    The extra turn does not keep a peer that does not read: a client
    sends a message answered with 8 MiB and its close frame, and never
    reads; the server aborts it C{closeTimeout} after its close frame,
    plus one reactor turn (and a grace for a loaded machine), not before.
    """
    served, listening, _ = await serve(0, entry)
    try:
        stuck = await deferToThread(openClient, served.port, 4096)
        frames = clientFrame(0x1, b"big") + clientFrame(0x8, closePayload(1000))
        await deferToThread(stuck.send, frames)
        took = await until(lambda: not served.factory.clients, CLOSE_TIMEOUT + GRACE)
        assert took >= CLOSE_TIMEOUT * 0.9, took
    finally:
        stuck.sock.close()
        await stop(served, listening)
