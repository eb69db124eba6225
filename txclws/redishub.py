# -*- test-case-name: tests.test_hub,tests.test_scaling,tests.test_channels -*-
"""
A hub shared through Redis pub/sub: what any process publishes reaches the
subscribers of every process connected to the same Redis server::

    hub = RedisHub.fromURL("redis://127.0.0.1:6379/0")
    hub.setServiceParent(application)        # connects, and reconnects
    hub.subscribe("room", client)
    hub.publish("room", "hello")             # this process, then Redis

Needs C{txredisapi} (C{pip install 'txclws[redis]'}), a Twisted-native Redis
client: its connections reconnect on their own (through Twisted's
C{ClientService}), which is what a hub that must outlive Redis restarts
needs.

Each process keeps two connections: one that publishes, and one that is
subscribed, in Redis, to the channels that have subscribers in this
process (and to no others).  A published message goes to this process's
subscribers at once, then to Redis tagged with this hub's random origin;
every other process frames it once for all of its subscribers, and this
one skips its own.  So local delivery does not wait for, or depend on,
Redis: while Redis is down, each process keeps serving its own clients,
publishing fails (logged, and the Deferred fails), and once Redis is back
both connections return and the channels are subscribed again.  Messages
published meanwhile are not replayed.

Messages from one process reach every other process in the order they
were published; messages from different processes may interleave
differently in different processes.

A channel that keeps a history (L{RedisHub.keepHistory}) is different:
each message goes to a Redis stream and out in one Lua script, and is
delivered everywhere, this process included, from Redis, in the order of
the stream ids (L{txclws._redishistory}).  Presence is a hash per channel
whose members' processes heartbeat (L{txclws._redispresence}).

The hub is a facade over those parts, the pub/sub fan-out
(L{txclws._redispubsub}) and the publishing connection they share
(L{txclws._rediscommands}).

@since: 0.1.0
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults
from zope.interface import implementer

from txclws._history import History, HistoryPolicy
from txclws._hubinterface import IHub, messagePayload
from txclws._presence import Member, PresenceObserver
from txclws._rediscommands import (
    ORIGIN_SIZE,
    RedisCommands,
)
from txclws._redishistory import RedisHistory
from txclws._redislinks import (
    REDIS_PORT,
    RedisLinkSettings,
    parseRedisURL,
    startRedisLinks,
)
from txclws._redispresence import RedisPresence
from txclws._redispubsub import RedisPubSub
from txclws._redisrouter import RedisRouter
from txclws._resource import IWebSocketClient
from txclws._subscriptions import Subscriptions

__all__ = ["RedisHub"]

#: The default seconds after which a silent process's members are gone.
PRESENCE_TIMEOUT = 20.0


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@implementer(IHub)
class RedisHub(Service):
    """
    An L{IHub} shared through Redis pub/sub; a Twisted service that
    connects when started and disconnects when stopped.

    Redis pub/sub ignores database numbers, so C{db} goes into the Redis
    channel names instead (C{PREFIX:DB:CHANNEL}): hubs with different
    numbers (or prefixes) on one Redis server do not hear each other.

    @ivar host: the Redis server's host name or address.
    @ivar port: its port.
    @ivar db: the database number, used as a namespace.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = REDIS_PORT,
        db: int = 0,
        *,
        password: str | None = None,
        prefix: str = "txclws",
        replyTimeout: float = 5.0,
        connectTimeout: float = 5.0,
        retryDelay: float = 0.5,
        maxRetryDelay: float = 5.0,
        presenceTimeout: float = PRESENCE_TIMEOUT,
    ) -> None:
        """
        Make the hub; it connects once started (L{startService}).

        @param password: the password to authenticate with, if Redis wants
            one.
        @param prefix: the start of every Redis channel name it uses.
        @param replyTimeout: seconds Redis has to acknowledge a publish
            before the publish fails and the connection is dropped and made
            again.
        @param connectTimeout: seconds a connection attempt may take.
        @param retryDelay: seconds before the first attempt to reconnect;
            each further one waits longer, up to C{maxRetryDelay}.
        @param presenceTimeout: seconds after which the members of a
            process that stopped (crashed, or lost Redis) are no longer
            listed by L{presence}; the process heartbeats every quarter of
            that, and the others announce their leave at their next
            heartbeat (so within 1.25 times this).  (@since: 0.2.0)
        """
        super().__init__()
        self.host = host
        self.port = port
        self.db = db
        self._settings = RedisLinkSettings(
            password, replyTimeout, connectTimeout, retryDelay, maxRetryDelay
        )
        if not presenceTimeout > 0:
            raise ValueError(f"presenceTimeout must be positive, not {presenceTimeout}")
        self._subscriptions = Subscriptions()
        self._commands = RedisCommands(
            f"{prefix}:{db}:",
            secrets.token_bytes(ORIGIN_SIZE),
            self.address,
            self._isRunning,
        )
        self._history = RedisHistory(self._commands, self._subscriptions)
        self._pubsub = RedisPubSub(
            self._commands, self._subscriptions, self._history.catchUp.kick
        )
        self._presence = RedisPresence(self._commands, presenceTimeout, self._watch)
        self._router = RedisRouter(
            self.address,
            self._isRunning,
            self._subscriptions,
            (self._commands, self._pubsub, self._history, self._presence),
        )
        self._factories: list[Any] = []

    @classmethod
    def fromURL(cls, url: str, **options: Any) -> RedisHub:
        """
        The hub for a URL such as C{redis://host:port/db} (port 6379 and db
        0 by default; C{redis://:password@host} to authenticate;
        C{?presence-timeout=SECONDS} for C{presenceTimeout}).

        @param options: other keyword arguments of L{RedisHub}.
        @raise ValueError: the URL is not such a URL.
        """
        host, port, db, password, fromQuery = parseRedisURL(url)
        return cls(host, port, db, password=password, **{**fromQuery, **options})

    def __repr__(self) -> str:
        return f"<RedisHub redis://{self.address()}/{self.db}>"

    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def presenceTimeout(self) -> float:
        """
        Seconds after which a silent process's members are gone (see
        L{__init__}).
        """
        return self._presence.timeout

    @presenceTimeout.setter
    def presenceTimeout(self, seconds: float) -> None:
        self._presence.timeout = seconds

    def _isRunning(self) -> bool:
        return bool(self.running)

    @property
    def connected(self) -> bool:
        """
        Whether both connections to Redis are up (the subscriptions may
        still be on their way).
        """
        return (
            self._commands.connection is not None
            and self._pubsub.connection is not None
        )

    # -- IService --------------------------------------------------------

    def startService(self) -> None:
        """
        Connect to Redis; keep reconnecting while the service runs.
        """
        super().startService()  # type: ignore[no-untyped-call]  # mypy#16653
        self._factories = startRedisLinks(
            self._router, self.host, self.port, self._settings
        )
        self._presence.start()

    def stopService(self) -> Deferred[Any]:
        """
        Take this process's members out of the presence (the others hear
        them leave at once), then disconnect from Redis, for good.
        """
        super().stopService()  # type: ignore[no-untyped-call]  # mypy#16653
        left = self._presence.stop()
        left.addTimeout(self._settings.replyTimeout, _reactor())
        return left.addBoth(lambda _: self._disconnect())

    def _disconnect(self) -> Deferred[Any]:
        factories, self._factories = self._factories, []
        self._commands.lost(self._commands.connection)
        self._pubsub.lost(self._pubsub.connection)
        return gatherResults([f.disconnect() for f in factories], consumeErrors=True)

    # -- IHub ------------------------------------------------------------

    def subscribe(
        self, channel: str, client: IWebSocketClient, since: str | None = None
    ) -> Deferred[bool]:
        """
        See L{IHub.subscribe}: subscribes this process in Redis when this is
        the channel's first local subscriber; once the client disconnects,
        its subscriptions end, and Redis is unsubscribed from the channels
        it leaves without local subscribers.  With C{since}, the client is
        held until the history was read (once subscribed in Redis).
        """
        first = self._subscriptions.add(channel, client)
        resumed = self._history.resume(channel, client, since)
        waiter = self._pubsub.whenSubscribed(channel, first)
        # Last, so that a client already gone unsubscribes what was made.
        self._watch(client)
        if resumed is not None:
            return resumed
        return waiter.addCallback(lambda _: since is None)

    def unsubscribe(self, channel: str, client: IWebSocketClient) -> None:
        """
        See L{IHub.unsubscribe}: unsubscribes this process in Redis when
        that was the channel's last local subscriber.
        """
        if self._subscriptions.remove(channel, client):
            self._unsubscribeRemote(channel)

    def unsubscribeAll(self, client: IWebSocketClient) -> None:
        """
        See L{IHub.unsubscribeAll}.
        """
        for channel in self._subscriptions.removeClient(client):
            self._unsubscribeRemote(channel)

    def publish(self, channel: str, message: str | bytes) -> Deferred[str | None]:
        """
        Send C{message} to this process's subscribers of C{channel} at once,
        then to the other processes through Redis; see L{IHub.publish}.
        """
        payload, text = messagePayload(message)
        policy = self._history.policy(channel)
        if policy is not None:
            return self._history.publish(channel, payload, text, policy)
        sent: Deferred[Any] = self._pubsub.publish(channel, payload, text)
        return sent

    def subscribers(self, channel: str) -> list[IWebSocketClient]:
        """
        See L{IHub.subscribers}.
        """
        return self._subscriptions.clients(channel)

    def keepHistory(self, channel: str, policy: HistoryPolicy) -> None:
        """
        See L{IHub.keepHistory}: what this process publishes to C{channel}
        goes to its Redis stream first.
        """
        self._history.keep(channel, policy)

    def history(self, channel: str, since: str) -> Deferred[History]:
        """
        See L{IHub.history}: one read of the stream (fails with
        L{HubUnavailable} when Redis cannot be reached).
        """
        return self._history.history(channel, since)

    def join(
        self, channel: str, client: IWebSocketClient, identity: str
    ) -> Deferred[Member]:
        """
        See L{IHub.join}.
        """
        return self._presence.join(channel, client, identity)

    def leave(self, channel: str, client: IWebSocketClient) -> None:
        """
        See L{IHub.leave}.
        """
        self._presence.leave(channel, client)

    def presence(self, channel: str) -> Deferred[list[Member]]:
        """
        See L{IHub.presence}: sweeps the members of processes gone silent
        (announcing their leave), and lists the others.
        """
        return self._presence.presence(channel)

    def observePresence(
        self, channel: str, observer: PresenceObserver
    ) -> Callable[[], None]:
        """
        See L{IHub.observePresence}.
        """
        return self._presence.observe(channel, observer)

    def _unsubscribeRemote(self, channel: str) -> None:
        self._history.forget(channel)
        self._pubsub.unsubscribe(channel)

    def _watch(self, client: IWebSocketClient) -> None:
        self._subscriptions.watch(client, self._gone)

    def _gone(self, client: IWebSocketClient) -> None:
        self.unsubscribeAll(client)
        self._presence.clientGone(client)
