# -*- test-case-name: tests.test_metrics -*-
"""
Prometheus metrics of a server (issue 17), with C{prometheus-client}
(C{pip install 'txclws[metrics]'}).

L{ServerMetrics} is given to a L{txclws._factory.WebSocketFactory} as its
C{metrics}.  Off (the default, C{metrics=None}) it costs nothing per
message: the factory and the session test C{metrics is not None} at the
client's open, its close and a refusal, and nowhere else.  On, each session
is I{metered} when it opens (L{ServerMetrics.meter}): its sink, its
resource and its input are wrapped in counting objects, so that the
unmetered hot path stays as it is.  They count per message in plain ints
(L{txclws._metricsmeter.Meter}), folded into the Prometheus metrics by
L{ServerMetrics.flush}: when the registry is collected (a scrape, by any
exposer), at each client's close, and at L{ServerMetrics.refresh}.

With C{twistd clws --workers N}, each worker counts in
C{prometheus-client}'s multiprocess mode (a C{PROMETHEUS_MULTIPROC_DIR}
the parent creates and removes, L{txclws._metricsdaemon}), and a scrape
aggregates every worker's files: a scrape reaches one worker, which cannot
fold the others' counts, so there each worker also folds at the end of
every reactor turn in which it counted something (one fold per turn,
however many messages).

@since: 0.2.0
"""

from __future__ import annotations

import os
from collections import deque
from threading import Lock
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

from txclws._core.connection import isCompressed
from txclws._metricsmeter import LATENCY_BUCKETS, Meter, TimedResource

if TYPE_CHECKING:
    from txclws._core.accept import Accepted
    from txclws._resource import IWebSocketResource
    from txclws._session.session import WebSocketSession

__all__ = ["DROP_CAUSES", "MULTIPROC_VARIABLE", "ServerMetrics"]

#: The causes L{ServerMetrics.dropped} counts: a slow client closed 1008,
#: an idle one closed 1001, one that did not answer a keepalive ping
#: dropped, one gone while its reading was paused.
DROP_CAUSES = ("slow", "idle", "keepalive", "gone")

