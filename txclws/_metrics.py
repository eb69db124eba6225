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
unmetered hot path stays as it is.

With C{twistd clws --workers N}, each worker counts in
C{prometheus-client}'s multiprocess mode (a C{PROMETHEUS_MULTIPROC_DIR}
the parent creates and removes, L{txclws._metricsdaemon}), and a scrape
aggregates every worker's files.

@since: 0.2.0
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from twisted.internet.defer import Deferred

from txclws._core.connection import isCompressed

if TYPE_CHECKING:
    from txclws._core.accept import Accepted
    from txclws._resource import IWebSocketResource
    from txclws._session.session import WebSocketSession

__all__ = ["DROP_CAUSES", "ServerMetrics"]

#: The causes L{ServerMetrics.dropped} counts: a slow client closed 1008,
#: an idle one closed 1001, one that did not answer a keepalive ping
#: dropped, one gone while its reading was paused.
DROP_CAUSES = ("slow", "idle", "keepalive", "gone")

#: Seconds: the callback latency histogram's buckets.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

#: RFC 6455 5.2 opcodes, in the first byte of a frame we send.
_TEXT, _BINARY, _CLOSE = 0x1, 0x2, 0x8


class ServerMetrics:
    """
    The metrics of one server, registered in one C{CollectorRegistry}.

    Names are C{txclws_*}; every counter's samples end in C{_total}.

    @ivar registry: where the metrics are registered: a new
        C{CollectorRegistry} unless one is given (so that two servers in a
        process, and tests, do not collide).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = (
            registry if registry is not None else CollectorRegistry(auto_describe=True)
        )

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
            buckets=_LATENCY_BUCKETS,
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
        Bring the gauges that are measured, not counted, up to date: called
        before a scrape (and periodically by a worker).
        """
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
        bytes it reads.  Only metered sessions pay for counting.
        """
        deflate = isCompressed(accepted.connection)
        session._sink = _CountingSink(session._sink, self, session.websocketVersion)
        assert session._resource is not None
        session._resource = _TimedResource(  # type: ignore[assignment]
            session._resource, self, deflate
        )
        receive = session._receive
        bytesIn = self.bytesIn.inc
        deflateWire = self.deflateWire.inc

        def countedReceive(data: bytes) -> None:
            bytesIn(len(data))
            if deflate:
                deflateWire(len(data))
            receive(data)

        session._receive = countedReceive  # type: ignore[method-assign]


class _CountingSink:
    """
    A session's sink that counts what is written: bytes, messages (a write
    is one message or one control frame: the first frame's opcode says
    which), and the codes of close frames.
    """

    __slots__ = ("_metrics", "_sink", "_version")

    def __init__(self, sink: Any, metrics: ServerMetrics, version: int) -> None:
        self._sink = sink
        self._metrics = metrics
        self._version = version

    def write(self, data: bytes) -> None:
        metrics = self._metrics
        if data:
            metrics.bytesOut.inc(len(data))
            self._classify(data)
        self._sink.write(data)

    def _classify(self, data: bytes) -> None:
        metrics = self._metrics
        if self._version == 0:  # hixie-76: 0x00 text ... 0xFF; 0xFF 0x00 close
            if data[0] == 0x00:
                metrics.messagesOut.inc()
            return
        opcode = data[0] & 0x0F
        if opcode in (_TEXT, _BINARY):
            metrics.messagesOut.inc()
        elif opcode == _CLOSE:
            # RFC 6455 5.5.1: a server's close frame is unmasked; its code,
            # if any, is the payload's first two bytes (short length form).
            code = int.from_bytes(data[2:4], "big") if len(data) >= 4 else 1005
            metrics.closesSent.labels(str(code)).inc()


class _TimedResource:
    """
    A session's resource, counting and timing its message callbacks; every
    other attribute is the resource's own.
    """

    def __init__(
        self, resource: IWebSocketResource, metrics: ServerMetrics, deflate: bool
    ) -> None:
        self._wrapped = resource
        self._metrics = metrics
        self._deflate = deflate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def receivedText(self, client: Any, data: str) -> object:
        return self._timed(self._wrapped.receivedText, client, data)

    def receivedBinary(self, client: Any, data: bytes) -> object:
        return self._timed(self._wrapped.receivedBinary, client, data)

    def _timed(self, callback: Any, client: Any, data: str | bytes) -> object:
        metrics = self._metrics
        metrics.messagesIn.inc()
        if self._deflate:
            size = len(data.encode()) if isinstance(data, str) else len(data)
            metrics.deflatePayload.inc(size)
        started = time.perf_counter()
        result = callback(client, data)
        if isinstance(result, Deferred):
            return result.addBoth(self._observed, started)
        metrics.latency.observe(time.perf_counter() - started)
        return result

    def _observed(self, result: object, started: float) -> object:
        self._metrics.latency.observe(time.perf_counter() - started)
        return result
