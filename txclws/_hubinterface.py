# -*- test-case-name: tests.test_hub,tests.test_history,tests.test_presence -*-
"""
The interface of a hub (L{IHub}), what it fails with (L{HubUnavailable}),
and the check of what is published (L{messagePayload}): what every hub,
local or shared, has in common.  L{txclws._hub} gives the overview.

@since: 0.1.0
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from zope.interface import Interface

from txclws._core.errors import WebSocketError
from txclws._history import History, HistoryPolicy
from txclws._presence import Member, PresenceObserver
from txclws._resource import IWebSocketClient

__all__ = ["HubUnavailable", "IHub", "messagePayload"]


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
