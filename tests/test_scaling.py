"""
Scaling out: txclws processes sharing a real Redis through C{--hub
redis://...}.  Chat members connected to different processes (two daemons;
two workers of one daemon) exchange messages and see each other's join and
leave notices.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection

from tests._daemon import WAIT, Daemon, connect
from tests._redis import RedisServer

LOCAL = "tcp:0:interface=127.0.0.1"

#: The Redis channel of the demo room at /chat (database 0).
CHAT_CHANNEL = "txclws:0:chat:/chat"

#: Redis subscriber connections logged by a hub once connected.
HUB_READY = r"hub: connected to Redis at 127\.0\.0\.1:\d+ \(subscriber\)"


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """
    A C{redis-server} for this module's daemons.
    """
    server = RedisServer()
    server.start()
    yield server
    server.close()


def chatEvents(client: ClientConnection, count: int) -> list[dict[str, Any]]:
    """
    The next C{count} chat events C{client} receives.
    """
    return [json.loads(client.recv(WAIT)) for _ in range(count)]


def waitForEvent(
    client: ClientConnection, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """
    Read chat events until one is C{wanted} (skipping others: notices
    about other members), and return it.
    """
    for _ in range(100):
        (event,) = chatEvents(client, 1)
        if wanted(event):
            return event
    raise AssertionError("the event never came")


def test_chatAcrossDaemons(redis: RedisServer) -> None:
    """
    Two demo daemons on one Redis: a member of each sees the other's join,
    both see each other's messages (with the same id), and the one left
    sees the other's leave; welcomes and counts are the room's across both
    daemons (presence is shared).
    """
    with (
        Daemon("--port", LOCAL, "--hub", redis.url()) as east,
        Daemon("--port", LOCAL, "--hub", redis.url()) as west,
    ):
        east.waitForLog(HUB_READY)
        west.waitForLog(HUB_READY)
        with connect(east.url("/chat?name=ann")) as ann:
            assert chatEvents(ann, 2) == [
                {"type": "welcome", "name": "ann", "members": []},
                {"type": "join", "name": "ann", "count": 1},
            ]
            redis.waitForSubscribers(CHAT_CHANNEL, 1)
            with connect(west.url("/chat?name=bob")) as bob:
                assert chatEvents(bob, 2) == [
                    {"type": "welcome", "name": "bob", "members": ["ann"]},
                    {"type": "join", "name": "bob", "count": 2},
                ]
                assert chatEvents(ann, 1) == [
                    {"type": "join", "name": "bob", "count": 2}
                ]
                redis.waitForSubscribers(CHAT_CHANNEL, 2)
                for sender, name in ((ann, "ann"), (bob, "bob")):
                    sender.send(f"hello from {name}")
                    (message,) = chatEvents(ann, 1)
                    assert message == {
                        "type": "message",
                        "name": name,
                        "text": f"hello from {name}",
                        "id": message["id"],
                    }
                    assert chatEvents(bob, 1) == [message]
            assert chatEvents(ann, 1) == [{"type": "leave", "name": "bob", "count": 1}]
        redis.waitForSubscribers(CHAT_CHANNEL, 0)


def joinChat(daemon: Daemon, name: str) -> tuple[int, ClientConnection]:
    """
    Join the test chat (L{tests.scaling_resources.WorkerChat}) as C{name}:
    the pid of the worker serving the member, and its connection.
    """
    client = connect(daemon.url(f"/chat?name={name}"), legacy=True)
    (worker,) = chatEvents(client, 1)
    assert worker["type"] == "worker"
    return worker["pid"], client


def test_chatAcrossWorkers(redis: RedisServer) -> None:
    """
    C{--workers 2 --hub redis://...}: members served by different workers
    of one daemon chat with each other, as two browsers would.
    """
    with Daemon(
        "--port",
        LOCAL,
        "--workers",
        "2",
        "--hub",
        redis.url(),
        "--resource",
        "/chat=tests.scaling_resources.WorkerChat",
    ) as daemon:
        daemon.waitForLog(HUB_READY, count=2)
        annPid, ann = joinChat(daemon, "ann")
        redis.waitForSubscribers(CHAT_CHANNEL, 1)
        for attempt in range(200):
            bobPid, bob = joinChat(daemon, f"bob{attempt}")
            if bobPid != annPid:
                break
            bob.close()  # the same worker as ann: try again
        else:
            raise AssertionError("every connection went to ann's worker")
        bobName = f"bob{attempt}"
        waitForEvent(ann, lambda e: e == {"type": "join", "name": bobName, "count": 2})
        redis.waitForSubscribers(CHAT_CHANNEL, 2)
        ann.send("hi from worker one")
        message = waitForEvent(bob, lambda e: e["type"] == "message")
        assert message == {
            "type": "message",
            "name": "ann",
            "text": "hi from worker one",
            "id": message["id"],
        }
        bob.send("hi from worker two")
        waitForEvent(
            ann,
            lambda e: (
                e.get("type") == "message"
                and (e["name"], e["text"]) == (bobName, "hi from worker two")
            ),
        )
        bob.close()
        waitForEvent(ann, lambda e: e == {"type": "leave", "name": bobName, "count": 1})
        ann.close()
