# -*- test-case-name: tests.test_presence,tests.test_channels -*-
"""
The presence side of a L{txclws.redishub.RedisHub}: a hash per channel in
Redis whose members belong to processes that heartbeat a key with a TTL; a
process that stops heartbeating has its members swept, and observers hear
every join and leave from the notices on the channel.

@since: 0.2.0
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from txclws import _redisscripts as scripts
from txclws._presence import (
    LocalMembers,
    Member,
    PresenceChange,
    PresenceObserver,
    PresenceObservers,
)
from txclws._rediscommands import JOINED, LEFT, RedisCommands
from txclws._resource import IWebSocketClient

__all__ = ["RedisPresence"]

# The hub's log lines, wherever they are written from.
_log = Logger(namespace="txclws.redishub")


class RedisPresence:
    """
    This process's members, its heartbeat, and the observers of presence.

    @ivar timeout: seconds after which a silent process's members are gone.
    """

    def __init__(
        self,
        commands: RedisCommands,
        timeout: float,
        watch: Callable[[IWebSocketClient], None],
    ) -> None:
        """
        @param watch: called with each client that joins, once it is a
            member, so that its disconnection ends its presence
            (L{clientGone}).
        """
        self._commands = commands
        self.timeout = timeout
        self._watch = watch
        self._process = commands.origin.hex()
        self._members = LocalMembers(self._process)
        self._observers = PresenceObservers()
        self._heartbeat: LoopingCall | None = None

    def start(self) -> None:
        """
        Heartbeat every quarter of the timeout.
        """
        self._heartbeat = LoopingCall(self.beat)
        self._heartbeat.start(self.timeout / 4, now=False)

    def stop(self) -> Deferred[Any]:
        """
        Stop the heartbeat, and take this process's members out of the
        presence (the others hear them leave at once).
        """
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        self._heartbeat = None
        leaves = [
            self._sendLeave(channel, member)
            for channel, member in list(self._members.everyMember())
        ]
        self._members = LocalMembers(self._process)
        deleted = self._commands.command("DEL", self._aliveKey())
        if deleted is not None:
            leaves.append(deleted)
        return gatherResults(leaves, consumeErrors=True)

    def join(
        self, channel: str, client: IWebSocketClient, identity: str
    ) -> Deferred[Member]:
        """
        See L{txclws._hubinterface.IHub.join}.
        """
        existing = self._members.get(channel, client)
        member = self._members.add(channel, client, identity)
        self._watch(client)
        if member is None:
            assert existing is not None  # add() makes only new members
            return succeed(existing)
        if self._commands.connection is None:
            return succeed(member)
        joined = self._sendJoin(channel, member)
        return joined.addCallback(lambda _: member)

    def leave(self, channel: str, client: IWebSocketClient) -> None:
        """
        See L{txclws._hubinterface.IHub.leave}.
        """
        member = self._members.remove(channel, client)
        if member is not None:
            self._sendLeave(channel, member)

    def clientGone(self, client: IWebSocketClient) -> None:
        """
        C{client} disconnected: it leaves every channel.
        """
        for channel, member in self._members.removeClient(client):
            self._sendLeave(channel, member)

    def presence(self, channel: str) -> Deferred[list[Member]]:
        """
        See L{txclws._hubinterface.IHub.presence}: sweeps the members of
        processes gone silent (announcing their leave), and lists the
        others.
        """
        swept = self._sweep(channel)
        return swept.addCallback(lambda found: [Member.fromJSON(m) for m in found])

    def observe(self, channel: str, observer: PresenceObserver) -> Callable[[], None]:
        """
        See L{txclws._hubinterface.IHub.observePresence}.
        """
        return self._observers.add(channel, observer)

    def _aliveKey(self) -> str:
        return self._commands.key("alive", self._process)

    def _aliveValue(self) -> bytes:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()

    def _sendJoin(self, channel: str, member: Member) -> Deferred[Any]:
        joined = self._commands.run(
            scripts.JOIN,
            [self._commands.key("presence", channel), self._aliveKey()],
            [
                member.key,
                member.toJSON(),
                self._commands.channelName(channel),
                self._commands.origin + JOINED,
                int(self.timeout * 1000),
                self._aliveValue(),
            ],
        )
        return joined.addErrback(self._presenceFailed, channel)

    def _sendLeave(self, channel: str, member: Member) -> Deferred[None]:
        if self._commands.connection is None:
            # Swept by the others once this process's key expires.
            return succeed(None)
        left = self._commands.run(
            scripts.LEAVE,
            [self._commands.key("presence", channel)],
            [
                member.key,
                self._commands.channelName(channel),
                self._commands.origin + LEFT,
            ],
        )
        return left.addErrback(self._presenceFailed, channel)

    def _sweep(self, channel: str) -> Deferred[list[bytes]]:
        return self._commands.run(
            scripts.SWEEP,
            [self._commands.key("presence", channel)],
            [
                self._commands.key("alive", ""),
                self._commands.channelName(channel),
                self._commands.origin + LEFT,
            ],
        )

    def _presenceFailed(self, failure: Failure, channel: str) -> None:
        _log.warn(
            "hub: presence of {channel} not updated: {error}",
            channel=channel,
            error=failure.getErrorMessage(),
        )

    def beat(self) -> None:
        """
        The heartbeat: this process is alive for another C{timeout}; the
        channels it cares about are swept of silent processes' members.
        """
        ttl = int(self.timeout * 1000)
        alive = self._commands.command(
            "SET", self._aliveKey(), self._aliveValue(), "PX", ttl
        )
        if alive is None:
            return
        alive.addErrback(lambda _: None)
        for channel in {*self._members.channels(), *self._observers.channels()}:
            self._sweep(channel).addErrback(lambda _: None)

    def rebuild(self) -> None:
        """
        After a reconnection: record this process's members again (Redis
        may have restarted empty); only those Redis lacked are announced.
        """
        for channel, member in self._members.everyMember():
            self._sendJoin(channel, member)

    def arrived(self, channel: str, data: bytes, joined: bool) -> None:
        """
        A presence notice arrived from Redis: tell the observers.
        """
        number, _, body = data.partition(b" ")
        try:
            change = PresenceChange(channel, joined, Member.fromJSON(body), int(number))
        except ValueError:
            _log.warn("hub: dropped a presence notice on {channel}", channel=channel)
            return
        self._observers.tell(change)
