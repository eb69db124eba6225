# -*- test-case-name: tests.test_keepalive -*-
"""
Keepalive pings and the idle timeout: a pure per-client decision, and one
periodic sweep per factory that asks every client for it.

One sweep per factory rather than a timer per connection: an idle connection
then costs a few floats, not a pending delayed call, and the sweep of 10,000
clients takes a few milliseconds.  The sweep runs only while the factory has
clients, every quarter of the shortest interval configured, so a deadline is
met within a quarter of that interval.  It reaches the clients through
L{IKeepaliveClient} only; each client acts on L{keepaliveDecision}.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from zope.interface import Interface

__all__ = [
    "IKeepaliveClient",
    "Keepalive",
    "KeepalivePolicy",
    "KeepaliveSweep",
    "keepaliveDecision",
]


@dataclass(frozen=True, slots=True)
class KeepalivePolicy:
    """
    The factory's keepalive settings.

    @ivar pingInterval: ping a client quiet this long; C{None}: never.
    @ivar pingTimeout: drop a pinged client that stays quiet this long.
    @ivar idleTimeout: close a client that sent nothing but pongs to our
        pings this long; C{None}: never.
    """

    pingInterval: float | None
    pingTimeout: float
    idleTimeout: float | None


class Keepalive(Enum):
    """
    What to do with one client at a sweep.

    @cvar NOTHING: it is alive.
    @cvar CLOSE_IDLE: close it with 1001: idle too long.
    @cvar DROP: abort it: it did not answer our ping in time.
    @cvar PING: ping it: it has been quiet.
    """

    NOTHING = "NOTHING"
    CLOSE_IDLE = "CLOSE_IDLE"
    DROP = "DROP"
    PING = "PING"


def keepaliveDecision(
    now: float,
    lastReceived: float,
    lastActive: float,
    pingSentAt: float | None,
    policy: KeepalivePolicy,
    canPing: bool,
) -> Keepalive:
    """
    The keepalive verdict on one client.

    @param lastReceived: when its last bytes arrived.
    @param lastActive: when its last bytes other than pongs to our
        keepalive pings arrived.
    @param pingSentAt: when our unanswered keepalive ping left, or C{None}.
    @param canPing: whether it may be pinged now (its protocol has pings
        and it may be sent unsolicited frames).
    """
    idleTimeout = policy.idleTimeout
    if idleTimeout is not None and now - lastActive >= idleTimeout:
        return Keepalive.CLOSE_IDLE
    pingInterval = policy.pingInterval
    if pingInterval is None:
        return Keepalive.NOTHING
    if pingSentAt is not None:
        if now - pingSentAt >= policy.pingTimeout:
            return Keepalive.DROP
        return Keepalive.NOTHING
    if now - lastReceived >= pingInterval and canPing:
        return Keepalive.PING
    return Keepalive.NOTHING


class IKeepaliveClient(Interface):
    """
    What the sweep asks of each client.
    """

    def keepaliveCheck(now: float, policy: KeepalivePolicy) -> None:
        """
        Apply L{keepaliveDecision} at time C{now}: close, drop or ping this
        client, or nothing.
        """


class KeepaliveSweep:
    """
    Runs L{IKeepaliveClient.keepaliveCheck} on every client periodically,
    while there are clients and something to sweep for.
    """

    def __init__(
        self,
        clock: Callable[[], IReactorTime],
        policy: Callable[[], KeepalivePolicy],
        clients: Collection[IKeepaliveClient],
    ) -> None:
        """
        @param clock: returns the reactor to sweep on (read at each start, so
            that a factory's C{reactor} may be replaced).
        @param policy: returns the current L{KeepalivePolicy}.
        @param clients: the live collection of clients.
        """
        self._clock = clock
        self._policy = policy
        self._clients = clients
        self._loop: LoopingCall | None = None

    def period(self) -> float | None:
        """
        Seconds between sweeps, or C{None} when nothing needs sweeping.
        """
        policy = self._policy()
        intervals = [
            seconds
            for seconds in (
                policy.pingInterval,
                policy.pingTimeout if policy.pingInterval else None,
                policy.idleTimeout,
            )
            if seconds
        ]
        return min(intervals) / 4 if intervals else None

    def clientsChanged(self) -> None:
        """
        Start sweeping when the first client arrives; stop with the last.
        """
        running = self._loop is not None
        period = self.period() if self._clients else None
        if period is not None and not running:
            self._loop = LoopingCall(self.sweep)
            self._loop.clock = self._clock()
            self._loop.start(period, now=False)
        elif running and period is None:
            assert self._loop is not None
            self._loop.stop()
            self._loop = None

    def sweep(self) -> None:
        """
        Look at every client once.
        """
        now = self._clock().seconds()
        policy = self._policy()
        for client in list(self._clients):
            client.keepaliveCheck(now, policy)
