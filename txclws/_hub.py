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
(L{txclws._broadcast.writeToClientsText}).

The parts: L{txclws._hubinterface} (the interface, what it fails with),
L{txclws._subscriptions} (who is subscribed where, and delivering),
L{txclws._localhub} (the local hub); this module gathers them.

@since: 0.1.0
"""

from __future__ import annotations

from txclws._hubinterface import HubUnavailable, IHub, messagePayload
from txclws._localhub import LocalHub
from txclws._subscriptions import Subscriptions, deliverKept, deliverTo

__all__ = [
    "HubUnavailable",
    "IHub",
    "LocalHub",
    "Subscriptions",
    "deliverKept",
    "deliverTo",
    "messagePayload",
]
