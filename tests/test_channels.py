"""
Channels across processes (issue 18), with real C{twistd clws} daemons
sharing a real C{redis-server} through C{--hub redis://...}, spoken to with
the demo chat's protocol: presence across three processes, its expiry
when a process is killed, resume after a dropped connection with nothing
lost or duplicated, C{reset} once the history no longer reaches back, and
Redis restarted in the middle of traffic.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from websockets.sync.client import ClientConnection

from tests._daemon import WAIT, Daemon, connect
from tests._redis import RedisServer
from txclws._history import positionKey

LOCAL = "tcp:0:interface=127.0.0.1"

#: The presence timeout the daemons here run with, in seconds.
PRESENCE_TIMEOUT = 2.0

#: What each hub logs once both of its connections are up.
READY = [
    r"hub: connected to Redis at 127\.0\.0\.1:\d+ \(publisher\)",
    r"hub: connected to Redis at 127\.0\.0\.1:\d+ \(subscriber\)",
]

Event = dict[str, Any]


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """
    A C{redis-server} for this module's daemons, whose streams are trimmed
    in nodes of 2 entries (so that C{MAXLEN ~ 3} keeps about 3).
    """
    server = RedisServer()
    server.start()
    server.command("CONFIG", "SET", "stream-node-max-entries", "2")
    yield server
    server.close()


def daemons(
    stack: ExitStack, redis: RedisServer, count: int, *extra: str
) -> list[Daemon]:
    """
    C{count} demo daemons on C{redis} (with L{PRESENCE_TIMEOUT}), ready.
    """
    url = f"{redis.url()}?presence-timeout={PRESENCE_TIMEOUT}"
    started = [
        stack.enter_context(Daemon("--port", LOCAL, "--hub", url, *extra))
        for _ in range(count)
    ]
    for daemon in started:
        for pattern in READY:
            daemon.waitForLog(pattern)
    return started


def nextEvent(client: ClientConnection, timeout: float = WAIT) -> Event:
    """
    The next chat event C{client} receives.
    """
    event: Event = json.loads(client.recv(timeout))
    return event


def waitFor(client: ClientConnection, wanted: Callable[[Event], bool]) -> Event:
    """
    Read events until one is C{wanted}, and return it.
    """
    for _ in range(1000):
        event = nextEvent(client)
        if wanted(event):
            return event
    raise AssertionError("the event never came")


def join(
    daemon: Daemon, name: str, since: str | None = None
) -> tuple[ClientConnection, Event]:
    """
    Join the chat as C{name}: the connection, and its welcome, once its
    own join notice came (it is then subscribed and present).
    """
    query = f"/chat?name={name}" + (f"&since={since}" if since else "")
    client = connect(daemon.url(query), legacy=True)
    welcome = nextEvent(client)
    assert welcome["type"] == "welcome", welcome
    return client, welcome


def joined(client: ClientConnection, name: str) -> list[Event]:
    """
    The events before C{name}'s own join notice (a resume's messages),
    read up to it.
    """
    before = []
    for _ in range(10_000):
        event = nextEvent(client)
        if event == {"type": "join", "name": name, "count": event.get("count")}:
            return before
        before.append(event)
    raise AssertionError("no join notice")


def messages(events: list[Event]) -> list[Event]:
    """
    The C{message} events of C{events}.
    """
    return [e for e in events if e["type"] == "message"]


def test_presenceAcrossThreeDaemons(redis: RedisServer) -> None:
    """
    Members on three daemons: each newcomer's welcome lists the members on
    every daemon, each join reaches the members of every daemon with the
    room's count, and a leave too.
    """
    with ExitStack() as stack:
        east, west, north = daemons(stack, redis, 3)
        ann, welcome = join(east, "ann")
        assert welcome["members"] == []
        joined(ann, "ann")
        bob, welcome = join(west, "bob")
        assert welcome["members"] == ["ann"]
        joined(bob, "bob")
        cy, welcome = join(north, "cy")
        assert sorted(welcome["members"]) == ["ann", "bob"]
        joined(cy, "cy")
        assert joined(ann, "bob") == []
        assert nextEvent(ann) == {"type": "join", "name": "cy", "count": 3}
        assert nextEvent(bob) == {"type": "join", "name": "cy", "count": 3}
        bob.close()
        for member in (ann, cy):
            waitFor(member, lambda e: e == {"type": "leave", "name": "bob", "count": 2})
        dee, welcome = join(west, "dee")
        assert sorted(welcome["members"]) == ["ann", "cy"]
        for client in (ann, cy, dee):
            client.close()


def test_presenceExpiresAfterSIGKILL(redis: RedisServer) -> None:
    """
    A daemon killed with SIGKILL says nothing; its members are gone from
    the welcome of newcomers within the presence timeout, and the others
    hear them leave within 1.25 times it (the next heartbeat's sweep).
    """
    with ExitStack() as stack:
        east, west = daemons(stack, redis, 2)
        ann, _ = join(east, "ann")
        joined(ann, "ann")
        bob, _ = join(west, "bob")
        joined(bob, "bob")
        waitFor(ann, lambda e: e.get("name") == "bob" and e["type"] == "join")
        os.killpg(west.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        left = waitFor(ann, lambda e: e["type"] == "leave")
        elapsed = time.monotonic() - killed
        assert left == {"type": "leave", "name": "bob", "count": 1}
        assert elapsed < PRESENCE_TIMEOUT * 1.25 + 1.0, elapsed
        cy, welcome = join(east, "cy")
        assert welcome["members"] == ["ann"]
        for client in (ann, cy, bob):
            client.close()


class Sender(threading.Thread):
    """
    A member that sends numbered messages as fast as they come back to it
    (each is published, kept and delivered before the next goes), until
    stopped; it notes what came back (acknowledged) with its id.
    """

    def __init__(self, daemon: Daemon, name: str, pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.client, _ = join(daemon, name)
        joined(self.client, name)
        self.name_ = name
        self.pause = pause
        self.acknowledged: list[Event] = []
        self.failed = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.stopping.is_set():
            number += 1
            text = f"{self.name_} {number}"
            self.client.send(text)
            try:
                event = waitForOwn(self.client, text)
            except TimeoutError:
                self.failed += 1  # not kept: Redis was away
                continue
            self.acknowledged.append(event)
            time.sleep(self.pause)

    def stop(self) -> list[Event]:
        self.stopping.set()
        self.join(WAIT)
        self.client.close()
        return self.acknowledged


def waitForOwn(client: ClientConnection, text: str, timeout: float = 1.0) -> Event:
    """
    Wait up to C{timeout} seconds for the message C{text} to come back.
    """
    deadline = time.monotonic() + timeout
    while True:
        event = nextEvent(client, max(deadline - time.monotonic(), 0.001))
        if event["type"] == "message" and event["text"] == text:
            return event


def assertInOrderOnce(events: list[Event]) -> None:
    """
    Messages' ids strictly increase: none twice, none out of order.
    """
    keys = [positionKey(e["id"]) for e in messages(events)]
    assert keys == sorted(set(keys)), "a message twice or out of order"


def drain(client: ClientConnection, quiet: float = 0.5) -> list[Event]:
    """
    Every event C{client} receives until none came for C{quiet} seconds.
    """
    events = []
    while True:
        try:
            events.append(nextEvent(client, quiet))
        except TimeoutError:
            return events


def test_resumeAfterDroppedConnection(redis: RedisServer) -> None:
    """
    While messages keep coming, a member's connection drops (reset, no
    close handshake); it reconnects, to the other daemon, with the id of
    the last message it saw, and gets every message after it exactly
    once and in order, then the live ones: its messages are exactly what
    a member that stayed connected got.
    """
    with ExitStack() as stack:
        east, west = daemons(stack, redis, 2)
        stayer, _ = join(east, "stayer")
        joined(stayer, "stayer")
        dropper, _ = join(east, "dropper")
        joined(dropper, "dropper")
        sender = Sender(west, "sender", pause=0.002)
        sender.start()
        seen = messages([waitFor(dropper, lambda e: e["type"] == "message")])
        for _ in range(20):
            seen += messages([nextEvent(dropper)])
        dropper.socket.shutdown(2)  # the connection drops, no close frame
        time.sleep(0.3)  # messages go on meanwhile
        since = seen[-1]["id"]
        again, _ = join(west, "dropper", since=since)
        resumed = joined(again, "dropper")
        time.sleep(0.3)
        acknowledged = sender.stop()
        resumed += drain(again)
        got = messages(seen) + messages(resumed)
        assertInOrderOnce(got)
        reference = [e for e in messages(drain(stayer)) if e["name"] == "sender"]
        assert [e["id"] for e in got] == [e["id"] for e in reference]
        assert [e["id"] for e in got] == [e["id"] for e in acknowledged]
        assert len(got) > len(seen) + 10
        for client in (stayer, again):
            client.close()


def test_tooOldAfterTheWindow(redis: RedisServer) -> None:
    """
    A room keeping 3 messages (C{MAXLEN ~ 3}): a member resuming from a
    message long trimmed gets C{reset} after its welcome and nothing from
    the history; one resuming from a recent one gets what followed; an id
    that is not one gets C{reset}.
    """
    with ExitStack() as stack:
        (east,) = daemons(
            stack, redis, 1, "--resource", "/chat=tests.scaling_resources.ShortChat"
        )
        ann, _ = join(east, "ann")
        joined(ann, "ann")
        sent = []
        for number in range(30):
            ann.send(f"m{number}")
            sent.append(waitFor(ann, lambda e: e["type"] == "message"))
        for since in (sent[0]["id"], "1-1", "junk"):
            old, _ = join(east, "old", since=since)
            # The previous "old" may still be announced leaving: presence
            # events are not part of the resume.
            notPresence = lambda e: e["type"] not in ("join", "leave")  # noqa: E731
            assert waitFor(old, notPresence) == {"type": "reset"}
            assert messages(joined(old, "old")) == []
            old.close()
        recent, _ = join(east, "recent", since=sent[-3]["id"])
        assert messages(joined(recent, "recent")) == sent[-2:]
        for client in (ann, recent):
            client.close()


def test_redisRestartedMidTraffic() -> None:
    """
    Redis (keeping its data: an append-only file) is restarted while a
    member on one daemon sends as fast as its messages come back, to a
    member on another: publishes fail while it is away, and afterwards the
    member that stayed has every acknowledged message exactly once, in
    order (what it missed live while the hubs reconnected it got from the
    history), and so does a member resuming from the first id.  Presence
    is rebuilt: a newcomer's welcome lists the member present.
    """
    redis = RedisServer(persistent=True)
    redis.start()
    try:
        with ExitStack() as stack:
            east, west = daemons(stack, redis, 2)
            stayer, _ = join(east, "stayer")
            joined(stayer, "stayer")
            sender = Sender(west, "sender", pause=0.001)
            sender.start()
            first = waitFor(stayer, lambda e: e["type"] == "message")
            time.sleep(0.5)
            redis.stop()
            time.sleep(1.0)
            redis.start()
            for daemon in (east, west):
                for pattern in READY:
                    daemon.waitForLog(pattern, count=2)
            time.sleep(1.0)
            acknowledged = sender.stop()
            got = [first, *messages(drain(stayer))]
            assertInOrderOnce(got)
            gotIds = [e["id"] for e in got]
            ids = [e["id"] for e in acknowledged]
            # Every acknowledged message, and maybe some whose
            # acknowledgement came too late for the sender (kept as Redis
            # went away): at least once for a publisher, never twice.
            assert set(ids) <= set(gotIds)
            texts = [e["text"] for e in got]
            assert len(set(texts)) == len(texts)
            assert all(text.startswith("sender ") for text in texts)
            assert sender.failed >= 1 and len(ids) > 20
            late, welcome = join(west, "late", since=first["id"])
            assert welcome["members"] == ["stayer"]
            assert [e["id"] for e in messages(joined(late, "late"))] == gotIds[1:]
            for client in (stayer, late):
                client.close()
    finally:
        redis.close()


def test_redisLostItsData() -> None:
    """
    Redis restarted without its data: a member resuming from before gets
    C{reset}, never a silent gap.
    """
    redis = RedisServer()
    redis.start()
    try:
        with ExitStack() as stack:
            (east,) = daemons(stack, redis, 1)
            ann, _ = join(east, "ann")
            joined(ann, "ann")
            ann.send("before")
            before = waitFor(ann, lambda e: e["type"] == "message")
            redis.stop()
            redis.start()
            east.waitForLog(READY[0], count=2)
            east.waitForLog(READY[1], count=2)
            bob, _ = join(east, "bob", since=before["id"])
            assert nextEvent(bob) == {"type": "reset"}
            for client in (ann, bob):
                client.close()
    finally:
        redis.close()


# -- in one process: two RedisHubs on the module's Redis ---------------------


@pytest_twisted.ensureDeferred
async def test_heldSubscriberSkipsLiveKept(redis: RedisServer) -> None:
    """
    A subscriber resuming on a L{RedisHub} while kept messages arrive live
    (its history read held back until they did) gets each once, in order:
    live kept messages skip it until the read is delivered.
    """
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    from tests.test_hub import clients, messagesOf, waitUntil
    from txclws import HistoryPolicy
    from txclws.redishub import RedisHub

    hubs = [RedisHub("127.0.0.1", redis.port, retryDelay=0.05) for _ in range(2)]
    for hub in hubs:
        hub.startService()
        hub.keepHistory("held", HistoryPolicy())
    try:
        await waitUntil(lambda: all(h.connected for h in hubs), "connected")
        first = await hubs[0].publish("held", "m1")
        release: Deferred[None] = Deferred()
        read = hubs[1]._history.catchUp._read

        def slowRead(channel: str, since: str) -> Any:
            return release.addCallback(lambda _: read(channel, since))

        hubs[1]._history.catchUp._read = slowRead
        (ann,) = clients(1)
        resumed = hubs[1].subscribe("held", ann.protocol, since=first)
        await waitUntil(lambda: hubs[1]._pubsub.isConfirmed("held"), "subscribed")
        await hubs[0].publish("held", "m2")
        await hubs[0].publish("held", "m3")
        await deferLater(reactor, 0.2, lambda: None)  # heard live by now
        assert ann.readMessages() == []
        release.callback(None)
        assert await resumed is True
        assert await messagesOf(ann, 2) == ["m2", "m3"]
        await hubs[0].publish("held", "m4")
        assert await messagesOf(ann, 1) == ["m4"]
        assert ann.readMessages() == []
    finally:
        for hub in hubs:
            await hub.stopService()
