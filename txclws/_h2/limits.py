# -*- test-case-name: tests.test_h2limits -*-
"""
The per-connection limits of an HTTP/2 connection, and the flood counter
that enforces the rate limits: pure code, no clock of its own.

The floods bounded here are those of frames that cost the server work but
carry nothing a client needs to send often: streams reset by the client
(the "rapid reset" attack, CVE-2023-44487), PINGs and SETTINGS (each owes
an acknowledgement: CVE-2019-9512, CVE-2019-9515), and empty frames (empty
DATA without END_STREAM, PRIORITY, zero WINDOW_UPDATE traffic: CVE-2019-9518).
A CONTINUATION flood (CVE-2024-27316 and kin) is bounded by the C{h2}
library itself (64 CONTINUATION frames at most) and by the header list
size.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Flood", "FloodCounter", "HTTP2Limits"]


class Flood(Enum):
    """
    A kind of frame counted against a rate limit.

    @cvar RESET: a stream the client reset (RST_STREAM).
    @cvar PING: a PING that is not an acknowledgement.
    @cvar SETTINGS: a SETTINGS frame that is not an acknowledgement.
    @cvar EMPTY: a frame with nothing in it: DATA of length 0 without
        END_STREAM, PRIORITY, WINDOW_UPDATE.
    """

    RESET = "RESET"
    PING = "PING"
    SETTINGS = "SETTINGS"
    EMPTY = "EMPTY"


@dataclass(frozen=True, slots=True)
class HTTP2Limits:
    """
    What one HTTP/2 connection may ask of the server.

    @ivar maxConcurrentStreams: C{SETTINGS_MAX_CONCURRENT_STREAMS}.
    @ivar streamWindow: C{SETTINGS_INITIAL_WINDOW_SIZE}: the most a client
        may send on a stream before we acknowledge it (what a stream whose
        reading is paused may make us hold).
    @ivar connectionWindow: the connection's receive window: the most a
        client may send before we acknowledge it, over every stream.
    @ivar maxFrameSize: C{SETTINGS_MAX_FRAME_SIZE} (RFC 9113 6.5.2): the
        largest frame a client may send us.  Above the default 16 KiB, a
        large message arrives in fewer DATA frames, and the C{h2} library's
        cost is per frame; a DATA frame still cannot exceed the stream's
        window.
    @ivar perSecond: the most frames of each L{Flood} kind in any one
        second; past it, C{GOAWAY ENHANCE_YOUR_CALM}.
    @ivar idleTimeout: seconds a connection with no stream open is kept.
    """

    maxConcurrentStreams: int = 100
    streamWindow: int = 1 << 18
    connectionWindow: int = 1 << 20
    maxFrameSize: int = 1 << 17
    perSecond: tuple[tuple[Flood, int], ...] = (
        (Flood.RESET, 100),
        (Flood.PING, 50),
        (Flood.SETTINGS, 50),
        (Flood.EMPTY, 500),
    )
    idleTimeout: float = 180.0


class FloodCounter:
    """
    Counts frames of each L{Flood} kind in the current one-second window.
    """

    __slots__ = ("_counts", "_limits", "_windowStart")

    def __init__(self, limits: HTTP2Limits) -> None:
        self._limits = dict(limits.perSecond)
        self._counts = dict.fromkeys(self._limits, 0)
        self._windowStart = float("-inf")

    def count(self, kind: Flood, now: float) -> bool:
        """
        Count one frame of C{kind} received at C{now} (seconds).

        @return: whether the connection is now over its limit for C{kind}.
        """
        if now - self._windowStart >= 1.0:
            self._windowStart = now
            self._counts = dict.fromkeys(self._limits, 0)
        self._counts[kind] += 1
        return self._counts[kind] > self._limits[kind]
