"""
Hubs: L{LocalHub} with in-memory clients, L{RedisHub} between two hubs (as
two processes would have) on a real C{redis-server}, the chat demo on a
hub, and C{--hub}.
"""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python import usage
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests._redis import RedisServer
from tests.conftest import WAIT
from txclws import (
    REJECT,
    HubUnavailable,
    IHub,
    IWebSocketClient,
    LocalHub,
    WebSocketResource,
)
from txclws._core.connection import WebSocketConnection
from txclws.demo import ChatResource
from txclws.redishub import RedisHub
from txclws.tap import Options
from txclws.testing import InMemoryClient, InMemoryServer


def clients(count: int) -> list[InMemoryClient]:
    """
    C{count} in-memory clients of a resource that does nothing.
    """
    server = InMemoryServer()
    server.register("/x", WebSocketResource())
    return [server.connect("/x") for _ in range(count)]


@pytest.fixture
def frames(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """
    Counts the messages framed for RFC 6455 clients (one entry each).
    """
    framed: list[int] = []
    frameMessage = WebSocketConnection.frameMessage

    def counting(self: WebSocketConnection, *args: Any, **kwargs: Any) -> Any:
        framed.append(1)
        return frameMessage(self, *args, **kwargs)

    monkeypatch.setattr(WebSocketConnection, "frameMessage", counting)
    return framed


# -- LocalHub --------------------------------------------------------------


def test_interfaces() -> None:
    """
    Both hubs provide L{IHub}.
    """
    assert verifyObject(IHub, LocalHub())
    assert verifyObject(IHub, RedisHub())


def test_localPublishToChannel() -> None:
    """
    A message reaches the subscribers of its channel, text as text and
    bytes as binary, and nobody else; the Deferred has fired.
    """
    hub = LocalHub()
    ann, bob, cy = clients(3)
    for client in (ann, bob):
        hub.subscribe("room", client.protocol)
    hub.subscribe("other", cy.protocol)
    published = hub.publish("room", "héllo")
    assert published.called and published.result is None
    hub.publish("room", b"\x00\xff")
    assert ann.readMessages() == bob.readMessages() == ["héllo", b"\x00\xff"]
    assert cy.readMessages() == []
    assert hub.subscribers("room") == [ann.protocol, bob.protocol]


def test_localSubscribeTwiceOnce() -> None:
    """
    Subscribing twice is subscribing once: one copy of each message.
    """
    hub = LocalHub()
    (ann,) = clients(1)
    hub.subscribe("room", ann.protocol)
    hub.subscribe("room", ann.protocol)
    hub.publish("room", "once")
    assert ann.readMessages() == ["once"]


def test_localUnsubscribe() -> None:
    """
    C{unsubscribe} drops a client from one channel; C{unsubscribeAll} from
    every one, and the emptied channels are gone.
    """
    hub = LocalHub()
    ann, bob = clients(2)
    for channel in ("a", "b"):
        hub.subscribe(channel, ann.protocol)
        hub.subscribe(channel, bob.protocol)
    hub.unsubscribe("a", ann.protocol)
    hub.unsubscribe("a", ann.protocol)  # again: nothing happens
    hub.publish("a", "to a")
    assert ann.readMessages() == []
    assert bob.readMessages() == ["to a"]
    hub.unsubscribeAll(bob.protocol)
    hub.publish("a", "nobody")
    hub.publish("b", "to b")
    assert ann.readMessages() == ["to b"]
    assert bob.readMessages() == []
    assert hub.subscribers("a") == []


def test_localFramedOnce(frames: list[int]) -> None:
    """
    A message to many subscribers is framed once for all of them.
    """
    hub = LocalHub()
    members = clients(4)
    for member in members:
        hub.subscribe("room", member.protocol)
    hub.publish("room", "everyone")
    assert len(frames) == 1
    assert [m.readMessages() for m in members] == [["everyone"]] * 4


def test_localGoneSubscriberSkipped() -> None:
    """
    A subscriber whose connection is gone is skipped, not raised about.
    """
    hub = LocalHub()
    ann, bob = clients(2)
    hub.subscribe("room", ann.protocol)
    hub.subscribe("room", bob.protocol)
    ann.disconnect()
    hub.publish("room", "still")
    assert bob.readMessages() == ["still"]


def test_publishWrongType() -> None:
    """
    Only text and bytes are published; channel names are strings.
    """
    hub = LocalHub()
    (ann,) = clients(1)
    with pytest.raises(TypeError):
        hub.publish("room", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hub.subscribe(b"room", ann.protocol)  # type: ignore[arg-type]


# -- the chat demo on a hub ------------------------------------------------


def chatEvents(client: InMemoryClient) -> list[dict[str, Any]]:
    """
    The chat events C{client} received since the last read.
    """
    return [json.loads(m) for m in client.readMessages()]  # type: ignore[arg-type]


def test_chatRoomsShareAHub() -> None:
    """
    Two chat resources on one hub, as in two processes sharing Redis:
    members of each see the other's joins, messages and leaves, once
    each; the welcome's members and the counts are the hub's (presence is
    shared); messages carry their ids.
    """
    hub = LocalHub()
    servers = [InMemoryServer(), InMemoryServer()]
    for server in servers:
        server.register("/chat", ChatResource(hub))
    ann = servers[0].connect("/chat?name=ann")
    assert chatEvents(ann)[-1] == {"type": "join", "name": "ann", "count": 1}
    bob = servers[1].connect("/chat?name=bob")
    assert chatEvents(bob) == [
        {"type": "welcome", "name": "bob", "members": ["ann"]},
        {"type": "join", "name": "bob", "count": 2},
    ]
    assert chatEvents(ann) == [{"type": "join", "name": "bob", "count": 2}]
    bob.sendText("hi ann")
    (message,) = chatEvents(ann)
    assert chatEvents(bob) == [message]
    assert message == {
        "type": "message",
        "name": "bob",
        "text": "hi ann",
        "id": message["id"],
    }
    bob.sendClose()
    assert chatEvents(ann) == [{"type": "leave", "name": "bob", "count": 1}]
    assert hub.subscribers("chat:/chat") == [ann.protocol]


def test_chatOwnHubByDefault() -> None:
    """
    Without a hub, each chat resource is a room of its own, as it always
    was.
    """
    first, second = InMemoryServer(), InMemoryServer()
    first.register("/chat", ChatResource())
    second.register("/chat", ChatResource())
    ann = first.connect("/chat?name=ann")
    bob = second.connect("/chat?name=bob")
    chatEvents(ann)
    bob.sendText("anyone?")
    assert chatEvents(ann) == []


def test_chatRoomsByPath() -> None:
    """
    Rooms at different paths stay apart on a shared hub.
    """
    hub = LocalHub()
    server = InMemoryServer()
    server.register("/a", ChatResource(hub))
    server.register("/b", ChatResource(hub))
    ann, bob = server.connect("/a?name=ann"), server.connect("/b?name=bob")
    chatEvents(ann)
    bob.sendText("only b")
    assert chatEvents(ann) == []


def test_chatSurvivesFailedPublish() -> None:
    """
    When the hub cannot publish, the room still serves its members here:
    nobody is disconnected, and the members here get the message.
    """

    class Unavailable(LocalHub):
        def publish(self, channel: str, message: str | bytes) -> Deferred[None]:
            super().publish(channel, message)
            failed: Deferred[None] = Deferred()
            failed.errback(HubUnavailable("Redis is down"))
            return failed

    server = InMemoryServer()
    server.register("/chat", ChatResource(Unavailable()))
    ann = server.connect("/chat?name=ann")
    ann.sendText("hello?")
    assert chatEvents(ann)[-1]["text"] == "hello?"
    assert not ann.disconnected


# -- --hub -----------------------------------------------------------------


def parse(*arguments: str) -> Options:
    """
    C{clws} options parsed from C{arguments}.
    """
    config = Options()
    config.parseOptions(list(arguments))
    return config


def test_hubOption() -> None:
    """
    C{--hub local} (the default) is a L{LocalHub}; a redis:// URL a
    L{RedisHub} (not yet connected) with its host, port and database.
    """
    assert isinstance(parse()["hub"], LocalHub)
    assert isinstance(parse("--hub", "local")["hub"], LocalHub)
    hub = parse("--hub", "redis://redis.example:6380/3")["hub"]
    assert isinstance(hub, RedisHub) and not hub.running
    assert (hub.host, hub.port, hub.db) == ("redis.example", 6380, 3)
    hub = parse("--hub", "redis://:s3cret@localhost")["hub"]
    assert (hub.host, hub.port, hub.db, hub._settings.password) == (
        "localhost",
        6379,
        0,
        "s3cret",
    )


@pytest.mark.parametrize(
    "argument",
    ["memcached://x", "redis://h:notaport/0", "redis://h/db", "redis://h/0?x=1"],
)
def test_hubOptionRefused(argument: str) -> None:
    """
    A C{--hub} that is neither C{local} nor a redis:// URL is a usage error.
    """
    with pytest.raises(usage.UsageError, match="--hub"):
        parse("--hub", argument)


def test_hubGivenToResources() -> None:
    """
    The demo, and a C{--resource} class that takes a C{hub} argument, get
    the daemon's hub; a class that takes none is made without it.
    """
    config = parse(
        "--hub",
        "redis://127.0.0.1/0",
        "--resource",
        "/chat=txclws.demo.ChatResource",
        "--resource",
        "/echo=txclws.demo.EchoResource",
    )
    resources = dict(config["resources"])
    assert resources["/chat"].hub is config["hub"]  # type: ignore[attr-defined]


# -- RedisHub on a real Redis ------------------------------------------------


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """
    A C{redis-server} for this module's tests.
    """
    server = RedisServer()
    server.start()
    yield server
    server.close()


async def waitUntil(condition: Callable[[], bool], what: str) -> None:
    """
    Poll C{condition} until it holds, for up to L{WAIT} seconds.
    """
    for _ in range(int(WAIT / 0.02)):
        if condition():
            return
        await deferLater(reactor, 0.02, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


async def messagesOf(client: InMemoryClient, count: int) -> list[str | bytes]:
    """
    The next C{count} messages C{client} receives.
    """
    received: list[str | bytes] = []

    def enough() -> bool:
        received.extend(client.readMessages())
        return len(received) >= count

    await waitUntil(enough, f"{count} messages")
    return received


@pytest_twisted.async_yield_fixture
async def hubs(redis: RedisServer) -> Any:
    """
    Two started L{RedisHub}s on the module's Redis, connected; stopped
    afterwards.
    """
    started = [
        RedisHub("127.0.0.1", redis.port, retryDelay=0.05, maxRetryDelay=0.2)
        for _ in range(2)
    ]
    for hub in started:
        hub.startService()
    try:
        await waitUntil(lambda: all(h.connected for h in started), "hubs connected")
        yield started
    finally:
        for hub in started:
            await hub.stopService()


@pytest_twisted.ensureDeferred
async def test_redisAcrossHubs(hubs: list[RedisHub], redis: RedisServer) -> None:
    """
    What one hub publishes reaches the subscribers of the other, text and
    binary, in order; the publisher's own subscribers get it once, at once.
    """
    first, second = hubs
    (ann,), (bob, cy) = clients(1), clients(2)
    await first.subscribe("room", ann.protocol)
    for client in (bob, cy):
        await second.subscribe("room", client.protocol).addTimeout(WAIT, reactor)
    assert redis.subscribers("txclws:0:room") == 2
    await first.publish("room", "héllo")
    await first.publish("room", b"\x00\xff")
    assert ann.readMessages() == ["héllo", b"\x00\xff"]
    assert await messagesOf(bob, 2) == ["héllo", b"\x00\xff"]
    assert await messagesOf(cy, 2) == ["héllo", b"\x00\xff"]
    # Redis sends the second hub's message to the first after the first's
    # own: by the time it is here, an echo of the first's would be too.
    await second.publish("room", "marker")
    assert await messagesOf(ann, 1) == ["marker"]
    assert ann.readMessages() == []


@pytest_twisted.ensureDeferred
async def test_redisFramedOncePerProcess(
    hubs: list[RedisHub], frames: list[int]
) -> None:
    """
    A message from another process is framed once for all of this
    process's subscribers.
    """
    first, second = hubs
    members = clients(3)
    for member in members:
        await second.subscribe("fanout", member.protocol).addTimeout(WAIT, reactor)
    await first.publish("fanout", "to all three")
    for member in members:
        assert await messagesOf(member, 1) == ["to all three"]
    assert len(frames) == 1


@pytest_twisted.ensureDeferred
async def test_redisChannelsApart(hubs: list[RedisHub], redis: RedisServer) -> None:
    """
    Other channels, and hubs on another database number, hear nothing.
    """
    first, second = hubs
    other = RedisHub("127.0.0.1", redis.port, 1)
    other.startService()
    try:
        (bob, cy, dee) = clients(3)
        await second.subscribe("room", bob.protocol).addTimeout(WAIT, reactor)
        await second.subscribe("elsewhere", cy.protocol).addTimeout(WAIT, reactor)
        await other.subscribe("room", dee.protocol).addTimeout(WAIT, reactor)
        await first.publish("room", "for db 0 room")
        assert await messagesOf(bob, 1) == ["for db 0 room"]
        await other.publish("room", "for db 1 room")
        assert await messagesOf(dee, 1) == ["for db 1 room"]
        await first.publish("room", "again")
        assert await messagesOf(bob, 1) == ["again"]
        assert cy.readMessages() == [] and dee.readMessages() == []
    finally:
        await other.stopService()


@pytest_twisted.ensureDeferred
async def test_redisUnsubscribeLeavesChannel(
    hubs: list[RedisHub], redis: RedisServer
) -> None:
    """
    A process stays subscribed in Redis while the channel has subscribers
    in it; when the last one is dropped (C{unsubscribeAll}, as on
    disconnection) it unsubscribes.
    """
    first, second = hubs
    bob, cy = clients(2)
    for client in (bob, cy):
        await second.subscribe("leaving", client.protocol).addTimeout(WAIT, reactor)
    assert redis.subscribers("txclws:0:leaving") == 1
    second.unsubscribeAll(bob.protocol)
    await first.publish("leaving", "cy only")
    assert await messagesOf(cy, 1) == ["cy only"]
    assert redis.subscribers("txclws:0:leaving") == 1
    second.unsubscribe("leaving", cy.protocol)
    await waitUntil(
        lambda: redis.subscribers("txclws:0:leaving") == 0, "the unsubscription"
    )
    await first.publish("leaving", "nobody")
    assert bob.readMessages() == cy.readMessages() == []


@pytest_twisted.ensureDeferred
async def test_redisDownAndBack(logEvents: Any) -> None:
    """
    Redis stops: publishing fails (the Deferred fails with
    L{HubUnavailable}, and it is logged) while this process's subscribers
    still get the message.  Redis returns: both hubs reconnect, resubscribe
    by themselves, and messages flow between them again.
    """
    server = RedisServer()
    server.start()
    first = RedisHub("127.0.0.1", server.port, retryDelay=0.05, maxRetryDelay=0.2)
    second = RedisHub("127.0.0.1", server.port, retryDelay=0.05, maxRetryDelay=0.2)
    try:
        for hub in (first, second):
            hub.startService()
        ann, bob = clients(2)
        await first.subscribe("room", ann.protocol).addTimeout(WAIT, reactor)
        await second.subscribe("room", bob.protocol).addTimeout(WAIT, reactor)
        await first.publish("room", "before")
        assert await messagesOf(bob, 1) == ["before"]
        assert ann.readMessages() == ["before"]

        server.stop()
        await waitUntil(lambda: not (first.connected or second.connected), "loss")
        with pytest.raises(HubUnavailable):
            await first.publish("room", "during")
        assert ann.readMessages() == ["during"]  # served here all the same
        (failed,) = [
            event
            for event in logEvents
            if event.get("log_namespace") == "txclws.redishub"
            and event.get("log_level").name == "error"
        ]
        assert failed["channel"] == "room" and "not connected" in failed["why"]
        assert "during" not in repr(failed)  # no payload in the log

        server.start()
        await waitUntil(lambda: first.connected and second.connected, "reconnection")
        # bob is still subscribed: this only waits for the hub to have
        # subscribed again by itself.
        await second.subscribe("room", bob.protocol).addTimeout(WAIT, reactor)
        await first.publish("room", "after")
        assert ann.readMessages() == ["after"]
        assert await messagesOf(bob, 1) == ["after"]  # "during" never came
        await second.publish("room", "back")
        assert await messagesOf(ann, 1) == ["back"]
    finally:
        for hub in (first, second):
            await hub.stopService()
        server.close()


# -- subscriptions end with their client (issues 11 and 18) ----------------


class Subscriber(WebSocketResource):
    """
    Subscribes each client to two channels in C{clientConnected}, and
    leaves the rest to the hub: it never calls C{unsubscribeAll}.

    @ivar verdict: what C{clientConnected} returns (L{REJECT} to refuse).
    @ivar seenAtDisconnect: the subscribers of C{a} while
        C{clientDisconnected} runs.
    """

    def __init__(
        self, hub: IHub, verdict: object = None, channels: tuple[str, ...] = ("a", "b")
    ) -> None:
        self.hub = hub
        self.verdict = verdict
        self.channels = channels
        self.seenAtDisconnect: list[list[Any]] = []

    def clientConnected(self, client: Any) -> object:
        for channel in self.channels:
            self.hub.subscribe(channel, client)
        return self.verdict

    def clientDisconnected(self, client: Any) -> None:
        self.seenAtDisconnect.append(self.hub.subscribers("a"))


def endClean(client: InMemoryClient) -> None:
    """
    The client closes cleanly (its close frame, the server's echo).
    """
    client.sendClose()
    assert client.disconnected


def endAbruptly(client: InMemoryClient) -> None:
    """
    The client's connection is reset.
    """
    client.vanish()


ENDINGS = [endClean, endAbruptly]


@pytest.mark.parametrize("end", ENDINGS, ids=["clean", "abrupt"])
def test_localEndsWithClient(end: Callable[[InMemoryClient], None]) -> None:
    """
    A client subscribed to two channels is dropped from both once it
    disconnects, cleanly or not, without its resource asking; the
    resource's C{clientDisconnected} still sees it subscribed (the hub
    acts after it); the other client stays.
    """
    hub = LocalHub()
    resource = Subscriber(hub)
    server = InMemoryServer()
    server.register("/x", resource)
    ann, bob = server.connect("/x"), server.connect("/x")
    assert hub.subscribers("a") == hub.subscribers("b") == [ann.protocol, bob.protocol]
    end(ann)
    assert resource.seenAtDisconnect == [[ann.protocol, bob.protocol]]
    assert hub.subscribers("a") == hub.subscribers("b") == [bob.protocol]
    hub.publish("a", "bob only")
    assert bob.readMessages() == ["bob only"]


def test_localEndsWithRejected() -> None:
    """
    A client its resource subscribed and then REJECTed is dropped from its
    channels once its connection is gone (it never gets
    C{clientDisconnected}).
    """
    hub = LocalHub()
    server = InMemoryServer()
    server.register("/x", Subscriber(hub, REJECT))
    ann = server.connect("/x")
    assert ann.closeCode == 1008 and ann.disconnected
    assert hub.subscribers("a") == hub.subscribers("b") == []


def test_unsubscribeAllStillWorks() -> None:
    """
    C{unsubscribeAll} from C{clientDisconnected}, as resources did, and
    then the hub's own: idempotent, and nothing is left.
    """
    hub = LocalHub()

    class Tidy(Subscriber):
        def clientDisconnected(self, client: Any) -> None:
            hub.unsubscribeAll(client)
            hub.unsubscribeAll(client)

    server = InMemoryServer()
    server.register("/x", Tidy(hub))
    ann = server.connect("/x")
    ann.vanish()
    hub.unsubscribeAll(ann.protocol)
    assert hub.subscribers("a") == hub.subscribers("b") == []
    assert hub._subscriptions.watchedCount == 0


def test_watchedOncePerClient() -> None:
    """
    However often a connected client leaves and joins channels, the hub
    waits on its C{whenDisconnected} once (a long-lived client does not
    pile up waiters), and still drops it when it goes.
    """
    hub = LocalHub()
    (ann,) = clients(1)
    asked: list[Deferred[None]] = []
    whenDisconnected = ann.protocol.whenDisconnected

    def counting() -> Deferred[None]:
        asked.append(whenDisconnected())
        return asked[-1]

    ann.protocol.whenDisconnected = counting
    for _ in range(100):
        hub.subscribe("a", ann.protocol)
        hub.unsubscribeAll(ann.protocol)
    hub.subscribe("a", ann.protocol)
    assert len(asked) == 1
    ann.vanish()
    assert hub.subscribers("a") == []


def test_subscribedAfterGone() -> None:
    """
    A client subscribed once it is gone (say, from C{clientDisconnected})
    is unsubscribed at once.
    """
    hub = LocalHub()
    (ann,) = clients(1)
    ann.vanish()
    hub.subscribe("a", ann.protocol)
    assert hub.subscribers("a") == []


def test_clientWithoutHookNotWatched() -> None:
    """
    An L{IWebSocketClient} of the application's own making, without
    C{whenDisconnected}, can still subscribe; its resource unsubscribes it.
    """

    @implementer(IWebSocketClient)
    class Plain:
        def writeText(self, message: Any, frameSize: int | None = None) -> None:
            pass

    hub = LocalHub()
    plain = Plain()
    hub.subscribe("a", plain)  # type: ignore[arg-type]
    assert hub.subscribers("a") == [plain]
    hub.unsubscribeAll(plain)  # type: ignore[arg-type]
    assert hub.subscribers("a") == []


def test_localNothingLeftAfterManyClients() -> None:
    """
    10,000 clients in turn connect, subscribe to two channels and
    disconnect (every other one abruptly): the hub holds no subscription,
    no watched client and no reference to any of them.
    """
    hub = LocalHub()
    server = InMemoryServer()
    resource = Subscriber(hub)
    server.register("/x", resource)
    sessions: list[weakref.ref[Any]] = []
    for n in range(10_000):
        client = server.connect("/x")
        if n % 2:
            client.vanish()
        else:
            client.sendClose()
        sessions.append(weakref.ref(client.protocol))
        server.clients.clear()
    del client
    assert hub.subscribers("a") == hub.subscribers("b") == []
    assert list(hub._subscriptions.channels()) == []
    assert hub._subscriptions.watchedCount == 0
    assert resource.seenAtDisconnect[-1] == [sessions[-1]()]
    resource.seenAtDisconnect.clear()  # the resource's own references
    gc.collect()
    assert [ref for ref in sessions if ref() is not None] == []


def test_chatNeedsNoUnsubscribe() -> None:
    """
    The chat demo no longer unsubscribes by hand: a member that leaves is
    off the room's channel all the same, and the others hear it leave.
    """
    hub = LocalHub()
    server = InMemoryServer()
    server.register("/chat", ChatResource(hub))
    ann, bob = server.connect("/chat?name=ann"), server.connect("/chat?name=bob")
    assert hub.subscribers("chat:/chat") == [ann.protocol, bob.protocol]
    ann.vanish()
    assert hub.subscribers("chat:/chat") == [bob.protocol]
    assert chatEvents(bob)[-1] == {"type": "leave", "name": "ann", "count": 1}


@pytest.mark.parametrize("ending", ["clean", "abrupt", "rejected"])
@pytest_twisted.ensureDeferred
async def test_redisEndsWithClient(
    hubs: list[RedisHub], redis: RedisServer, ending: str
) -> None:
    """
    On a L{RedisHub}, a client subscribed to two channels is dropped from
    both when it disconnects (cleanly, abruptly, or REJECTed), and this
    process unsubscribes in Redis from the channels it left empty.
    """
    first, _ = hubs
    channels = (f"{ending}-a", f"{ending}-b")
    names = [f"txclws:0:{channel}" for channel in channels]
    server = InMemoryServer()
    verdict = REJECT if ending == "rejected" else None
    server.register("/x", Subscriber(first, verdict, channels))
    ann = server.connect("/x")
    if ending != "rejected":
        await waitUntil(
            lambda: all(redis.subscribers(name) == 1 for name in names), "subscribed"
        )
        (endClean if ending == "clean" else endAbruptly)(ann)
    assert ann.disconnected
    assert [first.subscribers(channel) for channel in channels] == [[], []]
    # Redis answers a connection's commands in order: once a later
    # SUBSCRIBE is confirmed, the UNSUBSCRIBEs before it were done.
    (barrier,) = clients(1)
    await first.subscribe(f"{ending}-barrier", barrier.protocol).addTimeout(
        WAIT, reactor
    )
    assert [redis.subscribers(name) for name in names] == [0, 0]
