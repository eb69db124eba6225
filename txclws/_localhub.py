# -*- test-case-name: tests.test_hub,tests.test_history,tests.test_presence -*-
"""
L{LocalHub}: the hub of one process.

@since: 0.1.0
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from txclws._history import TOO_OLD, History, HistoryPolicy, LocalHistory
from txclws._hubinterface import IHub, messagePayload
from txclws._presence import (
    LocalMembers,
    Member,
    PresenceChange,
    PresenceObserver,
    PresenceObservers,
)
from txclws._resource import IWebSocketClient
from txclws._subscriptions import Subscriptions, deliverKept

__all__ = ["LocalHub"]


@implementer(IHub)
class LocalHub:
    """
    The hub of one process: a message reaches the subscribers connected to
    this process, at once; histories are bounded deques
    (L{txclws._history.LocalHistory}) and presence is this process's.
    What the chat demo uses by default.
    """

    def __init__(self) -> None:
        self._subscriptions = Subscriptions()
        self._histories: dict[str, LocalHistory] = {}
        self._members = LocalMembers(secrets.token_hex(4))
        self._observers = PresenceObservers()

    def subscribe(
        self, channel: str, client: IWebSocketClient, since: str | None = None
    ) -> Deferred[bool]:
        """
        See L{IHub.subscribe}; fires at once, after C{client} got what it
        missed since C{since}.
        """
        self._subscriptions.add(channel, client)
        self._subscriptions.watch(client, self._gone)
        if since is None or not self._subscriptions.release(channel, client):
            return succeed(True)
        history = self._histories.get(channel)
        if history is None:
            return succeed(TOO_OLD.complete)
        missed = history.window().after(since)
        for kept in missed.messages:
            deliverKept([client], history.policy, kept)
        return succeed(missed.complete)

    def unsubscribe(self, channel: str, client: IWebSocketClient) -> None:
        """
        See L{IHub.unsubscribe}.
        """
        self._subscriptions.remove(channel, client)

    def unsubscribeAll(self, client: IWebSocketClient) -> None:
        """
        See L{IHub.unsubscribeAll}.
        """
        self._subscriptions.removeClient(client)

    def publish(self, channel: str, message: str | bytes) -> Deferred[str | None]:
        """
        Send C{message} to this process's subscribers of C{channel}, framed
        once for all of them, after keeping it if the channel keeps a
        history; see L{IHub.publish}.  The Deferred has fired.
        """
        payload, text = messagePayload(message)
        history = self._histories.get(channel)
        if history is None:
            self._subscriptions.deliver(channel, payload, text)
            return succeed(None)
        kept = history.append(payload)
        deliverKept(self._subscriptions.liveClients(channel), history.policy, kept)
        return succeed(kept.position)

    def subscribers(self, channel: str) -> list[IWebSocketClient]:
        """
        See L{IHub.subscribers}.
        """
        return self._subscriptions.clients(channel)

    def keepHistory(self, channel: str, policy: HistoryPolicy) -> None:
        """
        See L{IHub.keepHistory}; the same policy again keeps what is kept.
        """
        history = self._histories.get(channel)
        if history is None or history.policy != policy:
            self._histories[channel] = LocalHistory(policy)

    def history(self, channel: str, since: str) -> Deferred[History]:
        """
        See L{IHub.history}.
        """
        history = self._histories.get(channel)
        return succeed(history.window().after(since) if history else TOO_OLD)

    def join(
        self, channel: str, client: IWebSocketClient, identity: str
    ) -> Deferred[Member]:
        """
        See L{IHub.join}.
        """
        existing = self._members.get(channel, client)
        member = self._members.add(channel, client, identity)
        self._subscriptions.watch(client, self._gone)
        if member is None:
            assert existing is not None  # add() makes only new members
            return succeed(existing)
        self._tell(channel, True, member)
        return succeed(member)

    def leave(self, channel: str, client: IWebSocketClient) -> None:
        """
        See L{IHub.leave}.
        """
        member = self._members.remove(channel, client)
        if member is not None:
            self._tell(channel, False, member)

    def presence(self, channel: str) -> Deferred[list[Member]]:
        """
        See L{IHub.presence}: this process's members.
        """
        return succeed(self._members.members(channel))

    def observePresence(
        self, channel: str, observer: PresenceObserver
    ) -> Callable[[], None]:
        """
        See L{IHub.observePresence}.
        """
        return self._observers.add(channel, observer)

    def _tell(self, channel: str, joined: bool, member: Member) -> None:
        count = len(self._members.members(channel))
        self._observers.tell(PresenceChange(channel, joined, member, count))

    def _gone(self, client: IWebSocketClient) -> None:
        self.unsubscribeAll(client)
        for channel, member in self._members.removeClient(client):
            self._tell(channel, False, member)
