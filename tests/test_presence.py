"""
Presence on a L{LocalHub}: join, leave and disconnection, the members
listed, observers told (and one that raises logged), and L{Member}'s JSON.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

from txclws import LocalHub, WebSocketResource
from txclws._presence import Member, PresenceChange
from txclws.testing import InMemoryClient, InMemoryServer


def clients(count: int) -> list[InMemoryClient]:
    """
    C{count} in-memory clients of a resource that does nothing.
    """
    server = InMemoryServer()
    server.register("/x", WebSocketResource())
    return [server.connect("/x") for _ in range(count)]


def test_joinLeavePresence() -> None:
    """
    Members are listed in the order they joined, with this host and
    process; joining twice is joining once; leaving takes one out.
    """
    hub = LocalHub()
    ann, bob = clients(2)
    first = hub.join("room", ann.protocol, "ann").result
    assert hub.join("room", ann.protocol, "ann").result == first
    hub.join("room", bob.protocol, "bob")
    members = hub.presence("room").result
    assert [m.identity for m in members] == ["ann", "bob"]
    assert {(m.host, m.pid) for m in members} == {(socket.gethostname(), os.getpid())}
    assert len({m.key for m in members}) == 2
    hub.leave("room", ann.protocol)
    hub.leave("room", ann.protocol)  # again: nothing
    assert [m.identity for m in hub.presence("room").result] == ["bob"]
    assert hub.presence("elsewhere").result == []


def test_observed() -> None:
    """
    Observers of a channel hear its joins and leaves (a disconnection is a
    leave), with the count after each; other channels' are not told; a
    stopped observer hears nothing more.
    """
    hub = LocalHub()
    ann, bob = clients(2)
    changes: list[PresenceChange] = []
    stop = hub.observePresence("room", changes.append)
    hub.join("other", ann.protocol, "ann")
    hub.join("room", ann.protocol, "ann")
    hub.join("room", bob.protocol, "bob")
    bob.vanish()
    assert [(c.joined, c.member.identity, c.count) for c in changes] == [
        (True, "ann", 1),
        (True, "bob", 2),
        (False, "bob", 1),
    ]
    assert [m.identity for m in hub.presence("room").result] == ["ann"]
    stop()
    hub.leave("room", ann.protocol)
    assert len(changes) == 3


def test_observerFailureLogged(logEvents: Any) -> None:
    """
    An observer that raises is logged; the others are told all the same.
    """
    hub = LocalHub()
    (ann,) = clients(1)
    told: list[PresenceChange] = []

    def broken(change: PresenceChange) -> None:
        raise RuntimeError("observer bug")

    hub.observePresence("room", broken)
    hub.observePresence("room", told.append)
    hub.join("room", ann.protocol, "ann")
    assert len(told) == 1
    assert any("presence observer" in str(e.get("log_format")) for e in logEvents)


def test_memberJSON() -> None:
    """
    A member round-trips through its JSON; anything else is refused.
    """
    member = Member("ab:1", "zoë", "host", 42)
    assert Member.fromJSON(member.toJSON()) == member
    wrongPid = b'{"key": 1, "identity": 2, "host": 3, "pid": "x"}'
    for bad in (b"", b"[]", b'{"key": "k"}', wrongPid):
        with pytest.raises(ValueError):
            Member.fromJSON(bad)


def test_identityIsText() -> None:
    """
    Identities and channel names are strings.
    """
    hub = LocalHub()
    (ann,) = clients(1)
    with pytest.raises(TypeError):
        hub.join("room", ann.protocol, 42)  # type: ignore[arg-type]
