# -*- test-case-name: tests.test_hub,tests.test_history -*-
"""
Which clients of this process are subscribed to which channel, and
delivering to them, framed once (L{deliverTo}, L{deliverKept}): the
bookkeeping every hub shares.

@since: 0.1.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred

from txclws._broadcast import writeToClientsBinary, writeToClientsText
from txclws._history import HistoryPolicy, KeptMessage
from txclws._hubinterface import messagePayload
from txclws._resource import IWebSocketClient

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Subscriptions", "deliverKept", "deliverTo"]


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
    return writeToClientsBinary(clients, cast(bytes, payload))


def deliverKept(
    clients: list[IWebSocketClient], policy: HistoryPolicy, kept: KeptMessage
) -> int:
    """
    Write a kept message to C{clients}, stamped as C{policy} says and
    framed once.
    """
    payload, text = messagePayload(policy.render(kept))
    return deliverTo(clients, payload, text)
