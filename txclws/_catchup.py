# -*- test-case-name: tests.test_history -*-
"""
Subscribers of a C{RedisHub} catching up on a channel's history before
they get its live messages, exactly once, in order; and with one read of
the history per channel at a time, however many of them come at once.

While a subscriber catches up it is held (L{Subscriptions.hold}): live
messages skip it, and are buffered here instead.  The read starts once
the process is subscribed to the channel in Redis, so every message
published after the read is heard live; one published before it is in
what is read.  A message can be both (published after the subscription,
before the read): positions tell, and only what comes after the last
position delivered is delivered.

@since: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from txclws._history import HistoryPolicy, HistoryWindow, KeptMessage, positionKey
from txclws._resource import IWebSocketClient
from txclws._subscriptions import Subscriptions, deliverKept

__all__ = ["CatchUp"]

_log = Logger()

#: Reads a channel's history after a position.
Reader = Callable[[str, str], "Deferred[HistoryWindow]"]


#: A subscriber's position, and who waits for the end of its catching up.
_Waiting = tuple[str, list[Deferred[bool]]]


@dataclass
class _Read:
    """
    The subscribers one read of a channel serves, and what arrived live
    meanwhile.
    """

    waiting: dict[IWebSocketClient, _Waiting]
    arrived: list[KeptMessage] = field(default_factory=list)


class CatchUp:
    """
    The subscribers catching up, by channel.

    @ivar reads: how many reads were made (for tests and benchmarks).
    """

    def __init__(
        self,
        subscriptions: Subscriptions,
        read: Reader,
        policyOf: Callable[[str], HistoryPolicy],
        seen: Callable[[str, str], None],
        clock: IReactorTime | None = None,
        retryDelay: float = 0.5,
    ) -> None:
        """
        @param read: reads a channel's history after a position.
        @param policyOf: the policy a channel's messages are stamped with.
        @param seen: told the last position of each window read.
        @param clock: schedules a failed read again, C{retryDelay} seconds
            later (the reactor by default).
        """
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self._clock: IReactorTime = clock
        self._retryDelay = retryDelay
        self._subscriptions = subscriptions
        self._read = read
        self._policyOf = policyOf
        self._seen = seen
        self._waiting: dict[str, dict[IWebSocketClient, _Waiting]] = {}
        self._reading: dict[str, _Read] = {}
        self.reads = 0

    def request(
        self, channel: str, client: IWebSocketClient, since: str
    ) -> Deferred[bool]:
        """
        Hold subscriber C{client} of C{channel} until it got everything
        after C{since}; the read starts at the next L{kick}.  A client
        asking again before its read started keeps its first position.

        @return: fires with whether the history reached back to C{since}.
        """
        done: Deferred[bool] = Deferred()
        waiting = self._waiting.setdefault(channel, {})
        if client in waiting:
            waiting[client][1].append(done)
            return done
        self._subscriptions.hold(channel, client)
        waiting[client] = (since, [done])
        return done

    def arrived(self, channel: str, kept: KeptMessage) -> None:
        """
        A kept message arrived live: keep it for the subscribers catching
        up on C{channel}.
        """
        read = self._reading.get(channel)
        if read is not None:
            read.arrived.append(kept)

    def kick(self, channel: str) -> None:
        """
        Start reading C{channel}'s history for the subscribers waiting, if
        none is under way: call once the process is subscribed to it.
        """
        if channel in self._reading or not self._waiting.get(channel):
            return
        waiting = self._waiting.pop(channel)
        self._reading[channel] = _Read(waiting)
        since = min((s for s, _ in waiting.values()), key=positionKey)
        self.reads += 1
        self._read(channel, since).addBoth(self._done, channel)

    def _done(self, result: HistoryWindow | Failure, channel: str) -> None:
        read = self._reading.pop(channel)
        if isinstance(result, Failure):
            _log.warn(
                "hub: reading the history of {channel} failed ({error}); "
                "retrying in {delay} s",
                channel=channel,
                error=result.getErrorMessage(),
                delay=self._retryDelay,
            )
            waiting = self._waiting.setdefault(channel, {})
            for client, (since, waiters) in read.waiting.items():
                if client in waiting:
                    waiting[client][1].extend(waiters)
                else:
                    waiting[client] = (since, waiters)
            self._clock.callLater(self._retryDelay, self.kick, channel)
            return
        self._deliver(channel, result, read)
        self._seen(channel, f"{result.last[0]}-{result.last[1]}")
        again = self._waiting.get(channel, {})
        for client, (since, waiters) in read.waiting.items():
            if client not in again:
                self._subscriptions.release(channel, client)
            for done in waiters:
                done.callback(result.reaches(since))
        self.kick(channel)

    def _deliver(self, channel: str, window: HistoryWindow, read: _Read) -> None:
        policy = self._policyOf(channel)
        subscribed = set(self._subscriptions.clients(channel))
        bySince: dict[str, list[IWebSocketClient]] = {}
        for client, (since, _) in read.waiting.items():
            if client in subscribed:
                bySince.setdefault(since, []).append(client)
        for since, clients in bySince.items():
            missed = window.after(since)
            if not missed.complete:
                continue
            last = positionKey(since)
            for kept in (*missed.messages, *read.arrived):
                key = positionKey(kept.position)
                if key > last:
                    deliverKept(clients, policy, kept)
                    last = key
