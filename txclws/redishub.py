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
each message is added to a Redis stream and published in one Lua script
(L{txclws._redisscripts}), and delivered everywhere, this process
included, from Redis: every process then hears the channel in one order,
that of the stream ids.  A subscriber resuming from a position is held
while the history is read (one read per channel at a time serves every
subscriber waiting, L{txclws._catchup}), then gets what it missed and the
live messages, deduplicated by position.  Presence is a hash per channel
in Redis whose members belong to processes that heartbeat a key with a
TTL; a process that stops heartbeating has its members swept.

@since: 0.1.0
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws import _redisscripts as scripts
from txclws._catchup import CatchUp
from txclws._history import (
    TOO_OLD,
    History,
    HistoryPolicy,
    HistoryWindow,
    KeptMessage,
    isPosition,
    positionKey,
)
from txclws._hubinterface import HubUnavailable, IHub, messagePayload
from txclws._presence import (
    LocalMembers,
    Member,
    PresenceChange,
    PresenceObserver,
    PresenceObservers,
)
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
from txclws._subscriptions import Subscriptions, deliverKept

__all__ = ["RedisHub"]

_log = Logger()

#: What follows the origin in a message on Redis: its kind (see
#: L{txclws._redisscripts}).
_TEXT, _BINARY = b"t", b"b"
_KEPT_TEXT, _KEPT_BINARY = b"T", b"B"
_JOINED, _LEFT = b"j", b"l"

#: The default seconds after which a silent process's members are gone.
PRESENCE_TIMEOUT = 20.0

#: Bytes of random origin that start each message this hub puts on Redis.
_ORIGIN_SIZE = 8


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


#: How a channel this process does not keep is read: unstamped.
_UNSTAMPED = HistoryPolicy()


