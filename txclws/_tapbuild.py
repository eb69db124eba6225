# -*- test-case-name: tests.test_tap,tests.test_daemon -*-
"""
The site L{txclws.tap.makeService} serves: the factory every WebSocket
resource shares, made from the options' limits and timeouts, and the root
resource (the named resources, or the demo).

@since: 0.2.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from twisted.web.resource import Resource

from txclws._core.deflate import PerMessageDeflate
from txclws._core.origin import OriginCheck
from txclws._factory import ResourceRegistry, WebSocketFactory
from txclws._hub import IHub
from txclws._resource import IWebSocketResource
from txclws._tapops import opsArguments

__all__ = ["makeFactory", "makeRoot"]


def makeFactory(config: Mapping[str, Any]) -> WebSocketFactory:
    """
    The factory every WebSocket resource of the site shares, with the
    limits and timeouts of C{config} (parsed L{txclws.tap.Options}).
    """
    return WebSocketFactory(
        ResourceRegistry(),
        maxClients=config["max-clients"],
        maxFrameSize=config["max-frame-size"],
        maxMessageSize=config["max-message-size"],
        maxHeadSize=config["max-head-size"],
        handshakeTimeout=config["handshake-timeout"],
        debugResourceErrors=bool(config["debug-resource-errors"]),
        deflate=PerMessageDeflate() if config["deflate"] else None,
        protocol76Support=bool(config["hixie76"]),
        pingInterval=config["ping-interval"] or None,
        pingTimeout=config["ping-timeout"],
        closeTimeout=config["close-timeout"],
        idleTimeout=config["idle-timeout"] or None,
        maxBuffer=config["max-buffer"],
        slowClientTimeout=config["slow-client-timeout"],
        **opsArguments(config),
    )


def makeRoot(
    resources: Sequence[tuple[str, IWebSocketResource]],
    originCheck: OriginCheck,
    factory: WebSocketFactory,
    hub: IHub | None = None,
) -> tuple[Resource, str]:
    """
    The site's root: the named resources, or the demo when none is.

    @return: the root, and the WebSocket paths served, for the log.
    """
    from txclws.demo import makeDemoRoot
    from txclws.web import mountWebSocket

    if not resources:
        return (
            makeDemoRoot(factory, originCheck, hub),
            "/echo, /chat (demo page at /)",
        )
    root = Resource()
    for path, resource in resources:
        mountWebSocket(root, path, resource, originCheck, factory)
    return root, ", ".join(path for path, _ in resources)
