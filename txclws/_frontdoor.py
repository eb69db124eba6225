# -*- test-case-name: tests.test_protocol -*-
"""
What the front door (L{txclws._protocol.WebSocketServerProtocol}) declares:
its state (L{FrontDoorState}), what it needs from its factory
(L{FrontDoorOwner}) and what a route is (L{Route}).
"""

from __future__ import annotations

import typing
from collections.abc import Collection
from enum import Enum

from txclws._core.accept import ServerSettings
from txclws._core.origin import OriginCheck
from txclws._registry import ResourceRegistry
from txclws._resource import IWebSocketResource
from txclws._session.base import SessionOwner

__all__ = ["FrontDoorOwner", "FrontDoorState", "Route"]


class FrontDoorOwner(SessionOwner, typing.Protocol):
    """
    What the front door needs from its factory (a
    L{txclws._factory.WebSocketFactory}) beyond what its session does: the
    head's limits, the registry, the clients, the acceptance settings.
    """

    maxHeadSize: int
    handshakeTimeout: float
    registry: ResourceRegistry

    @property
    def clients(self) -> Collection[object]: ...

    @property
    def settings(self) -> ServerSettings: ...


#: A route: the resource at a path, its origin policy, and the factory whose
#: limits and client count apply to it.
Route = tuple[IWebSocketResource, OriginCheck, FrontDoorOwner]


class FrontDoorState(Enum):
    """
    Where a connection is, as the front door sees it.

    @cvar AWAITING_TLS: the transport is TLS and its handshake has not
        completed: nothing written can reach the peer yet, so the handshake
        timeout aborts instead of answering 408.  Left for L{READING_HEAD}
        when TLS completes (C{handshakeCompleted}) or application data
        arrives.
    @cvar READING_HEAD: reading the request head, within the factory's
        C{handshakeTimeout} and C{maxHeadSize}.
    @cvar AWAITING_BODY: a hixie-76 head is here; awaiting the 8 bytes
        after it, within the same timeout.
    @cvar OPEN: the session serves the client; bytes go to it.
    @cvar HANDED_TO_HTTP: the request was not a WebSocket upgrade we route:
        an C{HTTPChannel} owns the connection; bytes go to it.
    @cvar DONE: input is ignored: a refused handshake (its answer written,
        the connection closing within C{closeTimeout}) or a lost connection.
    """

    AWAITING_TLS = "AWAITING_TLS"
    READING_HEAD = "READING_HEAD"
    AWAITING_BODY = "AWAITING_BODY"
    OPEN = "OPEN"
    HANDED_TO_HTTP = "HANDED_TO_HTTP"
    DONE = "DONE"