def _window(reply: list[Any]) -> HistoryWindow:
    """
    The L{HistoryWindow} of a L{scripts.READ_HISTORY} reply.
    """
    if not reply:
        return HistoryWindow(None, (0, 0), (0, 0), ())
    start, floor, last, entries = reply
    messages = []
    for position, fields in entries:
        kind, value = fields[0], fields[1]
        message = value.decode("utf-8") if kind == _TEXT else value
        messages.append(KeptMessage(position.decode("ascii"), message))
    return HistoryWindow(
        positionKey(start.decode("ascii")),
        positionKey(floor.decode("ascii")),
        positionKey(last.decode("ascii")),
        tuple(messages),
    )


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
        self._prefix = f"{prefix}:{db}:"
        self._settings = RedisLinkSettings(
            password, replyTimeout, connectTimeout, retryDelay, maxRetryDelay
        )
        self._origin = secrets.token_bytes(_ORIGIN_SIZE)
        self._subscriptions = Subscriptions()
        if not presenceTimeout > 0:
            raise ValueError(f"presenceTimeout must be positive, not {presenceTimeout}")
        self.presenceTimeout = presenceTimeout
        self._policies: dict[str, HistoryPolicy] = {}
        #: For each kept channel with subscribers here, the last position
        #: heard: where they catch up from after the subscription is lost.
        self._seen: dict[str, str] = {}
        self._catchUp = CatchUp(
            self._subscriptions, self._readHistory, self._policyOf, self._sawPosition
        )
        self._process = self._origin.hex()
        self._members = LocalMembers(self._process)
        self._observers = PresenceObservers()
        self._heartbeat: LoopingCall | None = None
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
        self._heartbeat = LoopingCall(self._beat)
        self._heartbeat.start(self.presenceTimeout / 4, now=False)

    def stopService(self) -> Deferred[Any]:
        """
        Take this process's members out of the presence (the others hear
        them leave at once), then disconnect from Redis, for good.
        """
        super().stopService()  # type: ignore[no-untyped-call]  # mypy#16653
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        self._heartbeat = None
        left = self._leaveEverything()
        left.addTimeout(self._settings.replyTimeout, _reactor())
        return left.addBoth(lambda _: self._disconnect())

    def _leaveEverything(self) -> Deferred[Any]:
        leaves = [
            self._sendLeave(channel, member)
            for channel, member in list(self._members.everyMember())
        ]
        self._members = LocalMembers(self._process)
        connection = self._publisher
        if connection is not None:
            try:
                leaves.append(connection.execute_command("DEL", self._aliveKey()))
            except RedisConnectionError:
                pass
        return gatherResults(leaves, consumeErrors=True)

    def _disconnect(self) -> Deferred[Any]:
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
        resumed = None
        if since is not None and isPosition(since):
            resumed = self._catchUp.request(channel, client, since)
        if channel in self._confirmed:
            waiter = succeed(None)
            self._catchUp.kick(channel)
        else:
            waiter = Deferred()
            self._waiting.setdefault(channel, []).append(waiter)
            if first:
                self._subscribeRemote(channel)
        # Last, so that a client already gone unsubscribes what was made.
        self._subscriptions.watch(client, self._gone)
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
        policy = self._policies.get(channel)
        if policy is not None:
            return self._publishKept(channel, payload, text, policy)
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

    def keepHistory(self, channel: str, policy: HistoryPolicy) -> None:
        """
        See L{IHub.keepHistory}: what this process publishes to C{channel}
        goes to its Redis stream first.
        """
        self._policies[channel] = policy

    def history(self, channel: str, since: str) -> Deferred[History]:
        """
        See L{IHub.history}: one read of the stream (fails with
        L{HubUnavailable} when Redis cannot be reached).
        """
        if not isPosition(since):
            return succeed(TOO_OLD)
        return self._readHistory(channel, since).addCallback(
            lambda window: window.after(since)
        )

    def join(
        self, channel: str, client: IWebSocketClient, identity: str
    ) -> Deferred[Member]:
        """
        See L{IHub.join}.
        """
        member = self._members.add(channel, client, identity)
        self._subscriptions.watch(client, self._gone)
        if member is None:
            return succeed(self._members.get(channel, client))  # type: ignore[arg-type]
        if self._publisher is None:
            return succeed(member)
        joined = self._sendJoin(channel, member)
        return joined.addCallback(lambda _: member)

    def leave(self, channel: str, client: IWebSocketClient) -> None:
        """
        See L{IHub.leave}.
        """
        member = self._members.remove(channel, client)
        if member is not None:
            self._sendLeave(channel, member)

    def presence(self, channel: str) -> Deferred[list[Member]]:
        """
        See L{IHub.presence}: sweeps the members of processes gone silent
        (announcing their leave), and lists the others.
        """
        swept = self._sweep(channel)
        return swept.addCallback(lambda found: [Member.fromJSON(m) for m in found])

    def observePresence(
        self, channel: str, observer: PresenceObserver
    ) -> Callable[[], None]:
        """
        See L{IHub.observePresence}.
        """
        return self._observers.add(channel, observer)

    def _failed(
        self, channel: str, why: str, cause: BaseException | None = None
    ) -> Deferred[Any]:
        error = HubUnavailable(f"publish to {channel!r} failed: {why}")
        error.__cause__ = cause
        _log.error("hub: publish to {channel} failed: {why}", channel=channel, why=why)
        return fail(error)

    def _gone(self, client: IWebSocketClient) -> None:
        self.unsubscribeAll(client)
        for channel, member in self._members.removeClient(client):
            self._sendLeave(channel, member)

    # -- Redis keys and scripts -----------------------------------------

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    def _run(
        self, script: scripts.Script, keys: list[str], args: list[Any]
    ) -> Deferred[Any]:
        """
        Run C{script} on the publishing connection.

        @return: its reply; a failure with L{HubUnavailable} when Redis
            cannot be reached.
        """
        connection = self._publisher
        if connection is None:
            why = "the hub is not running" if not self.running else "not connected"
            return fail(HubUnavailable(f"{why} to Redis at {self.address()}"))
        try:
            ran: Deferred[Any] = connection.execute_command(
                "EVALSHA", script.sha, len(keys), *keys, *args
            )
        except RedisConnectionError as error:
            return fail(HubUnavailable(str(error)))
        return ran.addErrback(self._scriptFailed, connection)

    def _scriptFailed(self, failure: Failure, connection: Any) -> Failure:
        if "NOSCRIPT" in failure.getErrorMessage() and connection is self._publisher:
            self._loadScripts(connection)  # flushed: for the next calls
        error = HubUnavailable(failure.getErrorMessage())
        error.__cause__ = failure.value
        return Failure(error)

    def _loadScripts(self, connection: Any) -> None:
        # Sent before anything else on the connection, so every EVALSHA
        # after it finds its script.
        for script in scripts.SCRIPTS:
            connection.execute_command("SCRIPT", "LOAD", script.source).addErrback(
                lambda _: None
            )

    # -- history -----------------------------------------------------------

    def _policyOf(self, channel: str) -> HistoryPolicy:
        return self._policies.get(channel) or _UNSTAMPED

    def _publishKept(
        self, channel: str, payload: str | bytes, text: bool, policy: HistoryPolicy
    ) -> Deferred[str | None]:
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        maxAge = int(policy.maxAge * 1000) if policy.maxAge is not None else 0
        published = self._run(
            scripts.PUBLISH_KEPT,
            [self._key("history", channel), self._key("history-start", channel)],
            [
                policy.size,
                maxAge,
                _TEXT if text else _BINARY,
                data,
                self._prefix + channel,
                self._origin + (_KEPT_TEXT if text else _KEPT_BINARY),
            ],
        )
        return published.addCallbacks(
            lambda position: position.decode("ascii"),
            lambda f: self._failed(channel, f.getErrorMessage(), f.value),
        )

    def _readHistory(self, channel: str, since: str) -> Deferred[HistoryWindow]:
        read = self._run(
            scripts.READ_HISTORY,
            [self._key("history", channel), self._key("history-start", channel)],
            [since],
        )
        return read.addCallback(_window)

    def _sawPosition(self, channel: str, position: str) -> None:
        if not self._subscriptions.clients(channel):
            return
        seen = self._seen.get(channel)
        if seen is None or positionKey(position) > positionKey(seen):
            self._seen[channel] = position

    def _keptArrived(self, channel: str, data: bytes, text: bool) -> None:
        size = data[0] if data else 0
        position = data[1 : 1 + size].decode("ascii", "replace")
        if not isPosition(position):
            _log.warn(
                "hub: dropped a message on {channel}: no position", channel=channel
            )
            return
        body = data[1 + size :]
        try:
            kept = KeptMessage(position, body.decode("utf-8") if text else body)
        except UnicodeDecodeError:
            _log.warn("hub: dropped a message on {channel}: bad UTF-8", channel=channel)
            return
        live = self._subscriptions.liveClients(channel)
        deliverKept(live, self._policyOf(channel), kept)
        self._catchUp.arrived(channel, kept)
        self._sawPosition(channel, position)

    def _catchUpAfterLoss(self, channel: str) -> None:
        """
        The subscription to C{channel} was lost and made again: its
        subscribers catch up from the last position this process heard.
        """
        since = self._seen.get(channel)
        if since is None:
            return
        for client in self._subscriptions.clients(channel):
            caught = self._catchUp.request(channel, client, since)
            caught.addCallback(self._caughtUp, channel)

    def _caughtUp(self, complete: bool, channel: str) -> None:
        if not complete:
            _log.warn(
                "hub: the history of {channel} no longer reaches back to what "
                "this process last heard: its subscribers may have missed "
                "messages while Redis was away",
                channel=channel,
            )

    # -- presence ----------------------------------------------------------

    def _aliveKey(self) -> str:
        return self._key("alive", self._process)

    def _aliveValue(self) -> bytes:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()

    def _sendJoin(self, channel: str, member: Member) -> Deferred[Any]:
        joined = self._run(
            scripts.JOIN,
            [self._key("presence", channel), self._aliveKey()],
            [
                member.key,
                member.toJSON(),
                self._prefix + channel,
                self._origin + _JOINED,
                int(self.presenceTimeout * 1000),
                self._aliveValue(),
            ],
        )
        return joined.addErrback(self._presenceFailed, channel)

    def _sendLeave(self, channel: str, member: Member) -> Deferred[None]:
        if self._publisher is None:
            # Swept by the others once this process's key expires.
            return succeed(None)
        left = self._run(
            scripts.LEAVE,
            [self._key("presence", channel)],
            [member.key, self._prefix + channel, self._origin + _LEFT],
        )
        return left.addErrback(self._presenceFailed, channel)

    def _sweep(self, channel: str) -> Deferred[list[bytes]]:
        return self._run(
            scripts.SWEEP,
            [self._key("presence", channel)],
            [self._key("alive", ""), self._prefix + channel, self._origin + _LEFT],
        )

    def _presenceFailed(self, failure: Failure, channel: str) -> None:
        _log.warn(
            "hub: presence of {channel} not updated: {error}",
            channel=channel,
            error=failure.getErrorMessage(),
        )

    def _beat(self) -> None:
        """
        The heartbeat: this process is alive for another C{presenceTimeout};
        the channels it cares about are swept of silent processes' members.
        """
        connection = self._publisher
        if connection is None:
            return
        ttl = int(self.presenceTimeout * 1000)
        try:
            connection.execute_command(
                "SET", self._aliveKey(), self._aliveValue(), "PX", ttl
            ).addErrback(lambda _: None)
        except RedisConnectionError:
            return
        for channel in {*self._members.channels(), *self._observers.channels()}:
            self._sweep(channel).addErrback(lambda _: None)

    def _rebuildPresence(self) -> None:
        """
        After a reconnection: record this process's members again (Redis
        may have restarted empty); only those Redis lacked are announced.
        """
        for channel, member in self._members.everyMember():
            self._sendJoin(channel, member)

    def _noticeArrived(self, channel: str, data: bytes, joined: bool) -> None:
        number, _, body = data.partition(b" ")
        try:
            change = PresenceChange(channel, joined, Member.fromJSON(body), int(number))
        except ValueError:
            _log.warn("hub: dropped a presence notice on {channel}", channel=channel)
            return
        self._observers.tell(change)

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
        self._catchUp.kick(channel)

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
        self._seen.pop(channel, None)
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
        name = redisChannel.decode("utf-8", "replace")[len(self._prefix) :]
        kind = data[_ORIGIN_SIZE : _ORIGIN_SIZE + 1]
        body = data[_ORIGIN_SIZE + 1 :]
        if kind in (_KEPT_TEXT, _KEPT_BINARY):
            self._keptArrived(name, body, kind == _KEPT_TEXT)
        elif kind in (_JOINED, _LEFT):
            self._noticeArrived(name, body, kind == _JOINED)
        elif data[:_ORIGIN_SIZE] != self._origin:  # ours went out at once
            try:
                self._subscriptions.deliver(name, body, kind == _TEXT)
            except ValueError:
                _log.warn(
                    "hub: dropped a message on {channel}: bad UTF-8", channel=name
                )

    # -- IRedisLinkObserver: connection state, from the factories --------

    def linkReady(self, role: str, connection: Any) -> None:
        """
        See L{IRedisLinkObserver.linkReady}: publish on it, or subscribe it
        to every channel that has subscribers here.
        """
        if role == PUBLISHER:
            self._loadScripts(connection)
            self._publisher = connection
            self._beat()
            self._rebuildPresence()
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
            self._catchUpAfterLoss(channel)
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