#: The environment variable of C{prometheus-client}'s multiprocess mode.
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class ServerMetrics:
    """
    The metrics of one server, registered in one C{CollectorRegistry}.

    Names are C{txclws_*}; every counter's samples end in C{_total}.

    @ivar registry: where the metrics are registered: a new
        C{CollectorRegistry} unless one is given (so that two servers in a
        process, and tests, do not collide).  Its first collector folds
        the sessions' counts (L{flush}), so that any exposer of it sees
        them.
    @ivar foldEachTurn: also fold at the end of each reactor turn in which
        something was counted: by default, in C{prometheus-client}'s
        multiprocess mode (C{PROMETHEUS_MULTIPROC_DIR} set), where a scrape
        of another process reads this one's files.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        foldEachTurn: bool | None = None,
    ) -> None:
        self.registry = registry = (
            registry if registry is not None else CollectorRegistry(auto_describe=True)
        )
        if foldEachTurn is None:
            foldEachTurn = bool(os.environ.get(MULTIPROC_VARIABLE))
        self.foldEachTurn = foldEachTurn
        self._dirty: deque[Meter] = deque()
        self._folding = Lock()
        self._foldScheduled = False
        self._reactor: Any = None
        registry.register(_Fold(self))

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self.connections = Gauge(
            "txclws_connections",
            "WebSocket connections open, by resource and protocol version",
            ("resource", "version"),
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.handshakes = counter(
            "txclws_handshakes",
            "Opening handshakes answered, by HTTP status (101: accepted)",
            ("status",),
        )
        self.messagesIn = counter(
            "txclws_messages_received", "Messages received from clients"
        )
        self.messagesOut = counter("txclws_messages_sent", "Messages sent to clients")
        self.bytesIn = counter(
            "txclws_received_bytes",
            "Bytes received on open WebSocket connections (wire bytes)",
        )
        self.bytesOut = counter(
            "txclws_sent_bytes",
            "Bytes sent on open WebSocket connections (wire bytes, after the 101)",
        )
        self.closesSent = counter(
            "txclws_closes_sent", "Close frames sent, by close code", ("code",)
        )
        self.closesReceived = counter(
            "txclws_closes",
            "Connections ended, by the close code received (or failed "
            "with); 1006: none",
            ("code",),
        )
        self.drops = counter(
            "txclws_drops", "Clients closed or dropped by a server policy", ("cause",)
        )
        self.latency = Histogram(
            "txclws_callback_seconds",
            "Seconds a resource's message callback took (until its Deferred fired)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.writeBuffer = Gauge(
            "txclws_write_buffer_bytes",
            "Bytes written to clients and not yet sent (at the last refresh)",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.deflateWire = counter(
            "txclws_deflate_received_wire_bytes",
            "Wire bytes received on permessage-deflate connections",
        )
        self.deflatePayload = counter(
            "txclws_deflate_received_payload_bytes",
            "Message bytes (decompressed) received on permessage-deflate connections",
        )
        self._clients: Any = ()

    # -- the factory's hooks (once per client) -----------------------------

    def watchClients(self, clients: Any) -> None:
        """
        Sum C{clients}' write buffers into C{txclws_write_buffer_bytes} at
        each L{refresh}.
        """
        self._clients = clients

    def refresh(self) -> None:
        """
        Fold the sessions' counts, and bring the gauges that are measured,
        not counted, up to date: called before a scrape (and periodically
        by a worker).
        """
        self.flush()
        self.writeBuffer.set(sum(c.bufferedAmount for c in list(self._clients)))

    def refused(self, status: int) -> None:
        """
        A handshake was refused with C{status}.
        """
        self.handshakes.labels(str(status)).inc()

    def opened(self, client: WebSocketSession) -> None:
        """
        C{client} is past its handshake.
        """
        self.handshakes.labels("101").inc()
        self._gauge(client).inc()

    def closed(self, client: WebSocketSession) -> None:
        """
        C{client}'s connection is gone.
        """
        self._gauge(client).dec()
        self.closesReceived.labels(str(client.closeCode or 1006)).inc()
        self.flush()

    def dropped(self, cause: str) -> None:
        """
        A server policy closed or dropped a client (one of L{DROP_CAUSES}).
        """
        self.drops.labels(cause).inc()

    def _gauge(self, client: WebSocketSession) -> Any:
        return self.connections.labels(
            client.resourceName, str(client.websocketVersion)
        )

    # -- metering a session ------------------------------------------------

    def meter(
        self, session: WebSocketSession, accepted: Accepted[IWebSocketResource]
    ) -> None:
        """
        Count C{session}'s traffic from now on: its writes (through a
        counting sink), its messages (through a timing resource) and the
        bytes it reads, all in one L{Meter}.  Only metered sessions pay for
        counting.
        """
        self._reactor = session.owner.reactor
        deflate = isCompressed(accepted.connection)
        session._sink = meter = Meter(self, session._sink, session.websocketVersion)
        assert session._resource is not None
        session._resource = TimedResource(  # type: ignore[assignment]
            session._resource, meter, deflate
        )
        receive = session._receive
        received = meter.received

        def countedReceive(data: bytes) -> None:
            received(len(data), deflate)
            receive(data)

        session._receive = countedReceive  # type: ignore[method-assign]

    def dirtied(self, meter: Meter) -> None:
        """
        C{meter} counted something for the first time since it was last
        folded: fold it at the next L{flush} (and, if L{foldEachTurn}, at
        the end of this reactor turn).
        """
        self._dirty.append(meter)
        if self.foldEachTurn and not self._foldScheduled:
            self._foldScheduled = True
            self._reactor.callLater(0, self.flush)

    def flush(self) -> None:
        """
        Fold every dirty meter's counts into the metrics: after it, the
        metrics hold every message, byte and latency counted so far.
        """
        with self._folding:
            self._foldScheduled = False
            dirty = self._dirty
            for _ in range(len(dirty)):
                dirty.popleft().fold()


class _Fold:
    """
    The registry's first collector: it collects nothing, but folds the
    sessions' counts (L{ServerMetrics.flush}) before the metrics after it
    are collected.
    """

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        """
        No metric of its own.
        """
        return []

    def collect(self) -> list[Metric]:
        """
        Fold.
        """
        self._metrics.flush()
        return []
