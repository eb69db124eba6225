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

A frame longer than C{SETTINGS_MAX_FRAME_SIZE} is refused at its header
(L{FrameSizeGuard}): the C{h2} library checks a frame's length only once
the whole frame is buffered, which would let a client announce 16 MiB and
make the server hold what it sends of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Flood", "FloodCounter", "FrameSizeGuard", "HTTP2Limits"]

#: RFC 9113 3.4: the client connection preface, before the first frame.
PREFACE_SIZE = 24

#: RFC 9113 4.1: a frame header.
FRAME_HEADER_SIZE = 9


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


class FrameSizeGuard:
    """
    Follows the frame headers in what a client sends (RFC 9113 4.1), to
    refuse a frame longer than the advertised maximum as soon as its header
    arrives, before any of its payload is buffered.

    @ivar _skip: bytes still to pass before the next frame header (the
        preface's, then each frame's payload).
    @ivar _header: the first bytes of a frame header split across reads.
    """

    __slots__ = ("_header", "_maxFrameSize", "_skip")

    def __init__(self, maxFrameSize: int) -> None:
        self._maxFrameSize = maxFrameSize
        self._skip = PREFACE_SIZE
        self._header = b""

    def feed(self, data: bytes) -> int | None:
        """
        Follow C{data}, the next bytes the client sent.

        @return: the length announced by the first frame header in C{data}
            that is over the maximum, or C{None}.
        """
        size, offset = len(data), 0
        while offset < size:
            if self._skip:
                step = min(self._skip, size - offset)
                self._skip -= step
                offset += step
                continue
            header = (
                self._header
                + data[offset : offset + FRAME_HEADER_SIZE - len(self._header)]
            )
            offset += len(header) - len(self._header)
            if len(header) < FRAME_HEADER_SIZE:
                self._header = header
                return None
            self._header = b""
            length = int.from_bytes(header[:3], "big")
            if length > self._maxFrameSize:
                return length
            self._skip = length
        return None
