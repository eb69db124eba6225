# -*- test-case-name: tests.test_testing,tests.test_daemon -*-
"""
The demo that C{twistd clws} serves when no resource is named: an echo
resource at C{/echo}, a chat room at C{/chat}, and at C{/} a page that
talks to both, all on one port through L{txclws.web}.

The chat speaks JSON text messages, one object each::

    {"type": "welcome", "name": "alice", "members": ["bob"]}  (to the joiner)
    {"type": "join", "name": "alice", "count": 2}             (to everyone)
    {"type": "message", "name": "alice", "text": "hello"}     (to everyone)
    {"type": "leave", "name": "alice", "count": 1}            (to the others)

A client sends plain text; its name comes from the query string
(C{ws://host/chat?name=alice}), or is made up.

The room's notices and messages go through an L{IHub}, on the channel
C{chat:PATH}: a L{LocalHub} of its own by default, or the daemon's
C{--hub}.  With a shared hub (L{txclws.redishub.RedisHub}) members
connected to different processes chat with each other; the names, the
welcome's C{members} and the C{count}s are those of the process where the
event happened (presence is not shared).

@since: 0.1.0
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from txclws._core.frames import CloseCode
from txclws._core.origin import OriginCheck, anyOrigin
from txclws._factory import ResourceRegistry, WebSocketFactory
from txclws._hub import IHub, LocalHub
from txclws._resource import IWebSocketClient, IWebSocketResource, WebSocketResource
from txclws.web import mountWebSocket

__all__ = [
    "ChatResource",
    "DemoPage",
    "EchoResource",
    "demoResources",
    "makeDemoRoot",
    "makeDemoSite",
]

#: The longest chat name kept; longer ones are cut.
MAX_NAME_LENGTH = 24


class EchoResource(WebSocketResource):
    """
    Send every text and binary message back to the client that sent it.
    """

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        """
        Echo a text message.
        """
        client.writeText(message)

    def receivedBinary(self, client: IWebSocketClient, message: bytes) -> None:
        """
        Echo a binary message.
        """
        client.writeBinary(message)


class ChatResource(WebSocketResource):
    """
    A chat room: each text message goes to every member, through the hub
    (which frames it once for all of a process's members), with notices
    when members join and leave.

    @ivar members: each client connected here, and its name, in order of
        arrival.
    @ivar hub: the L{IHub} the room publishes through.
    """

    def __init__(self, hub: IHub | None = None) -> None:
        """
        @param hub: the hub to publish through; a L{LocalHub} of its own
            (a room of this process) when C{None}.
        """
        self.members: dict[IWebSocketClient, str] = {}
        self.hub = hub if hub is not None else LocalHub()
        self._guests = 0

    def clientConnected(self, client: IWebSocketClient) -> None:
        """
        Name the newcomer, tell it who is here, and announce it.
        """
        name = self._uniqueName(_requestedName(client.queryString))
        others = list(self.members.values())
        self.members[client] = name
        self.hub.subscribe(_channel(client), client)
        client.writeText(_event("welcome", name=name, members=others))
        self._announce(client, "join", name=name, count=len(self.members))

    def clientDisconnected(self, client: IWebSocketClient) -> None:
        """
        Announce that a member left.  (Its hub subscription ends by itself,
        once this returns: see L{IHub.subscribe}.)
        """
        name = self.members.pop(client, None)
        if name is not None:
            self._announce(client, "leave", name=name, count=len(self.members))

    def receivedText(self, client: IWebSocketClient, message: str) -> Deferred[None]:
        """
        Relay a member's message to every member, the sender included.

        @return: a Deferred firing once the hub has taken the message, so
            that a member's messages are taken one at a time.
        """
        return self._announce(
            client, "message", name=self.members[client], text=message
        )

    def receivedBinary(self, client: IWebSocketClient, message: bytes) -> None:
        """
        Refuse binary messages: the room speaks text (RFC 6455 7.4.1, 1003).
        """
        client.close(CloseCode.UNSUPPORTED_DATA, "the chat speaks text")

    def _announce(
        self, client: IWebSocketClient, kind: str, **fields: Any
    ) -> Deferred[None]:
        published = self.hub.publish(_channel(client), _event(kind, **fields))
        # The hub logged a failure, and the members here got the message:
        # the room goes on.
        return published.addErrback(_published)

    def _uniqueName(self, wanted: str) -> str:
        if not wanted:
            self._guests += 1
            wanted = f"guest-{self._guests}"
        taken = set(self.members.values())
        name, suffix = wanted, 1
        while name in taken:
            suffix += 1
            name = f"{wanted}-{suffix}"
        return name


def _channel(client: IWebSocketClient) -> str:
    """
    The hub channel of a client's room: one per path, so that rooms at
    different paths stay apart, and a path is the same room everywhere.
    """
    return f"chat:{client.resourceName}"


def _published(failure: Failure) -> None:
    return None


def _requestedName(queryString: str | None) -> str:
    """
    The C{name} query parameter, cleaned: printable, stripped, cut short.
    """
    values = parse_qs(queryString or "").get("name", [""])
    name = "".join(ch for ch in values[0] if ch.isprintable()).strip()
    return name[:MAX_NAME_LENGTH]


def _event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, ensure_ascii=False)


class DemoPage(Resource):
    """
    The demo page: one self-contained HTML file with its CSS and JavaScript
    (no build step, nothing fetched from elsewhere).  With C{?selftest=1}
    the page exchanges echo and chat messages by itself and writes the
    outcome into its C{#selftest} element.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # mypy#16653
        self.page = files("txclws").joinpath("demo.html").read_bytes()

    def render_GET(self, request: Request) -> bytes:
        """
        Serve the page.
        """
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        return self.page

    render_HEAD = render_GET


def demoResources(hub: IHub | None = None) -> dict[str, IWebSocketResource]:
    """
    The demo's WebSocket resources, by path: C{/echo} and C{/chat}.

    @param hub: the chat's hub; see L{ChatResource}.
    """
    return {"/echo": EchoResource(), "/chat": ChatResource(hub)}


def makeDemoRoot(
    factory: WebSocketFactory | None = None,
    originCheck: OriginCheck = anyOrigin,
    hub: IHub | None = None,
) -> Resource:
    """
    The demo's resource tree: the page at C{/}, L{EchoResource} at
    C{/echo} and L{ChatResource} at C{/chat}.

    @param factory: the limits (and client count) the WebSocket resources
        share; the defaults when C{None}.
    @param originCheck: the origin policy of both WebSocket resources.
    @param hub: the chat's hub; see L{ChatResource}.
    """
    if factory is None:
        factory = WebSocketFactory(ResourceRegistry())
    root = Resource()
    root.putChild(b"", DemoPage())
    for path, resource in demoResources(hub).items():
        mountWebSocket(root, path, resource, originCheck, factory)
    return root


def makeDemoSite(
    factory: WebSocketFactory | None = None,
    originCheck: OriginCheck = anyOrigin,
    hub: IHub | None = None,
) -> Site:
    """
    A C{twisted.web} site serving the demo; see L{makeDemoRoot}.
    """
    return Site(makeDemoRoot(factory, originCheck, hub))
