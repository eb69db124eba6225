# -*- test-case-name: tests.test_testing -*-
"""
L{connect}: a resource served on a new L{InMemoryServer}, and a client
connected to it, in one call.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import MemoryReactorClock

from txclws._core.origin import OriginCheck, anyOrigin
from txclws._resource import IWebSocketResource
from txclws.testing._client import InMemoryClient, InMemoryServer


def connect(
    resource: IWebSocketResource,
    target: str = "/",
    *,
    originCheck: OriginCheck = anyOrigin,
    clock: MemoryReactorClock | None = None,
    **options: Any,
) -> InMemoryClient:
    """
    Serve C{resource} on a new L{InMemoryServer} and connect a client to it.

    @param resource: the resource under test, served at C{target}'s path.
    @param target: the request target, e.g. C{"/chat?name=alice"}.
    @param originCheck: the resource's origin policy; every origin by
        default.
    @param clock: the clock for the server's timeouts; a new one by default
        (then reach it as C{client.server.clock}).
    @param options: keyword arguments of L{InMemoryServer.connect}
        (C{origin}, C{headers}, C{subprotocols}, C{requireAccept},
        C{reading}, ...); any other is a limit passed to
        L{WebSocketFactory}, e.g. C{maxMessageSize=1024}.
    @return: the connected client.
    @raise HandshakeRefused: the handshake was refused (unless
        C{requireAccept=False}).
    """
    connectNames = {
        "origin",
        "headers",
        "subprotocols",
        "requireAccept",
        "autoClose",
        "reading",
    }
    connectOptions = {k: v for k, v in options.items() if k in connectNames}
    limits = {k: v for k, v in options.items() if k not in connectNames}
    server = InMemoryServer(clock=clock, **limits)
    server.register(target.partition("?")[0], resource, originCheck)
    return server.connect(target, **connectOptions)
