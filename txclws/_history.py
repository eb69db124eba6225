# -*- test-case-name: tests.test_history -*-
"""
Channel history: positions, what a channel keeps, and deciding what a
subscriber who resumes from a position gets.  No I/O here: the hubs read
their history (a bounded deque in L{LocalHistory}, a Redis stream for
C{RedisHub}) into a L{HistoryWindow}, and L{HistoryWindow.after} decides.

A position is a string C{"EPOCH-SEQUENCE"} of two decimal numbers, as Redis
stream entry ids are (C{"1700000000000-0"}): compare positions of one
channel with L{positionKey}, never as strings.

@since: 0.2.0
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "History",
    "HistoryPolicy",
    "HistoryWindow",
    "KeptMessage",
    "LocalHistory",
    "positionKey",
]

#: A position: two decimal numbers, each short enough to be sane.
_POSITION = re.compile(r"\A([0-9]{1,20})-([0-9]{1,20})\Z")

#: A stamp: makes the message a subscriber gets from a kept message and its
#: position (say, a JSON event with an C{id} field).
Stamp = Callable[[str, str | bytes], str | bytes]


def positionKey(position: str) -> tuple[int, int]:
    """
    The sort key of a position: positions of one channel compare as these
    tuples do.

    @raise ValueError: C{position} is not a position.
    """
    match = _POSITION.match(position) if isinstance(position, str) else None
    if match is None:
        raise ValueError(f"not a channel position: {position!r:.40}")
    return int(match[1]), int(match[2])


def isPosition(position: object) -> bool:
    """
    Whether C{position} is a well-formed position.
    """
    return isinstance(position, str) and _POSITION.match(position) is not None


@dataclass(frozen=True, slots=True)
class HistoryPolicy:
    """
    What a channel keeps of what is published to it (see
    L{txclws.IHub.keepHistory}).

    @ivar size: the last C{size} messages are kept (on Redis: at least,
        trimming is approximate, C{XADD MAXLEN ~}).
    @ivar maxAge: if not C{None}, messages older than this many seconds
        are dropped as well.
    @ivar stamp: if not C{None}, what subscribers get for a kept message
        is C{stamp(position, message)} rather than the message itself:
        how an application puts the position into the message (the demo
        chat's C{id}).  Called once per message per process, never per
        subscriber.
    """

    size: int = 1000
    maxAge: float | None = None
    stamp: Stamp | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"a history keeps at least 1 message, not {self.size!r}")
        if self.maxAge is not None and not self.maxAge > 0:
            raise ValueError(f"maxAge must be positive seconds, not {self.maxAge!r}")

    def render(self, kept: KeptMessage) -> str | bytes:
        """
        What a subscriber gets for C{kept}.
        """
        if self.stamp is None:
            return kept.message
        return self.stamp(kept.position, kept.message)


@dataclass(frozen=True, slots=True)
class KeptMessage:
    """
    A message of a channel's history.

    @ivar position: its position, unique and increasing within the channel.
    @ivar message: what was published (C{str} for text, C{bytes} for binary).
    """

    position: str
    message: str | bytes


@dataclass(frozen=True, slots=True)
class History:
    """
    What a channel's history holds after a position.

    @ivar complete: C{False} when the history no longer reaches back to
        the position ("too old": messages after it were dropped, the
        history was lost, or the position is not one of this channel's);
        C{messages} is then empty and the subscriber should start afresh.
    @ivar messages: the kept messages after the position, in order.
    """

    complete: bool
    messages: tuple[KeptMessage, ...] = ()


#: The answer for a position the history does not reach back to.
TOO_OLD = History(complete=False)


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """
    What a hub read of a channel's history at one moment.

    @ivar start: the position of the first message ever kept by this
        history (C{None}: it holds nothing and remembers nothing: never
        published to, or lost, as by a Redis restart without persistence).
    @ivar floor: every message after this position is still held (the
        last position dropped, or the first held; C{(0, 0)} if none was
        dropped).
    @ivar last: the last position kept.
    @ivar messages: the messages read, after some position, in order.
    """

    start: tuple[int, int] | None
    floor: tuple[int, int]
    last: tuple[int, int]
    messages: tuple[KeptMessage, ...]

    def reaches(self, position: str) -> bool:
        """
        Whether every message after C{position} is held: C{position} is one
        of this history's (not before its start, not after its last) and
        nothing after it was dropped.
        """
        if self.start is None or not isPosition(position):
            return False
        key = positionKey(position)
        return self.start <= key <= self.last and key >= self.floor

    def after(self, position: str) -> History:
        """
        The messages after C{position}, or L{TOO_OLD}.
        """
        if not self.reaches(position):
            return TOO_OLD
        key = positionKey(position)
        return History(
            True, tuple(m for m in self.messages if positionKey(m.position) > key)
        )


class LocalHistory:
    """
    The history of one channel of a L{txclws.LocalHub}: a bounded deque.
    Positions are C{"EPOCH-N"}, where EPOCH is the millisecond the history
    was made (so a position from an earlier process is not mistaken for
    one of this history) and N counts from 1.

    @ivar policy: what it keeps.
    """

    def __init__(
        self, policy: HistoryPolicy, clock: Callable[[], float] = time.time
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._epoch = int(clock() * 1000)
        self._count = 0
        self._dropped = 0
        self._kept: deque[tuple[float, KeptMessage]] = deque()

    def append(self, message: str | bytes) -> KeptMessage:
        """
        Keep C{message}, dropping what the policy no longer keeps.

        @return: it, with its position.
        """
        self._count += 1
        kept = KeptMessage(f"{self._epoch}-{self._count}", message)
        self._kept.append((self._clock(), kept))
        self._trim()
        return kept

    def window(self) -> HistoryWindow:
        """
        Everything held, as a L{HistoryWindow}.
        """
        self._trim()
        start = (self._epoch, 1) if self._count else None
        return HistoryWindow(
            start,
            (self._epoch, self._dropped),
            (self._epoch, self._count),
            tuple(kept for _, kept in self._kept),
        )

    def _trim(self) -> None:
        oldest = None
        if self.policy.maxAge is not None:
            oldest = self._clock() - self.policy.maxAge
        while self._kept and (
            len(self._kept) > self.policy.size
            or (oldest is not None and self._kept[0][0] < oldest)
        ):
            self._kept.popleft()
            self._dropped += 1
