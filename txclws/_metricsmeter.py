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
from collections.abc import Callable
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

#: The first bucket's bound.
_FASTEST = LATENCY_BUCKETS[0]

#: By the first byte of a write: 1 if it starts a message, else 0.  RFC
#: 6455 5.2: a text (0x1) or binary (0x2) opcode, whatever the FIN and RSV
#: bits; hixie-76: 0x00 (a text frame; 0xFF 0x00 is its close).
_RFC6455_HEADS = tuple(int((byte & 0x0F) in (0x1, 0x2)) for byte in range(256))
_HIXIE_HEADS = (1,) + (0,) * 255

#: RFC 6455 5.5: the first byte of a close frame (FIN set: a control frame
#: is never fragmented).  Never the first byte of a hixie-76 write.
_CLOSE_HEAD = 0x88


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
        "_messageHeads",
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
        self._messageHeads = _HIXIE_HEADS if version == 0 else _RFC6455_HEADS
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
            self.messagesOut += self._messageHeads[first]
            if first == _CLOSE_HEAD:
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
    Deferred fires if it returns one.  The timing callbacks are closures,
    instance attributes: a class with C{__getattr__} gets none of CPython's
    attribute specialisation, so they read no attribute of it.
    """

    def __init__(
        self, resource: IWebSocketResource, meter: Meter, deflate: bool
    ) -> None:
        self._wrapped = resource
        text = getattr(resource, "receivedText", None)
        if text is not None:
            self.receivedText = _timed(text, meter, _utf8Size if deflate else None)
        binary = getattr(resource, "receivedBinary", None)
        if binary is not None:
            self.receivedBinary = _timed(binary, meter, len if deflate else None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


def _utf8Size(text: str) -> int:
    return len(text.encode())


def _timed(
    callback: Callable[[Any, Any], object],
    meter: Meter,
    deflateSize: Callable[[Any], int] | None,
) -> Callable[[Any, Any], object]:
    """
    C{callback} (a resource's C{receivedText} or C{receivedBinary}),
    counted in C{meter}: the message (and its size after decompression, by
    C{deflateSize}, on a permessage-deflate connection), and the latency.

    The meter is marked dirty once the latency is counted (or the callback
    raised), not before the call: a fold during the callback (the client
    dropped by it) must not leave the latency unfolded.  Most callbacks
    take less than the first bucket's bound: one comparison puts them
    there.  C{Deferred} is an ABC (its C{isinstance} runs Python code):
    C{None}, what most callbacks return, is tested first, as the session
    does.
    """
    buckets = meter.buckets

    def timed(client: Any, data: Any) -> object:
        meter.messagesIn += 1
        if deflateSize is not None:
            meter.deflatePayload += deflateSize(data)
        started = perf_counter()
        try:
            result = callback(client, data)
        except BaseException:
            if not meter.dirty:
                meter.dirtied()
            raise
        if result is not None and isinstance(result, Deferred):
            if not meter.dirty:
                meter.dirtied()
            return result.addBoth(observed, started)
        seconds = perf_counter() - started
        if seconds <= _FASTEST:
            buckets[0] += 1
        else:
            buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        meter.latencySum += seconds
        if not meter.dirty:
            meter.dirtied()
        return result

    def observed(result: object, started: float) -> object:
        meter.observe(perf_counter() - started)
        return result

    return timed
