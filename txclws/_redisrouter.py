# -*- test-case-name: tests.test_hub,tests.test_scaling,tests.test_channels -*-
"""
What the two Redis connections of a L{txclws.redishub.RedisHub} tell it
(L{txclws._redislinks.IRedisLinkObserver}), routed to the parts of the
hub: a connection up or lost goes to the publishing side
(L{txclws._rediscommands}) or the pub/sub side (L{txclws._redispubsub}),
with the presence rebuilt and the kept channels caught up; a message that
arrives goes, by its kind, to the pub/sub, history or presence side.

@since: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure

from txclws._rediscommands import (
    JOINED,
    KEPT_BINARY,
    KEPT_TEXT,
    LEFT,
    ORIGIN_SIZE,
    TEXT,
    RedisCommands,
)
from txclws._redishistory import RedisHistory
from txclws._redislinks import PUBLISHER
from txclws._redispresence import RedisPresence
from txclws._redispubsub import RedisPubSub
from txclws._subscriptions import Subscriptions

__all__ = ["RedisRouter"]

# The hub's log lines, wherever they are written from.
_log = Logger(namespace="txclws.redishub")


class RedisRouter:
    """
    A hub's L{txclws._redislinks.IRedisLinkObserver}: its connections'
    news, routed to its parts.
    """

    def __init__(
        self,
        address: Callable[[], str],
        running: Callable[[], bool],
        subscriptions: Subscriptions,
        parts: tuple[RedisCommands, RedisPubSub, RedisHistory, RedisPresence],
    ) -> None:
        """
        @param address: the Redis server's C{host:port}.
        @param running: whether the hub runs (a lost connection is news
            only then).
        @param parts: the hub's publishing, pub/sub, history and presence
            sides.
        """
        self.address = address
        self._running = running
        self._subscriptions = subscriptions
        self._commands, self._pubsub, self._history, self._presence = parts

    def linkRefused(self, failure: Failure) -> None:
        """
        See L{IRedisLinkObserver.linkRefused}.
        """
        _log.error(
            "hub: Redis at {address} refused us: {error}",
            address=self.address(),
            error=failure.getErrorMessage(),
        )

    def messageArrived(self, redisChannel: bytes, data: bytes) -> None:
        """
        See L{IRedisLinkObserver.messageArrived}: deliver it here, unless
        it is ours.
        """
        if not isinstance(data, bytes) or len(data) <= ORIGIN_SIZE:
            return
        name = redisChannel.decode("utf-8", "replace")[len(self._commands.prefix) :]
        kind = data[ORIGIN_SIZE : ORIGIN_SIZE + 1]
        body = data[ORIGIN_SIZE + 1 :]
        if kind in (KEPT_TEXT, KEPT_BINARY):
            self._history.arrived(name, body, kind == KEPT_TEXT)
        elif kind in (JOINED, LEFT):
            self._presence.arrived(name, body, kind == JOINED)
        else:
            self._pubsub.arrived(name, data[:ORIGIN_SIZE], body, kind == TEXT)

    def linkReady(self, role: str, connection: Any) -> None:
        """
        See L{IRedisLinkObserver.linkReady}: publish on it, or subscribe it
        to every channel that has subscribers here.
        """
        if role == PUBLISHER:
            self._commands.ready(connection)
            self._presence.beat()
            self._presence.rebuild()
            _log.info(
                "hub: connected to Redis at {address} (publisher)",
                address=self.address(),
            )
            return
        self._pubsub.ready(connection)
        channels = list(self._subscriptions.channels())
        _log.info(
            "hub: connected to Redis at {address} (subscriber); "
            "subscribing to {count} channels",
            address=self.address(),
            count=len(channels),
        )
        for channel in channels:
            self._history.catchUpAfterLoss(channel)
            self._pubsub.subscribe(channel)

    def linkLost(self, role: str, connection: Any) -> None:
        """
        See L{IRedisLinkObserver.linkLost}.
        """
        if role == PUBLISHER:
            lost = self._commands.lost(connection)
        else:
            lost = self._pubsub.lost(connection)
        if lost:
            self._lost(role)

    def _lost(self, role: str) -> None:
        if self._running():
            _log.warn(
                "hub: lost Redis at {address} ({role}); reconnecting, and "
                "serving this process's clients meanwhile",
                address=self.address(),
                role=role,
            )
