# -*- test-case-name: tests.test_drain -*-
"""
How a server lets its clients go on purpose: every client closed at once
on shutdown (L{closeClients}, 1001), or drained for a restart
(L{drainClients}): refuse new handshakes (503 with C{Retry-After}, decided
in L{txclws._core.accept}), close each client with 1012 "service restart"
at its own random offset in [0, spread] seconds so that they do not all
reconnect at the same moment, and wait a bounded time.

Both wait on the owner's L{DrainOwner.clientsGone} and end with a
deadline that aborts the clients still there: a client that does not
answer its close frame is aborted by its own C{closeTimeout} anyway, the
deadline bounds the whole.

@since: 0.2.0
"""

from __future__ import annotations

import math
import random as _random
from typing import Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from txclws._session.session import WebSocketSession

__all__ = ["DrainOwner", "closeClients", "drainClients", "drainOffsets"]

_log = Logger()


class DrainOwner(Protocol):
    """
    What a drain needs of its server (L{txclws.WebSocketFactory}).

    @ivar draining: set by L{drainClients}: handshakes are refused while
        it is true.
    """

    reactor: IReactorTime
    clients: set[WebSocketSession]
    closeTimeout: float
    draining: bool

    def clientsGone(self) -> Deferred[None]:
        """
        A Deferred firing once no client is left.
        """


class Uniform(Protocol):
    """
    A random source: C{random.Random}, or a test's own.
    """

    def uniform(self, a: float, b: float) -> float:
        """
        A number in [a, b].
        """


def drainOffsets(count: int, spread: float, source: Uniform) -> list[float]:
    """
    The offset, in seconds after the drain starts, at which each of
    C{count} clients is sent its 1012: uniform in [0, C{spread}] (clamped
    there, whatever C{source} returns), so that the clients' reconnects
    are spread over as long.
    """
    return [min(max(source.uniform(0.0, spread), 0.0), spread) for _ in range(count)]


def drainClients(
    owner: DrainOwner,
    timeout: float | None,
    spread: float,
    source: Uniform | None = None,
) -> Deferred[None]:
    """
    Drain C{owner}: refuse new handshakes from now on, close every client
    with 1012 at its own offset (L{drainOffsets}), and abort those still
    there C{timeout} seconds after the start.

    @param timeout: the most seconds to wait; C{None}: C{spread} plus the
        owner's C{closeTimeout}.
    @param spread: the offsets' range, in seconds (0: every client at once).
    @param source: the random source; C{random.Random()} by default.
    @return: a Deferred firing (with C{None}) once every client is gone.
    @raise ValueError: C{spread} is negative or not finite, or C{timeout}
        is under C{spread}.
    """
    if not (math.isfinite(spread) and spread >= 0):
        raise ValueError(f"spread must be 0 or more seconds, not {spread!r}")
    if timeout is None:
        timeout = spread + owner.closeTimeout
    if not (math.isfinite(timeout) and timeout >= spread):
        raise ValueError(f"timeout must be at least spread, {spread}s: {timeout!r}")
    owner.draining = True
    clients = list(owner.clients)
    _log.info(
        "draining {count} clients: 1012 (service restart) over {spread}s,"
        " waiting at most {timeout}s",
        count=len(clients),
        spread=spread,
        timeout=timeout,
    )
    offsets = drainOffsets(len(clients), spread, source or _random.Random())
    calls = [
        owner.reactor.callLater(offset, client.closeForRestart)
        for offset, client in zip(offsets, clients, strict=True)
    ]
    return _untilGone(owner, timeout, calls)


def closeClients(
    owner: DrainOwner, code: int, reason: str, timeout: float | None
) -> Deferred[None]:
    """
    Start the close handshake with every client of C{owner} now, and abort
    those still there after C{timeout} seconds (C{closeTimeout} by default).

    @return: a Deferred firing once every client is gone.
    """
    for client in list(owner.clients):
        client.close(code, reason)
    return _untilGone(owner, owner.closeTimeout if timeout is None else timeout, [])


def _untilGone(
    owner: DrainOwner, timeout: float, pending: list[IDelayedCall]
) -> Deferred[None]:
    """
    Wait for C{owner}'s clients to go; after C{timeout} seconds abort the
    rest.  Once all are gone, cancel the C{pending} calls still to run.
    """
    if not owner.clients:
        _cancel(pending)
        return succeed(None)
    deadline = owner.reactor.callLater(timeout, _abortAll, owner)
    gone = owner.clientsGone()

    def cancelTimers(result: None) -> None:
        _cancel([deadline, *pending])
        return result

    return gone.addBoth(cancelTimers)


def _cancel(calls: list[IDelayedCall]) -> None:
    for call in calls:
        if call.active():
            call.cancel()


def _abortAll(owner: DrainOwner) -> None:
    for client in list(owner.clients):
        client.abort()
