# -*- test-case-name: tests.test_hub,tests.test_channels -*-
"""
The publishing connection of a L{txclws.redishub.RedisHub} and what runs on
it (commands, the Lua scripts of L{txclws._redisscripts}), the names the
hub gives its keys and channels in Redis, and the start of every message it
puts there: the parts of a hub (L{txclws._redispubsub},
L{txclws._redishistory}, L{txclws._redispresence}) all go through this.

@since: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure

from txclws import _redisscripts as scripts
from txclws._hubinterface import HubUnavailable
from txclws._redislinks import RedisConnectionError

__all__ = [
    "BINARY",
    "JOINED",
    "KEPT_BINARY",
    "KEPT_TEXT",
    "LEFT",
    "ORIGIN_SIZE",
    "TEXT",
    "RedisCommands",
    "publishFailed",
]

# The hub's log lines, wherever they are written from.
_log = Logger(namespace="txclws.redishub")

#: What follows the origin in a message on Redis: its kind (see
#: L{txclws._redisscripts}).
TEXT, BINARY = b"t", b"b"
KEPT_TEXT, KEPT_BINARY = b"T", b"B"
JOINED, LEFT = b"j", b"l"

#: Bytes of random origin that start each message a hub puts on Redis.
ORIGIN_SIZE = 8


def publishFailed(
    channel: str, why: str, cause: BaseException | None = None
) -> Deferred[Any]:
    """
    Log that a publish to C{channel} failed, and fail with
    L{HubUnavailable}.
    """
    error = HubUnavailable(f"publish to {channel!r} failed: {why}")
    error.__cause__ = cause
    _log.error("hub: publish to {channel} failed: {why}", channel=channel, why=why)
    return fail(error)


class RedisCommands:
    """
    The publishing connection of a hub, while it is up, and the names the
    hub uses in Redis.

    @ivar prefix: the start of every Redis key and channel name the hub
        uses (C{PREFIX:DB:}).
    @ivar origin: the random bytes that start each message the hub puts
        on Redis (L{ORIGIN_SIZE} of them).
    @ivar connection: the publishing connection, or C{None} while there is
        none.
    """

    def __init__(
        self,
        prefix: str,
        origin: bytes,
        address: Callable[[], str],
        running: Callable[[], bool],
    ) -> None:
        """
        @param address: the Redis server's C{host:port}, for errors.
        @param running: whether the hub runs, for errors.
        """
        self.prefix = prefix
        self.origin = origin
        self._address = address
        self._running = running
        self.connection: Any = None

    def key(self, kind: str, name: str) -> str:
        """
        The Redis key of C{kind} for C{name} (see L{txclws._redisscripts}).
        """
        return f"{self.prefix}{kind}:{name}"

    def channelName(self, channel: str) -> str:
        """
        The Redis pub/sub channel of the hub's C{channel}.
        """
        return self.prefix + channel

    def notConnected(self) -> str:
        """
        Why there is no connection to publish on, for errors.
        """
        if not self._running():
            return "the hub is not running"
        return f"not connected to Redis at {self._address()}"

    def ready(self, connection: Any) -> None:
        """
        The publishing connection is up: load the scripts on it, and use it.
        """
        self._loadScripts(connection)
        self.connection = connection

    def lost(self, connection: Any) -> bool:
        """
        A publishing connection is gone.

        @return: whether it was the one in use.
        """
        if connection is not self.connection:
            return False
        self.connection = None
        return True

    def command(self, *arguments: Any) -> Deferred[Any] | None:
        """
        Send one command, if there is a connection.

        @return: its reply, or C{None} when there is no connection or it
            is gone.
        """
        connection = self.connection
        if connection is None:
            return None
        try:
            sent: Deferred[Any] = connection.execute_command(*arguments)
        except RedisConnectionError:
            return None
        return sent

    def publish(self, channel: str, data: bytes) -> Deferred[None]:
        """
        Publish C{data} on the Redis channel of C{channel}.

        @return: fires (with C{None}) once Redis has it; fails with L{HubUnavailable}
            (logged) when it could not be sent.
        """
        connection = self.connection
        if connection is None:
            return publishFailed(channel, self.notConnected())
        try:
            # txredisapi is untyped: publish returns a Deferred of the number
            # of receivers.
            sent: Deferred[object] = connection.publish(self.channelName(channel), data)
        except RedisConnectionError as error:
            return publishFailed(channel, str(error), error)
        return sent.addCallbacks(
            lambda _: None,
            lambda f: publishFailed(channel, f.getErrorMessage(), f.value),
        )

    def run(
        self, script: scripts.Script, keys: list[str], args: list[Any]
    ) -> Deferred[Any]:
        """
        Run C{script} on the publishing connection.

        @return: its reply; a failure with L{HubUnavailable} when Redis
            cannot be reached.
        """
        connection = self.connection
        if connection is None:
            why = "the hub is not running" if not self._running() else "not connected"
            return fail(HubUnavailable(f"{why} to Redis at {self._address()}"))
        try:
            ran: Deferred[Any] = connection.execute_command(
                "EVALSHA", script.sha, len(keys), *keys, *args
            )
        except RedisConnectionError as error:
            return fail(HubUnavailable(str(error)))
        return ran.addErrback(self._scriptFailed, connection)

    def _scriptFailed(self, failure: Failure, connection: Any) -> Failure:
        if "NOSCRIPT" in failure.getErrorMessage() and connection is self.connection:
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
