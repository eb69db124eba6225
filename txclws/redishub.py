# -*- test-case-name: tests.test_hub,tests.test_scaling -*-
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

@since: 0.1.0
"""

from __future__ import annotations

import secrets
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws._hub import HubUnavailable, IHub, Subscriptions, messagePayload
from txclws._redislinks import (
    PUBLISHER,
    REDIS_PORT,
    SUBSCRIBER,
    RedisConnectionError,
    RedisLinkSettings,
    parseRedisURL,
    startRedisLinks,
)
from txclws._resource import IWebSocketClient

__all__ = ["RedisHub"]

_log = Logger()

#: What follows the origin in a message on Redis: its kind.
_TEXT, _BINARY = b"t", b"b"

#: Bytes of random origin that start each message this hub puts on Redis.
_ORIGIN_SIZE = 8


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
        """
        super().__init__()
        self.host = host
        self.port = port
        self.db = db
        self._prefix = f"{prefix}:{db}:"
        self._settings = RedisLinkSettings(
            password, replyTimeout, connectTimeout, retryDelay, maxRetryDelay
        )
        self._origin = secrets.token_bytes(_ORIGIN_SIZE)
        self._subscriptions = Subscriptions()
        #: Channels that Redis confirmed on the current subscriber
        #: connection, and those awaiting confirmation with their waiters.
        self._confirmed: set[str] = set()
        self._waiting: dict[str, list[Deferred[None]]] = {}
        #: Bumped at each (un)subscribe sent for a channel, so that a late
        #: confirmation of a superseded SUBSCRIBE is ignored.
        self._generation: dict[str, int] = {}
        self._publisher: Any = None
        self._subscriber: Any = None
        self._factories: list[Any] = []

    @classmethod
    def fromURL(cls, url: str, **options: Any) -> RedisHub:
        """
        The hub for a URL such as C{redis://host:port/db} (port 6379 and db
        0 by default; C{redis://:password@host} to authenticate).

        @param options: other keyword arguments of L{RedisHub}.
        @raise ValueError: the URL is not such a URL.
        """
        host, port, db, password = parseRedisURL(url)
        return cls(host, port, db, password=password, **options)

    def __repr__(self) -> str:
        return f"<RedisHub redis://{self.address()}/{self.db}>"

    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def connected(self) -> bool:
        """
        Whether both connections to Redis are up (the subscriptions may
        still be on their way).
        """
        return self._publisher is not None and self._subscriber is not None

    # -- IService --------------------------------------------------------

    def startService(self) -> None:
        """
        Connect to Redis; keep reconnecting while the service runs.
        """
        super().startService()  # type: ignore[no-untyped-call]  # mypy#16653
        self._factories = startRedisLinks(self, self.host, self.port, self._settings)

    def stopService(self) -> Deferred[Any]:
        """
        Disconnect from Redis, for good.
        """
        super().stopService()  # type: ignore[no-untyped-call]  # mypy#16653
        factories, self._factories = self._factories, []
        self._publisher = self._subscriber = None
        self._confirmed.clear()
        return gatherResults([f.disconnect() for f in factories], consumeErrors=True)

    def linkRefused(self, failure: Failure) -> None:
        """
        See L{IRedisLinkObserver.linkRefused}.
        """
        _log.error(
            "hub: Redis at {address} refused us: {error}",
            address=self.address(),
            error=failure.getErrorMessage(),
        )

    # -- IHub ------------------------------------------------------------

    def subscribe(self, channel: str, client: IWebSocketClient) -> Deferred[None]:
        """
        See L{IHub.subscribe}: subscribes this process in Redis when this is
        the channel's first local subscriber; once the client disconnects,
        its subscriptions end, and Redis is unsubscribed from the channels
        it leaves without local subscribers.
        """
        first = self._subscriptions.add(channel, client)
        if channel in self._confirmed:
            waiter = succeed(None)
        else:
            waiter = Deferred()
            self._waiting.setdefault(channel, []).append(waiter)
            if first:
                self._subscribeRemote(channel)
        # Last, so that a client already gone unsubscribes what was made.
        self._subscriptions.watch(client, self.unsubscribeAll)
        return waiter

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

    def publish(self, channel: str, message: str | bytes) -> Deferred[None]:
        """
        Send C{message} to this process's subscribers of C{channel} at once,
        then to the other processes through Redis; see L{IHub.publish}.
        """
        payload, text = messagePayload(message)
        self._subscriptions.deliver(channel, payload, text)
        connection = self._publisher
        if connection is None:
            if not self.running:
                return self._failed(channel, "the hub is not running")
            return self._failed(channel, f"not connected to Redis at {self.address()}")
        data = b"".join(
            [
                self._origin,
                _TEXT if text else _BINARY,
                payload.encode("utf-8") if isinstance(payload, str) else payload,
            ]
        )
        try:
            # txredisapi is untyped: publish returns a Deferred of the number
            # of receivers, which is dropped below.
            sent: Deferred[object] = connection.publish(self._prefix + channel, data)
        except RedisConnectionError as error:
            return self._failed(channel, str(error), error)
        return sent.addCallbacks(
            lambda _: None,
            lambda f: self._failed(channel, f.getErrorMessage(), f.value),
        )

    def subscribers(self, channel: str) -> list[IWebSocketClient]:
        """
        See L{IHub.subscribers}.
        """
        return self._subscriptions.clients(channel)

    def _failed(
        self, channel: str, why: str, cause: BaseException | None = None
    ) -> Deferred[None]:
        error = HubUnavailable(f"publish to {channel!r} failed: {why}")
        error.__cause__ = cause
        _log.error("hub: publish to {channel} failed: {why}", channel=channel, why=why)
        return fail(error)

    # -- Redis subscriptions ---------------------------------------------

    def _subscribeRemote(self, channel: str) -> None:
        generation = self._generation[channel] = self._generation.get(channel, 0) + 1
        connection = self._subscriber
        if connection is None:
            return  # subscribed when the connection is (re)made
        connection.subscribe(self._prefix + channel).addCallbacks(
            lambda _: self._confirm(connection, channel, generation),
            lambda f: self._subscribeFailed(connection, channel, f),
        )

    def _confirm(self, connection: Any, channel: str, generation: int) -> None:
        if connection is not self._subscriber:
            return  # a connection since lost: resubscribed on the next one
        if self._generation.get(channel) != generation:
            return  # an unsubscribe (and maybe a subscribe) followed
        self._confirmed.add(channel)
        for waiter in self._waiting.pop(channel, []):
            waiter.callback(None)

    def _subscribeFailed(self, connection: Any, channel: str, failure: Failure) -> None:
        if connection is self._subscriber and connection.connected:
            _log.error(
                "hub: Redis refused to subscribe to {channel}: {error}",
                channel=channel,
                error=failure.getErrorMessage(),
            )
        # Otherwise the connection was lost: the next one subscribes again.

    def _unsubscribeRemote(self, channel: str) -> None:
        self._generation[channel] = self._generation.get(channel, 0) + 1
        self._confirmed.discard(channel)
        for waiter in self._waiting.pop(channel, []):
            waiter.callback(None)  # nobody left to wait for
        connection = self._subscriber
        if connection is not None:
            connection.unsubscribe(self._prefix + channel).addErrback(lambda _: None)

    def messageArrived(self, redisChannel: bytes, data: bytes) -> None:
        """
        See L{IRedisLinkObserver.messageArrived}: deliver it here, unless
        it is ours.
        """
        if not isinstance(data, bytes) or len(data) <= _ORIGIN_SIZE:
            return
        if data[:_ORIGIN_SIZE] == self._origin:
            return  # delivered locally when it was published
        name = redisChannel.decode("utf-8", "replace")[len(self._prefix) :]
        kind = data[_ORIGIN_SIZE : _ORIGIN_SIZE + 1]
        try:
            self._subscriptions.deliver(name, data[_ORIGIN_SIZE + 1 :], kind == _TEXT)
        except ValueError:
            _log.warn("hub: dropped a message on {channel}: bad UTF-8", channel=name)

    # -- IRedisLinkObserver: connection state, from the factories --------

    def linkReady(self, role: str, connection: Any) -> None:
        """
        See L{IRedisLinkObserver.linkReady}: publish on it, or subscribe it
        to every channel that has subscribers here.
        """
        if role == PUBLISHER:
            self._publisher = connection
            _log.info(
                "hub: connected to Redis at {address} (publisher)",
                address=self.address(),
            )
            return
        self._subscriber = connection
        self._confirmed.clear()
        channels = list(self._subscriptions.channels())
        _log.info(
            "hub: connected to Redis at {address} (subscriber); "
            "subscribing to {count} channels",
            address=self.address(),
            count=len(channels),
        )
        for channel in channels:
            self._subscribeRemote(channel)

    def linkLost(self, role: str, connection: Any) -> None:
        """
        See L{IRedisLinkObserver.linkLost}.
        """
        if role == PUBLISHER and connection is self._publisher:
            self._publisher = None
        elif role == SUBSCRIBER and connection is self._subscriber:
            self._subscriber = None
            self._confirmed.clear()
        else:
            return
        self._lost(role)

    def _lost(self, role: str) -> None:
        if self.running:
            _log.warn(
                "hub: lost Redis at {address} ({role}); reconnecting, and "
                "serving this process's clients meanwhile",
                address=self.address(),
                role=role,
            )
