# -*- test-case-name: tests.test_hub,tests.test_history,tests.test_presence -*-
"""
Named channels of WebSocket clients, and publishing to them: how a resource
reaches clients wherever they are connected.

A hub maps channel names (a chat room, a feed) to the clients subscribed to
them; L{IHub.publish} sends a message to every subscriber of a channel.
L{LocalHub} knows the clients of this process only.
L{txclws.redishub.RedisHub} also relays each message through Redis, to the
subscribers of every process that shares the Redis server.  Either way a
process frames a message once for all of its subscribers
(L{writeToClientsText}).

@since: 0.1.0
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from zope.interface import Interface, implementer

from txclws._broadcast import writeToClientsBinary, writeToClientsText
from txclws._core.errors import WebSocketError
from txclws._history import (
    TOO_OLD,
    History,
    HistoryPolicy,
    KeptMessage,
    LocalHistory,
)
from txclws._presence import (
    LocalMembers,
    Member,
    PresenceChange,
    PresenceObserver,
    PresenceObservers,
)
from txclws._resource import IWebSocketClient

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["HubUnavailable", "IHub", "LocalHub"]


class HubUnavailable(WebSocketError):
    """
    A message could not be handed to the other processes (Redis is down or
    did not answer); this process's subscribers got it all the same.
    """


class IHub(Interface):
    """
    Channels of clients, and publishing to them; a channel may keep a
    history (L{keepHistory}) that subscribers resume from, and has
    presence (who is in it, L{join}).

    Channel names are strings chosen by the application; a channel exists
    while it has subscribers.  Subscriptions are this process's own: a
    client is subscribed where it is connected.
    """

    def subscribe(
        channel: str, client: IWebSocketClient, since: str | None = None
    ) -> Deferred[bool]:
        """
        From now on, send C{client} what is published to C{channel}, until
        it is unsubscribed or disconnects: the hub watches
        L{IWebSocketClient.whenDisconnected} and ends every subscription of
        a client that is gone, so the resource need not.  Subscribing
        twice is subscribing once.

        @param since: for a channel that keeps a history, a position the
            client saw (@since: 0.2.0): it first gets every kept message
            after it, in order, then the live ones, each exactly once.
        @return: a Deferred firing once what any process publishes to the
            channel reaches the client: at once for a L{LocalHub}; once
            Redis confirmed the subscription for a C{RedisHub}, which waits
            for Redis if it is down.  It fires with C{True}, or C{False}
            when C{since} was given and the history no longer reaches back
            to it (the client is subscribed from now on, and should start
            afresh: the demo chat sends C{{"type": "reset"}}).  It never
            fails.
        """

    def unsubscribe(channel: str, client: IWebSocketClient) -> None:
        """
        Stop sending C{client} what is published to C{channel}; nothing
        happens if it was not subscribed.
        """

    def unsubscribeAll(client: IWebSocketClient) -> None:
        """
        Drop C{client} from every channel at once; nothing happens if it
        has none.  The hub does this itself once a client disconnects
        (after C{clientDisconnected}); a resource calls it to drop a client
        that stays connected, or for a client that does not provide
        C{whenDisconnected} (an L{IWebSocketClient} of its own making).
        """

    def publish(channel: str, message: str | bytes) -> Deferred[str | None]:
        """
        Send C{message} to every subscriber of C{channel}, in this process
        at once and, for a hub shared between processes, in the others.
        For a channel that keeps a history, the message is kept first and
        then delivered everywhere in the order of its position (on a
        C{RedisHub} that is also in this process through Redis).

        @param message: a C{str} is sent as a text message, C{bytes} as a
            binary one.
        @return: a Deferred firing once the message was handed to every
            process (with its position for a kept message, else C{None}),
            or failing with L{HubUnavailable} (and logged) when it could
            not leave this one.
        @raise TypeError: C{message} is neither C{str} nor C{bytes}.
        """

    def subscribers(channel: str) -> list[IWebSocketClient]:
        """
        This process's subscribers of C{channel}, in the order they came.
        """

    def keepHistory(channel: str, policy: HistoryPolicy) -> None:
        """
        Keep what is published to C{channel} from now on, as C{policy}
        says.  Every process publishing to the channel must keep it alike.

        @since: 0.2.0
        """

    def history(channel: str, since: str) -> Deferred[History]:
        """
        The kept messages of C{channel} after position C{since}, or a
        L{History} that is not C{complete} when the history no longer
        reaches back to it.

        @since: 0.2.0
        """

    def join(channel: str, client: IWebSocketClient, identity: str) -> Deferred[Member]:
        """
        Make C{client} a member of C{channel}'s presence as C{identity},
        until it leaves or disconnects; observers are told.  Joining twice
        is joining once.

        @return: a Deferred firing with the member once every process can
            see it (at once for a L{LocalHub}; for a C{RedisHub}, once Redis
            has it, or at once while Redis is down: it is recorded when
            Redis is back).
        @since: 0.2.0
        """

    def leave(channel: str, client: IWebSocketClient) -> None:
        """
        C{client} is no longer a member of C{channel}; nothing happens if
        it was not.

        @since: 0.2.0
        """

    def presence(channel: str) -> Deferred[list[Member]]:
        """
        The members of C{channel} in every process sharing the hub.

        @return: a Deferred of them, failing with L{HubUnavailable} when a
            C{RedisHub} cannot reach Redis.
        @since: 0.2.0
        """

    def observePresence(channel: str, observer: PresenceObserver) -> Callable[[], None]:
        """
        Call C{observer} with a L{PresenceChange} for every join and leave
        of C{channel}, in whichever process it happened (a C{RedisHub} hears
        them while this process has subscribers to the channel).

        @return: a function that stops observing.
        @since: 0.2.0
        """


def messagePayload(message: str | bytes) -> tuple[str | bytes, bool]:
    """
    Check what is published: a text message, or a binary one.

    @return: the message (C{bytes} for bytes-like input) and whether it is
        text.
    @raise TypeError: C{message} is neither text nor bytes.
    """
    if isinstance(message, str):
        return message, True
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message), False
    raise TypeError(f"publish a str or bytes, not {type(message).__name__}")


class Subscriptions:
    """
    Which clients of this process are subscribed to which channel, in
    both directions, and delivering to them.

    Clients are kept in insertion-ordered dicts (used as ordered sets), so
    that deliveries go out in the order clients subscribed.

    @ivar _watched: the clients whose L{IWebSocketClient.whenDisconnected}
        this hub waits on: each once, from its first subscription until it
        disconnects, however often it comes and goes from channels.
    """

    def __init__(self) -> None:
        self._byChannel: dict[str, dict[IWebSocketClient, None]] = {}
        self._byClient: dict[IWebSocketClient, dict[str, None]] = {}
        self._watched: set[IWebSocketClient] = set()
        self._held: dict[str, set[IWebSocketClient]] = {}

    def watch(
        self, client: IWebSocketClient, gone: Callable[[IWebSocketClient], None]
    ) -> None:
        """
        Call C{gone(client)} once C{client} disconnects: the end of its
        subscriptions (issue 18).  Call it once the subscription is made
        (a client already gone is then unsubscribed at once); a client
        watched already is not watched twice.  A client without
        C{whenDisconnected} is not watched: ending its subscriptions is its
        resource's business (L{IHub.unsubscribeAll}).
        """
        if client in self._watched:
            return
        whenDisconnected = getattr(client, "whenDisconnected", None)
        if whenDisconnected is None:
            return
        self._watched.add(client)
        waiting: Deferred[None] = whenDisconnected()
        waiting.addCallback(self._gone, client, gone)

    def _gone(
        self,
        ignored: None,
        client: IWebSocketClient,
        gone: Callable[[IWebSocketClient], None],
    ) -> None:
        self._watched.discard(client)
        gone(client)

    @property
    def watchedCount(self) -> int:
        """
        How many clients are watched for their disconnection.
        """
        return len(self._watched)

    def add(self, channel: str, client: IWebSocketClient) -> bool:
        """
        Subscribe C{client} to C{channel}.

        @return: whether the channel had no subscriber before.
        """
        if not isinstance(channel, str):
            raise TypeError(f"channel names are str, not {type(channel).__name__}")
        clients = self._byChannel.get(channel)
        new = clients is None
        if clients is None:
            clients = self._byChannel[channel] = {}
        clients[client] = None
        self._byClient.setdefault(client, {})[channel] = None
        return new

    def remove(self, channel: str, client: IWebSocketClient) -> bool:
        """
        Unsubscribe C{client} from C{channel}.

        @return: whether that left the channel without subscribers.
        """
        clients = self._byChannel.get(channel)
        if clients is None or client not in clients:
            return False
        del clients[client]
        self.release(channel, client)
        channels = self._byClient[client]
        del channels[channel]
        if not channels:
            del self._byClient[client]
        if clients:
            return False
        del self._byChannel[channel]
        return True

    def removeClient(self, client: IWebSocketClient) -> list[str]:
        """
        Unsubscribe C{client} from every channel.

        @return: the channels that were left without subscribers.
        """
        return [
            channel
            for channel in list(self._byClient.get(client, ()))
            if self.remove(channel, client)
        ]

    def hold(self, channel: str, client: IWebSocketClient) -> None:
        """
        Deliver nothing to subscriber C{client} on C{channel} until
        L{release}d: it is catching up on the channel's history.
        """
        self._held.setdefault(channel, set()).add(client)

    def release(self, channel: str, client: IWebSocketClient) -> bool:
        """
        Deliver to C{client} on C{channel} again.

        @return: whether it is (still) subscribed to C{channel}.
        """
        held = self._held.get(channel)
        if held is not None:
            held.discard(client)
            if not held:
                del self._held[channel]
        return client in self._byChannel.get(channel, ())

    def clients(self, channel: str) -> list[IWebSocketClient]:
        """
        The subscribers of C{channel}.
        """
        return list(self._byChannel.get(channel, ()))

    def channels(self) -> Iterator[str]:
        """
        Every channel with a subscriber.
        """
        return iter(list(self._byChannel))

    def deliver(self, channel: str, payload: str | bytes, text: bool) -> int:
        """
        Write a message to every subscriber of C{channel}, framed once.

        @param payload: the message; for text, a C{str} or UTF-8 bytes.
        @return: how many clients were written to.
        @raise ValueError: text that is not UTF-8.
        """
        return deliverTo(self.liveClients(channel), payload, text)

    def liveClients(self, channel: str) -> list[IWebSocketClient]:
        """
        The subscribers of C{channel} that are not held: those live
        messages go to.
        """
        clients = self._byChannel.get(channel)
        if not clients:
            return []
        held = self._held.get(channel)
        return [c for c in clients if c not in held] if held else list(clients)


def deliverTo(clients: list[IWebSocketClient], payload: str | bytes, text: bool) -> int:
    """
    Write a message to C{clients}, framed once.

    @return: how many clients were written to.
    """
    if not clients:
        return 0
    if text:
        return writeToClientsText(clients, payload)
    # Not narrowed: text is false only for bytes (see messagePayload).
    return writeToClientsBinary(clients, payload)  # type: ignore[arg-type]


def deliverKept(
    clients: list[IWebSocketClient], policy: HistoryPolicy, kept: KeptMessage
) -> int:
    """
    Write a kept message to C{clients}, stamped as C{policy} says and
    framed once.
    """
    payload, text = messagePayload(policy.render(kept))
    return deliverTo(clients, payload, text)


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
        missed = history.window().after(since) if history else TOO_OLD
        for kept in missed.messages:
            deliverKept([client], history.policy, kept)  # type: ignore[union-attr]
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
        member = self._members.add(channel, client, identity)
        self._subscriptions.watch(client, self._gone)
        if member is None:
            return succeed(self._members.get(channel, client))  # type: ignore[arg-type]
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
