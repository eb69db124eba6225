# -*- test-case-name: tests.test_hub -*-
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

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from zope.interface import Interface, implementer

from txclws._broadcast import writeToClientsBinary, writeToClientsText
from txclws._core.errors import WebSocketError
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
    Channels of clients, and publishing to them.

    Channel names are strings chosen by the application; a channel exists
    while it has subscribers.  Subscriptions are this process's own: a
    client is subscribed where it is connected.
    """

    def subscribe(channel: str, client: IWebSocketClient) -> Deferred[None]:
        """
        From now on, send C{client} what is published to C{channel}, until
        it is unsubscribed or disconnects: the hub watches
        L{IWebSocketClient.whenDisconnected} and ends every subscription of
        a client that is gone, so the resource need not.  Subscribing
        twice is subscribing once.

        @return: a Deferred firing once what any process publishes to the
            channel reaches the client: at once for a L{LocalHub}; once
            Redis confirmed the subscription for a C{RedisHub}, which waits
            for Redis if it is down.  It never fails.
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

    def publish(channel: str, message: str | bytes) -> Deferred[None]:
        """
        Send C{message} to every subscriber of C{channel}, in this process
        at once and, for a hub shared between processes, in the others.

        @param message: a C{str} is sent as a text message, C{bytes} as a
            binary one.
        @return: a Deferred firing once the message was handed to every
            process, or failing with L{HubUnavailable} (and logged) when it
            could not leave this one.
        @raise TypeError: C{message} is neither C{str} nor C{bytes}.
        """

    def subscribers(channel: str) -> list[IWebSocketClient]:
        """
        This process's subscribers of C{channel}, in the order they came.
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
        clients = self._byChannel.get(channel)
        if not clients:
            return 0
        if text:
            return writeToClientsText(list(clients), payload)
        # Not narrowed: text is false only for bytes (see messagePayload).
        return writeToClientsBinary(list(clients), payload)  # type: ignore[arg-type]


@implementer(IHub)
class LocalHub:
    """
    The hub of one process: a message reaches the subscribers connected to
    this process, at once.  What the chat demo uses by default.
    """

    def __init__(self) -> None:
        self._subscriptions = Subscriptions()

    def subscribe(self, channel: str, client: IWebSocketClient) -> Deferred[None]:
        """
        See L{IHub.subscribe}; fires at once.
        """
        self._subscriptions.add(channel, client)
        self._subscriptions.watch(client, self.unsubscribeAll)
        return succeed(None)

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

    def publish(self, channel: str, message: str | bytes) -> Deferred[None]:
        """
        Send C{message} to this process's subscribers of C{channel}, framed
        once for all of them; see L{IHub.publish}.  The Deferred has fired.
        """
        payload, text = messagePayload(message)
        self._subscriptions.deliver(channel, payload, text)
        return succeed(None)

    def subscribers(self, channel: str) -> list[IWebSocketClient]:
        """
        See L{IHub.subscribers}.
        """
        return self._subscriptions.clients(channel)
