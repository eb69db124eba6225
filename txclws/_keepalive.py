# -*- test-case-name: tests.test_keepalive -*-
"""
Keepalive pings and the idle timeout, for every client of a factory at once.

One periodic sweep per factory rather than a timer per connection: an idle
connection then costs a few floats, not a pending delayed call, and the sweep
of 10,000 clients takes a few milliseconds.  The sweep runs only while the
factory has clients, every quarter of the shortest interval configured, so
a deadline is met within a quarter of that interval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.task import LoopingCall

if TYPE_CHECKING:
    from txclws._factory import WebSocketFactory

__all__ = ["KeepaliveSweep"]


class KeepaliveSweep:
    """
    Pings quiet clients, drops those that do not answer, closes idle ones.
    """

    def __init__(self, factory: WebSocketFactory) -> None:
        self._factory = factory
        self._loop: LoopingCall | None = None

    def period(self) -> float | None:
        """
        Seconds between sweeps, or L{None} when nothing needs sweeping.
        """
        factory = self._factory
        intervals = [
            seconds
            for seconds in (
                factory.pingInterval,
                factory.pingTimeout if factory.pingInterval else None,
                factory.idleTimeout,
            )
            if seconds
        ]
        return min(intervals) / 4 if intervals else None

    def clientsChanged(self) -> None:
        """
        Start sweeping when the first client arrives; stop with the last.
        """
        running = self._loop is not None
        period = self.period() if self._factory.clients else None
        if period is not None and not running:
            self._loop = LoopingCall(self.sweep)
            self._loop.clock = self._factory.reactor
            self._loop.start(period, now=False)
        elif running and period is None:
            assert self._loop is not None
            self._loop.stop()
            self._loop = None

    def sweep(self) -> None:
        """
        Look at every client once.
        """
        factory = self._factory
        now = factory.reactor.seconds()
        for client in list(factory.clients):
            client._keepaliveTick(
                now, factory.pingInterval, factory.pingTimeout, factory.idleTimeout
            )
