# -*- test-case-name: tests.test_metricsfold -*-
"""
The per-session half of the Prometheus metrics (issue 17): what a metered
session counts per message, in plain ints, folded into C{prometheus-client}
later (L{txclws._metrics.ServerMetrics.flush}).

C{prometheus-client} takes a lock per C{inc} and C{observe} (and with
C{--workers} writes an mmap'd file per update): per message, that was more
than the rest of an echo.  A L{Meter} counts in its own attributes instead,
and tells its metrics the first time it counts something after a fold (it
is then I{dirty}); a fold adds to each metric what was counted since the
previous fold.  Only the thread that folds (holding the metrics' fold
lock) writes a meter's C{_folded}; the reactor's thread only adds to the
counts: a fold in another thread (an exposer of the registry running in a
thread of its own) loses nothing.

@since: 0.2.0
"""

from __future__ import annotations

from bisect import bisect_left
from time import perf_counter
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from txclws._resource import IWebSocketResource

__all__ = ["LATENCY_BUCKETS", "Meter", "TimedResource"]

#: Seconds: the callback latency histogram's finite buckets' upper bounds
#: (C{le}); a latency goes in the first bucket whose bound it does not
#: exceed, or in C{+Inf}.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

#: RFC 6455 5.2 opcodes, in the first byte of a frame we send.
_TEXT, _BINARY, _CLOSE = 0x1, 0x2, 0x8


class Meter:
    """
    One session's counts since it opened, and what of them was folded.

    It is the session's sink (it counts what is written, then writes it to
    the real sink): bytes, messages (a write is one message or one control
    frame: the first frame's opcode says which), and the codes of close
    frames (once per connection: counted in the metric at once).

    @ivar dirty: something was counted since the last fold.
    @ivar buckets: latencies observed, per bucket of L{LATENCY_BUCKETS}
        (the last one: C{+Inf}).
    """

    __slots__ = (
        "_folded",
        "_hixie",
        "_metrics",
        "_write",
        "buckets",
        "bytesIn",
        "bytesOut",
        "deflatePayload",
        "deflateWire",
        "dirty",
        "latencySum",
        "messagesIn",
        "messagesOut",
    )

    def __init__(self, metrics: Any, sink: Any, version: int) -> None:
        self._metrics = metrics
        self._write = sink.write
        self._hixie = version == 0
        self.dirty = False
        self.messagesIn = self.messagesOut = self.bytesIn = self.bytesOut = 0
        self.deflateWire = self.deflatePayload = 0
        self.latencySum = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._folded: tuple[Any, ...] = (0,) * 6 + (0.0,) + (0,) * len(self.buckets)

    def write(self, data: bytes) -> None:
        """
        Count C{data}, then write it.
        """
        if data:
            self.bytesOut += len(data)
            first = data[0]
            if self._hixie:  # hixie-76: 0x00 text ... 0xFF; 0xFF 0x00 close
                if first == 0x00:
                    self.messagesOut += 1
            else:
                opcode = first & 0x0F
                if opcode == _TEXT or opcode == _BINARY:
                    self.messagesOut += 1
                elif opcode == _CLOSE:
                    self._closeSent(data)
            if not self.dirty:
                self.dirtied()
        self._write(data)

    def _closeSent(self, data: bytes) -> None:
        # RFC 6455 5.5.1: a server's close frame is unmasked; its code, if
        # any, is the payload's first two bytes (short length form).
        code = int.from_bytes(data[2:4], "big") if len(data) >= 4 else 1005
        self._metrics.closesSent.labels(str(code)).inc()

    def received(self, size: int, deflate: bool) -> None:
        """
        C{size} wire bytes were read (on a permessage-deflate connection if
        C{deflate}).
        """
        self.bytesIn += size
        if deflate:
            self.deflateWire += size
        if not self.dirty:
            self.dirtied()

    def observe(self, seconds: float) -> None:
        """
        A callback took C{seconds}.
        """
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latencySum += seconds
        if not self.dirty:
            self.dirtied()

    def dirtied(self) -> None:
        """
        The first count since the last fold: tell the metrics.
        """
        self.dirty = True
        self._metrics.dirtied(self)

    def fold(self) -> None:
        """
        Add to the metrics what was counted since the last fold (the fold
        lock held).
        """
        self.dirty = False  # before reading: a count from now on re-dirties
        now = (
            self.messagesIn,
            self.messagesOut,
            self.bytesIn,
            self.bytesOut,
            self.deflateWire,
            self.deflatePayload,
            self.latencySum,
            *self.buckets,
        )
        before, self._folded = self._folded, now
        if now == before:
            return
        metrics = self._metrics
        latency = metrics.latency
        # prometheus-client has no observe-N-times: a fold adds to the
        # histogram's own bucket and sum values (its _buckets and _sum,
        # each a value of the mode in use, multiprocess or not).
        targets = (
            metrics.messagesIn,
            metrics.messagesOut,
            metrics.bytesIn,
            metrics.bytesOut,
            metrics.deflateWire,
            metrics.deflatePayload,
            latency._sum,
            *latency._buckets,
        )
        for target, value, old in zip(targets, now, before, strict=True):
            if value != old:
                target.inc(value - old)


class TimedResource:
    """
    A session's resource, counting and timing its message callbacks in the
    session's L{Meter}; every other attribute is the resource's own.

    A callback's latency is the time until it returns, or until its
    Deferred fires if it returns one.  The meter is marked dirty after the
    latency is counted (as well as before the call, in case the callback
    raises): a fold during the callback (the client dropped by it) must
    not leave the latency unfolded.  C{Deferred} is an ABC (its
    C{isinstance} runs Python code): C{None}, what most callbacks return,
    is tested first, as the session does.
    """

    def __init__(
        self, resource: IWebSocketResource, meter: Meter, deflate: bool
    ) -> None:
        self._wrapped = resource
        self._meter = meter
        self._deflate = deflate
        # Looked up once (None if the resource has none: then the session
        # does not call it either).
        self._text: Any = getattr(resource, "receivedText", None)
        self._binary: Any = getattr(resource, "receivedBinary", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def receivedText(self, client: Any, data: str) -> object:
        meter = self._meter
        meter.messagesIn += 1
        if self._deflate:
            meter.deflatePayload += len(data.encode())
        if not meter.dirty:
            meter.dirtied()
        started = perf_counter()
        result = self._text(client, data)
        if result is not None and isinstance(result, Deferred):
            return result.addBoth(self._observed, started)
        seconds = perf_counter() - started
        meter.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        meter.latencySum += seconds
        if not meter.dirty:
            meter.dirtied()
        return result

    def receivedBinary(self, client: Any, data: bytes) -> object:
        meter = self._meter
        meter.messagesIn += 1
        if self._deflate:
            meter.deflatePayload += len(data)
        if not meter.dirty:
            meter.dirtied()
        started = perf_counter()
        result = self._binary(client, data)
        if result is not None and isinstance(result, Deferred):
            return result.addBoth(self._observed, started)
        seconds = perf_counter() - started
        meter.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        meter.latencySum += seconds
        if not meter.dirty:
            meter.dirtied()
        return result

    def _observed(self, result: object, started: float) -> object:
        self._meter.observe(perf_counter() - started)
        return result
