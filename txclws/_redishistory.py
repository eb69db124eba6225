# -*- test-case-name: tests.test_history,tests.test_channels -*-
"""
The history side of a L{txclws.redishub.RedisHub}: a kept channel's
messages go to a Redis stream and out on pub/sub in one script, are
delivered everywhere (this process included) from Redis in the order of
their positions, and are read back for the subscribers that resume, one
read per channel at a time (L{txclws._catchup}).

@since: 0.2.0
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

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
from txclws._rediscommands import (
    BINARY,
    KEPT_BINARY,
    KEPT_TEXT,
    TEXT,
    RedisCommands,
    publishFailed,
)
from txclws._resource import IWebSocketClient
from txclws._subscriptions import Subscriptions, deliverKept

__all__ = ["RedisHistory"]

# The hub's log lines, wherever they are written from.
_log = Logger(namespace="txclws.redishub")

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
        message = value.decode("utf-8") if kind == TEXT else value
        messages.append(KeptMessage(position.decode("ascii"), message))
    return HistoryWindow(
        positionKey(start.decode("ascii")),
        positionKey(floor.decode("ascii")),
        positionKey(last.decode("ascii")),
        tuple(messages),
    )


class RedisHistory:
    """
    The kept channels of a hub, and its subscribers catching up on them.

    @ivar catchUp: the subscribers catching up, by channel.
    """

    def __init__(self, commands: RedisCommands, subscriptions: Subscriptions) -> None:
        self._commands = commands
        self._subscriptions = subscriptions
        self._policies: dict[str, HistoryPolicy] = {}
        #: For each kept channel with subscribers here, the last position
        #: heard: where they catch up from after the subscription is lost.
        self._seen: dict[str, str] = {}
        self.catchUp = CatchUp(
            subscriptions, self._read, self._policyOf, self._sawPosition
        )

    def policy(self, channel: str) -> HistoryPolicy | None:
        """
        How C{channel} is kept, or C{None} if it is not.
        """
        return self._policies.get(channel)

    def keep(self, channel: str, policy: HistoryPolicy) -> None:
        """
        See L{txclws._hubinterface.IHub.keepHistory}.
        """
        self._policies[channel] = policy

    def history(self, channel: str, since: str) -> Deferred[History]:
        """
        See L{txclws._hubinterface.IHub.history}: one read of the stream.
        """
        if not isPosition(since):
            return succeed(TOO_OLD)
        return self._read(channel, since).addCallback(
            lambda window: window.after(since)
        )

    def resume(
        self, channel: str, client: IWebSocketClient, since: str | None
    ) -> Deferred[bool] | None:
        """
        Hold subscriber C{client} of C{channel} until it got what it missed
        after C{since} (read once the channel is subscribed in Redis).

        @return: fires with whether the history reached back to C{since};
            C{None} when C{since} is not a position.
        """
        if since is None or not isPosition(since):
            return None
        return self.catchUp.request(channel, client, since)

    def forget(self, channel: str) -> None:
        """
        C{channel} has no subscriber here any more.
        """
        self._seen.pop(channel, None)

    def publish(
        self, channel: str, payload: str | bytes, text: bool, policy: HistoryPolicy
    ) -> Deferred[str | None]:
        """
        Keep a message and publish it, in one script; it reaches this
        process's subscribers from Redis.

        @return: fires with its position, or fails with L{HubUnavailable}.
        """
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        maxAge = int(policy.maxAge * 1000) if policy.maxAge is not None else 0
        published = self._commands.run(
            scripts.PUBLISH_KEPT,
            self._keys(channel),
            [
                policy.size,
                maxAge,
                TEXT if text else BINARY,
                data,
                self._commands.channelName(channel),
                self._commands.origin + (KEPT_TEXT if text else KEPT_BINARY),
            ],
        )
        return published.addCallbacks(
            lambda position: position.decode("ascii"),
            lambda f: publishFailed(channel, f.getErrorMessage(), f.value),
        )

    def _keys(self, channel: str) -> list[str]:
        return [
            self._commands.key("history", channel),
            self._commands.key("history-start", channel),
        ]

    def _policyOf(self, channel: str) -> HistoryPolicy:
        return self._policies.get(channel) or _UNSTAMPED

    def _read(self, channel: str, since: str) -> Deferred[HistoryWindow]:
        read = self._commands.run(scripts.READ_HISTORY, self._keys(channel), [since])
        return read.addCallback(_window)

    def _sawPosition(self, channel: str, position: str) -> None:
        if not self._subscriptions.clients(channel):
            return
        seen = self._seen.get(channel)
        if seen is None or positionKey(position) > positionKey(seen):
            self._seen[channel] = position

    def arrived(self, channel: str, data: bytes, text: bool) -> None:
        """
        A kept message arrived from Redis: deliver it to the live
        subscribers, and keep it for those catching up.
        """
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
        self.catchUp.arrived(channel, kept)
        self._sawPosition(channel, position)

    def catchUpAfterLoss(self, channel: str) -> None:
        """
        The subscription to C{channel} was lost and is being made again:
        its subscribers catch up from the last position this process heard.
        """
        since = self._seen.get(channel)
        if since is None:
            return
        for client in self._subscriptions.clients(channel):
            caught = self.catchUp.request(channel, client, since)
            caught.addCallback(self._caughtUp, channel)

    def _caughtUp(self, complete: bool, channel: str) -> None:
        if not complete:
            _log.warn(
                "hub: the history of {channel} no longer reaches back to what "
                "this process last heard: its subscribers may have missed "
                "messages while Redis was away",
                channel=channel,
            )
