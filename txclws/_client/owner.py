# -*- test-case-name: tests.test_client -*-
"""
L{ClientOwner}: what a client's session asks of its owner (the
L{txclws._session.base.SessionOwner} protocol), for one connection: the
reactor, the close timeout, and keepalive pings through the same
L{KeepaliveSweep} a server's factory runs, over a single client.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from txclws._session.keepalive import IKeepaliveClient, KeepalivePolicy, KeepaliveSweep

__all__ = ["ClientOwner"]


class ClientOwner:
    """
    The owner of one client connection's session.

    @ivar maxBuffer: a broadcast to this connection (L{txclws.writeToClientsText}
        works on client connections too) is subject to the slow-client
        policy past this many buffered bytes.
    """

    debugResourceErrors = False
    debugServerErrors = False

    def __init__(
        self,
        reactor: IReactorTime,
        closeTimeout: float,
        pingInterval: float | None = None,
        pingTimeout: float | None = None,
        maxBuffer: int = 16 << 20,
        slowClientTimeout: float = 30.0,
        maxQueuedBytes: int = 1 << 20,
    ) -> None:
        """
        @param pingInterval: ping the server when it has been quiet this
            long; C{None}: never.
        @param pingTimeout: drop the connection when a ping stays
            unanswered this long (C{pingInterval} by default).
        @param maxQueuedBytes: while a resource callback is pending, the
            most bytes of the server's later messages read ahead and held
            before reading pauses (see the server's C{maxQueuedBytes}).
        """
        self.reactor = reactor
        self.closeTimeout = closeTimeout
        self.maxBuffer = maxBuffer
        self.slowClientTimeout = slowClientTimeout
        self.maxQueuedBytes = maxQueuedBytes
        self._policy = KeepalivePolicy(
            pingInterval,
            pingTimeout if pingTimeout is not None else (pingInterval or 0.0),
            None,
        )
        self._clients: set[IKeepaliveClient] = set()
        self._sweep = KeepaliveSweep(
            lambda: self.reactor, lambda: self._policy, self._clients
        )

    def debugFailure(self, failure: Failure) -> None:
        """
        Nothing: the client role has no debug switches.
        """

    def clientOpened(self, client: Any) -> None:
        """
        The session opened: start its keepalive pings, if any.
        """
        self._clients.add(client)
        self._sweep.clientsChanged()

    def clientClosed(self, client: Any) -> None:
        """
        The session's stream is gone: stop pinging.
        """
        self._clients.discard(client)
        self._sweep.clientsChanged()
