# -*- test-case-name: tests.test_hub,tests.test_scaling,tests.test_channels -*-
"""
The pub/sub fan-out of a L{txclws.redishub.RedisHub}: the subscribed
connection, subscribed in Redis to the channels that have subscribers in
this process (and to no others), the confirmations a subscription waits
for, and publishing and delivering the messages a channel does not keep.

@since: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from txclws._rediscommands import BINARY, TEXT, RedisCommands, publishFailed
from txclws._subscriptions import Subscriptions

__all__ = ["RedisPubSub"]

# The hub's log lines, wherever they are written from.
_log = Logger(namespace="txclws.redishub")


class RedisPubSub:
    """
    This process's subscriptions in Redis, on the subscribed connection.

    @ivar connection: the subscribed connection, or C{None} while there is
        none.
    """

    def __init__(
        self,
        commands: RedisCommands,
        subscriptions: Subscriptions,
        subscribed: Callable[[str], None],
    ) -> None:
        """
        @param commands: where plain messages are published.
        @param subscriptions: this process's subscribers.
        @param subscribed: told each time a channel is known to be
            subscribed in Redis (what a subscriber catching up waits for).
        """
        self._commands = commands
        self._subscriptions = subscriptions
        self._subscribed = subscribed
        self.connection: Any = None
        #: Channels that Redis confirmed on the current subscriber
        #: connection, and those awaiting confirmation with their waiters.
        self._confirmed: set[str] = set()
        self._waiting: dict[str, list[Deferred[None]]] = {}
        #: Bumped at each (un)subscribe sent for a channel, so that a late
        #: confirmation of a superseded SUBSCRIBE is ignored.
        self._generation: dict[str, int] = {}

    def isConfirmed(self, channel: str) -> bool:
        """
        Whether Redis confirmed the subscription to C{channel} on the
        current connection.
        """
        return channel in self._confirmed

    def whenSubscribed(self, channel: str, first: bool) -> Deferred[None]:
        """
        A subscriber was added to C{channel} (its first here if C{first}):
        subscribe in Redis if need be.

        @return: fires once Redis confirmed the subscription.
        """
        if channel in self._confirmed:
            self._subscribed(channel)
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiting.setdefault(channel, []).append(waiter)
        if first:
            self.subscribe(channel)
        return waiter

    def subscribe(self, channel: str) -> None:
        """
        Subscribe to C{channel} in Redis (again, after a reconnection).
        """
        generation = self._generation[channel] = self._generation.get(channel, 0) + 1
        connection = self.connection
        if connection is None:
            return  # subscribed when the connection is (re)made
        connection.subscribe(self._commands.channelName(channel)).addCallbacks(
            lambda _: self._confirm(connection, channel, generation),
            lambda f: self._subscribeFailed(connection, channel, f),
        )

    def _confirm(self, connection: Any, channel: str, generation: int) -> None:
        if connection is not self.connection:
            return  # a connection since lost: resubscribed on the next one
        if self._generation.get(channel) != generation:
            return  # an unsubscribe (and maybe a subscribe) followed
        self._confirmed.add(channel)
        for waiter in self._waiting.pop(channel, []):
            waiter.callback(None)
        self._subscribed(channel)

    def _subscribeFailed(self, connection: Any, channel: str, failure: Failure) -> None:
        if connection is self.connection and connection.connected:
            _log.error(
                "hub: Redis refused to subscribe to {channel}: {error}",
                channel=channel,
                error=failure.getErrorMessage(),
            )
        # Otherwise the connection was lost: the next one subscribes again.

    def unsubscribe(self, channel: str) -> None:
        """
        C{channel} has no subscriber here any more: unsubscribe in Redis.
        """
        self._generation[channel] = self._generation.get(channel, 0) + 1
        self._confirmed.discard(channel)
        for waiter in self._waiting.pop(channel, []):
            waiter.callback(None)  # nobody left to wait for
        connection = self.connection
        if connection is not None:
            connection.unsubscribe(self._commands.channelName(channel)).addErrback(
                lambda _: None
            )

    def publish(self, channel: str, payload: str | bytes, text: bool) -> Deferred[None]:
        """
        Send a message C{channel} does not keep to this process's
        subscribers at once, then to the other processes through Redis.

        @return: fires once Redis has it; fails with L{HubUnavailable}
            (logged) when it could not be sent.
        """
        self._subscriptions.deliver(channel, payload, text)
        if self._commands.connection is None:
            return publishFailed(channel, self._commands.notConnected())
        data = b"".join(
            [
                self._commands.origin,
                TEXT if text else BINARY,
                payload.encode("utf-8") if isinstance(payload, str) else payload,
            ]
        )
        return self._commands.publish(channel, data)

    def arrived(self, channel: str, origin: bytes, body: bytes, text: bool) -> None:
        """
        A message C{channel} does not keep arrived: deliver it here, unless
        it is ours (those went out at once).
        """
        if origin == self._commands.origin:
            return
        try:
            self._subscriptions.deliver(channel, body, text)
        except ValueError:
            _log.warn("hub: dropped a message on {channel}: bad UTF-8", channel=channel)

    def ready(self, connection: Any) -> None:
        """
        A subscribed connection is up: nothing is confirmed on it yet.
        """
        self.connection = connection
        self._confirmed.clear()

    def lost(self, connection: Any) -> bool:
        """
        A subscribed connection is gone.

        @return: whether it was the one in use.
        """
        if connection is not self.connection:
            return False
        self.connection = None
        self._confirmed.clear()
        return True
