"""
Channel history: positions, L{LocalHistory}'s window, resuming on a
L{LocalHub}, and L{CatchUp} (a C{RedisHub}'s catching up) with a reader
the test controls: exactly once when a live message races the read, and
one read for many subscribers.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock as ReactorClock

from txclws import LocalHub, WebSocketResource
from txclws._catchup import CatchUp
from txclws._history import (
    TOO_OLD,
    HistoryPolicy,
    HistoryWindow,
    KeptMessage,
    LocalHistory,
    positionKey,
)
from txclws._hub import Subscriptions
from txclws.testing import InMemoryClient, InMemoryServer

#: The clock the catching up in these tests retries on.
clock = ReactorClock()


def clients(count: int) -> list[InMemoryClient]:
    """
    C{count} in-memory clients of a resource that does nothing.
    """
    server = InMemoryServer()
    server.register("/x", WebSocketResource())
    return [server.connect("/x") for _ in range(count)]


def test_positionKey() -> None:
    """
    Positions compare as pairs of numbers, not as strings; anything else
    is refused.
    """
    assert positionKey("1700000000000-10") > positionKey("1700000000000-9")
    assert positionKey("2-0") > positionKey("1-99")
    for bad in ("", "1", "1-", "-1", "a-1", "1-1-1", " 1-1", "1" * 21 + "-0", 5):
        with pytest.raises(ValueError):
            positionKey(bad)  # type: ignore[arg-type]


def test_policyChecked() -> None:
    """
    A history keeps at least one message, for a positive time.
    """
    for size in (0, -1, 1.5):
        with pytest.raises(ValueError):
            HistoryPolicy(size=size)  # type: ignore[arg-type]
    for age in (0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            HistoryPolicy(maxAge=age)


class Clock:
    """
    A clock the test moves.
    """

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_localHistoryBySize() -> None:
    """
    A local history keeps its last C{size} messages: a position still
    covered gets what followed it; one whose successors were dropped, one
    from another history, one after the last and garbage are too old.
    """
    history = LocalHistory(HistoryPolicy(size=3), Clock())
    kept = [history.append(f"m{n}") for n in range(5)]
    assert [k.position for k in kept] == [f"1000000-{n}" for n in range(1, 6)]
    window = history.window()
    assert [m.message for m in window.after(kept[1].position).messages] == [
        "m2",
        "m3",
        "m4",
    ]
    assert window.after(kept[4].position).messages == ()
    assert window.after(kept[4].position).complete
    for position in (kept[0].position, "999999-2", "1000000-6", "nonsense"):
        assert window.after(position) == TOO_OLD


def test_localHistoryByAge() -> None:
    """
    With C{maxAge}, messages older than that are dropped too.
    """
    clock = Clock()
    history = LocalHistory(HistoryPolicy(size=100, maxAge=10), clock)
    first = history.append("old")
    clock.now += 1
    second = history.append("older than 10 s soon")
    clock.now += 11
    third = history.append("new")
    assert history.window().after(first.position) == TOO_OLD
    assert history.window().after(second.position).messages == (third,)


def test_emptyHistoryTooOld() -> None:
    """
    A history that never kept anything reaches back to no position.
    """
    assert LocalHistory(HistoryPolicy()).window().after("1-1") == TOO_OLD


def stamped(position: str, message: str | bytes) -> str | bytes:
    """
    The message with its position in front.
    """
    return f"{position} {message!s}"


def test_localHubResume() -> None:
    """
    On a L{LocalHub}, a subscriber resuming from a position first gets
    what followed it (stamped), then the live messages, each once; one
    too old gets nothing from the history (C{False}), and live messages.
    """
    hub = LocalHub()
    hub.keepHistory("room", HistoryPolicy(size=3, stamp=stamped))
    positions = [hub.publish("room", f"m{n}").result for n in range(5)]
    ann, bob = clients(2)
    resumed = hub.subscribe("room", ann.protocol, since=positions[2])
    assert resumed.result is True
    assert ann.readMessages() == [f"{positions[3]} m3", f"{positions[4]} m4"]
    tooOld = hub.subscribe("room", bob.protocol, since=positions[0])
    assert tooOld.result is False
    assert bob.readMessages() == []
    live = hub.publish("room", "live").result
    assert ann.readMessages() == bob.readMessages() == [f"{live} live"]
    assert hub.history("room", positions[3]).result.messages == (
        KeptMessage(positions[4], "m4"),
        KeptMessage(live, "live"),
    )
    assert hub.history("elsewhere", positions[3]).result == TOO_OLD


def test_localHubBinaryKept() -> None:
    """
    Binary messages are kept and replayed as binary.
    """
    hub = LocalHub()
    hub.keepHistory("room", HistoryPolicy())
    first = hub.publish("room", b"\x00").result
    hub.publish("room", b"\xff")
    (ann,) = clients(1)
    hub.subscribe("room", ann.protocol, since=first)
    assert ann.readMessages() == [b"\xff"]


class Reader:
    """
    A history reader whose reads the test answers.

    @ivar reads: each read asked for, as C{(channel, since, deferred)}.
    """

    def __init__(self) -> None:
        self.reads: list[tuple[str, str, Deferred[HistoryWindow]]] = []

    def __call__(self, channel: str, since: str) -> Deferred[HistoryWindow]:
        d: Deferred[HistoryWindow] = Deferred()
        self.reads.append((channel, since, d))
        return d


def window(*positions: int, start: int = 1, floor: int = 0) -> HistoryWindow:
    """
    A window of messages C{"m<N>"} at positions C{"1-N"}.
    """
    last = positions[-1] if positions else floor
    return HistoryWindow(
        (1, start),
        (1, floor),
        (1, last),
        tuple(KeptMessage(f"1-{n}", f"m{n}") for n in positions),
    )


def catchUp() -> tuple[Subscriptions, Reader, CatchUp, list[Any]]:
    """
    A L{CatchUp} over fresh subscriptions and a L{Reader}, on the module's
    L{clock}; and what it was told it saw.
    """
    subscriptions = Subscriptions()
    reader = Reader()
    seen: list[Any] = []
    return (
        subscriptions,
        reader,
        CatchUp(
            subscriptions,
            reader,
            lambda channel: HistoryPolicy(),
            lambda *a: seen.append(a),
            clock,
        ),
        seen,
    )


def test_catchUpRaceExactlyOnce() -> None:
    """
    A subscriber catching up is held: a live message arriving during the
    read is not written to it then.  When the read comes back holding that
    message too (it was published between the subscription and the read),
    the subscriber gets it once, in order, then later live messages.
    """
    subscriptions, reader, catching, seen = catchUp()
    ann, bob = clients(2)
    subscriptions.add("room", bob.protocol)  # live already
    subscriptions.add("room", ann.protocol)
    done = catching.request("room", ann.protocol, "1-1")
    catching.kick("room")
    ((_, since, read),) = reader.reads
    assert since == "1-1"
    for n in (3, 4):  # live, during the read
        kept = KeptMessage(f"1-{n}", f"m{n}")
        subscriptions.deliver("room", kept.message, True)
        catching.arrived("room", kept)
    assert ann.readMessages() == []
    assert bob.readMessages() == ["m3", "m4"]
    read.callback(window(2, 3))  # 3 is in both
    assert done.result is True
    assert ann.readMessages() == ["m2", "m3", "m4"]
    subscriptions.deliver("room", "m5", True)
    assert ann.readMessages() == bob.readMessages() == ["m5"]
    assert seen == [("room", "1-3")]


def test_catchUpOneReadForMany() -> None:
    """
    One read of a channel at a time: the subscribers who come while a read
    is under way (as many do when a server restarts) share the next one,
    made from the earliest of their positions, and each gets what
    followed its own position.
    """
    subscriptions, reader, catching, _ = catchUp()
    members = clients(41)
    results = []
    for n, member in enumerate(members):
        subscriptions.add("room", member.protocol)
        results.append(catching.request("room", member.protocol, f"1-{n % 4 + 1}"))
        catching.kick("room")
    assert [since for _, since, _ in reader.reads] == ["1-1"]
    reader.reads[0][2].callback(window(2, 3, 4, 5))
    assert members[0].readMessages() == ["m2", "m3", "m4", "m5"]
    assert [since for _, since, _ in reader.reads] == ["1-1", "1-1"]
    reader.reads[1][2].callback(window(2, 3, 4, 5, 6))
    for n, member in enumerate(members[1:], 1):
        assert member.readMessages() == [f"m{k}" for k in range(n % 4 + 2, 7)]
    assert len(reader.reads) == 2 and catching.reads == 2
    assert all(r.result is True for r in results)


def test_catchUpTooOld() -> None:
    """
    A position the history no longer reaches: nothing from the history,
    C{False}, and the live messages from then on.
    """
    subscriptions, reader, catching, _ = catchUp()
    (ann,) = clients(1)
    subscriptions.add("room", ann.protocol)
    done = catching.request("room", ann.protocol, "1-2")
    catching.kick("room")
    reader.reads[0][2].callback(window(5, 6, floor=4))
    assert done.result is False
    assert ann.readMessages() == []
    subscriptions.deliver("room", "m7", True)
    assert ann.readMessages() == ["m7"]


def test_catchUpReadFails() -> None:
    """
    A read that fails (Redis went away) keeps the subscribers held and
    waiting, and is made again half a second later.
    """
    subscriptions, reader, catching, _ = catchUp()
    (ann,) = clients(1)
    subscriptions.add("room", ann.protocol)
    done = catching.request("room", ann.protocol, "1-1")
    catching.kick("room")
    reader.reads[0][2].errback(ConnectionError("gone"))
    subscriptions.deliver("room", "lost live", True)
    assert ann.readMessages() == [] and not done.called
    assert len(reader.reads) == 1
    clock.advance(0.5)
    reader.reads[1][2].callback(window(2))
    assert ann.readMessages() == ["m2"] and done.result is True


def test_catchUpGoneClientSkipped() -> None:
    """
    A subscriber unsubscribed (or gone) during its read gets nothing.
    """
    subscriptions, reader, catching, _ = catchUp()
    (ann,) = clients(1)
    subscriptions.add("room", ann.protocol)
    catching.request("room", ann.protocol, "1-1")
    catching.kick("room")
    subscriptions.remove("room", ann.protocol)
    reader.reads[0][2].callback(window(2))
    assert ann.readMessages() == []
