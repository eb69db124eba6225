# -*- test-case-name: tests.test_testing,tests.test_daemon -*-
"""
The demo that C{twistd clws} serves when no resource is named: an echo
resource at C{/echo}, a chat room at C{/chat}, and at C{/} a page that
talks to both, all on one port through L{txclws.web}.

The chat speaks JSON text messages, one object each::

    {"type": "welcome", "name": "alice", "members": ["bob"]}  (to the joiner)
    {"type": "reset"}                     (to a joiner whose since is too old)
    {"type": "join", "name": "alice", "count": 2}             (to everyone)
    {"type": "message", "name": "alice", "text": "hello",
     "id": "1700000000000-0"}                                 (to everyone)
    {"type": "leave", "name": "alice", "count": 1}            (to the others)

A client sends plain text; its name comes from the query string
(C{ws://host/chat?name=alice}), or is made up.  A client that reconnects
with C{?since=ID} (the C{id} of the last message it saw) first gets, after
its welcome, every message after it that the room still keeps, in order
and exactly once, then the live ones; or C{reset} when the room no longer
keeps what came after C{ID}.  Ids are C{"A-B"} with decimal A and B:
within a room, compare them as the pair C{(A, B)}.

The room's messages and presence go through an L{IHub}, on the channel
C{chat:PATH}: a L{LocalHub} of its own by default, or the daemon's
C{--hub}.  With a shared hub (L{txclws.redishub.RedisHub}) members
connected to different processes chat with each other, the welcome's
C{members} lists the members of every process (before the joiner), and
the C{count}s are the room's across every process.  Names are made unique
within a process only.

@since: 0.1.0
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from txclws._broadcast import writeToClientsText
from txclws._core.frames import CloseCode
from txclws._core.origin import OriginCheck, anyOrigin
from txclws._factory import ResourceRegistry, WebSocketFactory
from txclws._history import HistoryPolicy
from txclws._hub import IHub, LocalHub
from txclws._presence import PresenceChange
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

#: How many messages a room keeps for members who reconnect.
HISTORY_SIZE = 1000


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
    when members join and leave.  The room keeps its last messages (the
    hub's history), so that a member who reconnects with C{?since=ID}
    misses nothing; who is present comes from the hub's presence, across
    every process sharing it.

    @ivar members: each client connected here, and its name, in order of
        arrival.
    @ivar hub: the L{IHub} the room publishes through.
    @ivar history: what each room keeps.
    """

    def __init__(
        self, hub: IHub | None = None, historySize: int = HISTORY_SIZE
    ) -> None:
        """
        @param hub: the hub to publish through; a L{LocalHub} of its own
            (a room of this process) when C{None}.
        @param historySize: how many messages each room keeps for members
            who reconnect.
        """
        self.members: dict[IWebSocketClient, str] = {}
        self.hub = hub if hub is not None else LocalHub()
        self.history = HistoryPolicy(size=historySize, stamp=stampMessage)
        self._rooms: set[str] = set()
        self._guests = 0

    def clientConnected(self, client: IWebSocketClient) -> None:
        """
        Name the newcomer, tell it who is here, send what it missed since
        C{?since=ID} (or C{reset}), subscribe it, and announce it.
        """
        channel = self._room(client)
        name = self._uniqueName(_requestedName(client.queryString))
        self.members[client] = name
        self._others(channel, client).addCallback(self._welcome, client, channel, name)

    def _others(self, channel: str, client: IWebSocketClient) -> Deferred[list[str]]:
        """
        The names of the room's members, in every process; this process's
        when the hub cannot tell (Redis is down).
        """
        others: Deferred[list[str]] = Deferred()
        self.hub.presence(channel).addCallbacks(
            lambda found: others.callback([m.identity for m in found]),
            lambda _: others.callback(
                [n for c, n in self.members.items() if c is not client]
            ),
        )
        return others

    def _welcome(
        self, others: list[str], client: IWebSocketClient, channel: str, name: str
    ) -> Deferred[None] | None:
        if client not in self.members:
            return None  # gone meanwhile
        client.writeText(_event("welcome", name=name, members=others))
        since = _queryValue(client.queryString, "since") or None
        subscribed = self.hub.subscribe(channel, client, since)
        return subscribed.addCallback(self._subscribed, client, channel, name)

    def _subscribed(
        self, complete: bool, client: IWebSocketClient, channel: str, name: str
    ) -> None:
        if client not in self.members:
            return
        if not complete:
            client.writeText(_event("reset"))
        self.hub.join(channel, client, name).addErrback(_published)

    def clientDisconnected(self, client: IWebSocketClient) -> None:
        """
        Forget a member.  (Its hub subscription and presence end by
        themselves, once this returns, and the others hear it leave: see
        L{IHub.subscribe} and L{IHub.join}.)
        """
        self.members.pop(client, None)

    def receivedText(self, client: IWebSocketClient, message: str) -> Deferred[None]:
        """
        Relay a member's message to every member, the sender included; the
        hub keeps it and stamps it with its C{id}.

        @return: a Deferred firing once the hub has taken the message, so
            that a member's messages are taken one at a time.
        """
        fields = {"type": "message", "name": self.members[client], "text": message}
        published = self.hub.publish(_channel(client), json.dumps(fields))
        # The hub logged a failure: the room goes on.
        return published.addCallbacks(_published, _published)

    def receivedBinary(self, client: IWebSocketClient, message: bytes) -> None:
        """
        Refuse binary messages: the room speaks text (RFC 6455 7.4.1, 1003).
        """
        client.close(CloseCode.UNSUPPORTED_DATA, "the chat speaks text")

    def _room(self, client: IWebSocketClient) -> str:
        """
        The channel of C{client}'s room, kept and observed from its first
        member on.
        """
        channel = _channel(client)
        if channel not in self._rooms:
            self._rooms.add(channel)
            self.hub.keepHistory(channel, self.history)
            self.hub.observePresence(channel, self._presenceChanged)
        return channel

    def _presenceChanged(self, change: PresenceChange) -> None:
        kind = "join" if change.joined else "leave"
        event = _event(kind, name=change.member.identity, count=change.count)
        # Only this room's members: other resources may share the hub.
        here = [c for c in self.hub.subscribers(change.channel) if c in self.members]
        writeToClientsText(here, event)

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


def stampMessage(position: str, message: str | bytes) -> str | bytes:
    """
    A chat C{message} event with its C{id}: the position goes in as the
    last field (the event is a JSON object the room made itself).
    """
    if not isinstance(message, str) or not message.endswith("}"):
        return message
    return f'{message[:-1]}, "id": "{position}"}}'


def _channel(client: IWebSocketClient) -> str:
    """
    The hub channel of a client's room: one per path, so that rooms at
    different paths stay apart, and a path is the same room everywhere.
    """
    return f"chat:{client.resourceName}"


def _published(result: object) -> None:
    return None


def _requestedName(queryString: str | None) -> str:
    """
    The C{name} query parameter, cleaned: printable, stripped, cut short.
    """
    value = _queryValue(queryString, "name")
    name = "".join(ch for ch in value if ch.isprintable()).strip()
    return name[:MAX_NAME_LENGTH]


def _queryValue(queryString: str | None, name: str) -> str:
    """
    The first value of query parameter C{name}, or C{""}.
    """
    return parse_qs(queryString or "").get(name, [""])[0]


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
        Resource.__init__(self)
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
