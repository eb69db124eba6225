# -*- test-case-name: tests.test_presence -*-
"""
Presence: who is in a channel (an identity the application gives) and
where (the host and process serving them); the bookkeeping of this
process's members, and telling observers of joins and leaves.

@since: 0.2.0
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING

from twisted.logger import Logger

if TYPE_CHECKING:
    from txclws._resource import IWebSocketClient

__all__ = ["Member", "PresenceChange", "PresenceObserver"]

_log = Logger()


@dataclass(frozen=True, slots=True)
class Member:
    """
    One client's presence in one channel.

    @ivar key: unique among every member of every process sharing the hub.
    @ivar identity: who, as the application said (a user name, an id).
    @ivar host: the host name of the process serving the client.
    @ivar pid: that process's id.
    """

    key: str
    identity: str
    host: str
    pid: int

    def toJSON(self) -> bytes:
        """
        The member as JSON (what a C{RedisHub} stores and announces).
        """
        return json.dumps(
            {
                "key": self.key,
                "identity": self.identity,
                "host": self.host,
                "pid": self.pid,
            },
            ensure_ascii=False,
        ).encode("utf-8")

    @classmethod
    def fromJSON(cls, data: bytes) -> Member:
        """
        The member L{toJSON} made.

        @raise ValueError: C{data} is not such JSON.
        """
        try:
            fields = json.loads(data)
            return cls(
                str(fields["key"]),
                str(fields["identity"]),
                str(fields["host"]),
                int(fields["pid"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a presence member: {error}") from error


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """
    A member joined or left a channel.

    @ivar channel: the channel.
    @ivar joined: C{True} for a join, C{False} for a leave (the client left
        or disconnected, or its process stopped heartbeating).
    @ivar member: who.
    @ivar count: how many members the channel had just after the change.
    """

    channel: str
    joined: bool
    member: Member
    count: int


#: What is told of every join and leave of a channel.
PresenceObserver = Callable[[PresenceChange], None]


class LocalMembers:
    """
    The members this process's clients are, by channel and by client.
    """

    def __init__(self, prefix: str) -> None:
        """
        @param prefix: the start of every member key made here, unique to
            this hub.
        """
        self._prefix = prefix
        self._numbers = count(1)
        self._host = socket.gethostname()
        self._byChannel: dict[str, dict[IWebSocketClient, Member]] = {}

    def add(
        self, channel: str, client: IWebSocketClient, identity: str
    ) -> Member | None:
        """
        Make C{client} a member of C{channel} as C{identity}.

        @return: the new member, or C{None} if it is a member already.
        @raise TypeError: C{channel} or C{identity} is not a C{str}.
        """
        if not isinstance(channel, str) or not isinstance(identity, str):
            raise TypeError("channel names and identities are str")
        members = self._byChannel.setdefault(channel, {})
        if client in members:
            return None
        member = Member(
            f"{self._prefix}:{next(self._numbers)}", identity, self._host, os.getpid()
        )
        members[client] = member
        return member

    def remove(self, channel: str, client: IWebSocketClient) -> Member | None:
        """
        C{client} leaves C{channel}.

        @return: the member it was, or C{None}.
        """
        members = self._byChannel.get(channel)
        if members is None:
            return None
        member = members.pop(client, None)
        if not members:
            del self._byChannel[channel]
        return member

    def removeClient(self, client: IWebSocketClient) -> list[tuple[str, Member]]:
        """
        C{client} leaves every channel.

        @return: the channels it left, with the member it was in each.
        """
        left = []
        for channel in list(self._byChannel):
            member = self.remove(channel, client)
            if member is not None:
                left.append((channel, member))
        return left

    def get(self, channel: str, client: IWebSocketClient) -> Member | None:
        """
        The member C{client} is in C{channel}, if any.
        """
        return self._byChannel.get(channel, {}).get(client)

    def members(self, channel: str) -> list[Member]:
        """
        This process's members of C{channel}, in the order they joined.
        """
        return list(self._byChannel.get(channel, {}).values())

    def everyMember(self) -> Iterator[tuple[str, Member]]:
        """
        Every channel and member of this process.
        """
        for channel, members in list(self._byChannel.items()):
            for member in list(members.values()):
                yield channel, member

    def channels(self) -> list[str]:
        """
        The channels with members here.
        """
        return list(self._byChannel)


class PresenceObservers:
    """
    Who is told of a channel's joins and leaves.
    """

    def __init__(self) -> None:
        self._byChannel: dict[str, list[PresenceObserver]] = {}

    def add(self, channel: str, observer: PresenceObserver) -> Callable[[], None]:
        """
        Tell C{observer} of every change of C{channel}.

        @return: a function that stops it.
        """
        observers = self._byChannel.setdefault(channel, [])
        observers.append(observer)

        def stop() -> None:
            if observer in observers:
                observers.remove(observer)
            if not observers and self._byChannel.get(channel) is observers:
                del self._byChannel[channel]

        return stop

    def channels(self) -> list[str]:
        """
        The channels observed.
        """
        return list(self._byChannel)

    def tell(self, change: PresenceChange) -> None:
        """
        Tell the observers of C{change}'s channel; one that raises is
        logged, and the others are told all the same.
        """
        for observer in list(self._byChannel.get(change.channel, ())):
            try:
                observer(change)
            except Exception:
                _log.failure(
                    "hub: a presence observer of {channel} failed",
                    channel=change.channel,
                )
