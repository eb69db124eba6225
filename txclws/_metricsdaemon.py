# -*- test-case-name: tests.test_metrics -*-
"""
C{twistd clws --metrics}: the C{/metrics} page, and with C{--workers} the
multiprocess directory every worker counts in (issue 17).

C{--metrics} alone serves C{/metrics} on the daemon's own site (every
C{--port}); C{--metrics ENDPOINT} (C{tcp:9100:interface=127.0.0.1}) serves
it on a port of its own, and nothing else there.

With C{--workers N}, the parent makes a fresh C{PROMETHEUS_MULTIPROC_DIR}
before it starts the workers (they inherit it in their environment, so
C{prometheus-client} writes each worker's values to files there), tells
C{prometheus-client} when a worker ends (its live gauges stop counting),
and removes the directory when it stops.  A scrape of any process, a
worker's site or the parent's own metrics port, aggregates every worker's
files.

L{addMetrics} and L{addParentMetrics} put these services together for
L{txclws.tap.makeService}, in a worker (or the one process) and in the
parent of workers.

@since: 0.2.0
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from twisted.application import strports
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from txclws._metrics import MULTIPROC_VARIABLE, ServerMetrics

if TYPE_CHECKING:
    from txclws._factory import WebSocketFactory
    from txclws._workers import WorkerPool

__all__ = [
    "MULTIPROC_VARIABLE",
    "ON_SITE",
    "MetricsEndpoint",
    "MetricsPage",
    "MultiprocessDirectory",
    "RefreshMetrics",
    "addMetrics",
    "addParentMetrics",
    "metricsArgument",
    "metricsServices",
    "multiprocessDirectory",
]

_log = Logger(namespace="txclws.tap")

#: The value of C{--metrics} given alone: served on the daemon's own site.
ON_SITE = "site"

#: Seconds between two refreshes of a worker's measured gauges.
REFRESH_INTERVAL = 1.0


def metricsArgument(arguments: list[str]) -> list[str]:
    """
    C{arguments} with a C{--metrics} that has no value given L{ON_SITE}:
    C{twisted.python.usage} has no option with an optional value.
    """
    fixed: list[str] = []
    for index, argument in enumerate(arguments):
        fixed.append(argument)
        if argument == "--metrics":
            following = arguments[index + 1 : index + 2]
            if not following or following[0].startswith("-"):
                fixed.append(ON_SITE)
    return fixed


def multiprocessDirectory() -> str | None:
    """
    The multiprocess directory this process counts in, or C{None}.
    """
    return os.environ.get(MULTIPROC_VARIABLE) or None


def scrapeRegistry(metrics: ServerMetrics | None) -> CollectorRegistry:
    """
    What a scrape reads: every worker's files in multiprocess mode, else
    C{metrics}' own registry.
    """
    directory = multiprocessDirectory()
    if directory is None:
        assert metrics is not None
        return metrics.registry
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


class MetricsPage(Resource):
    """
    C{GET /metrics}: the Prometheus text exposition format.
    """

    isLeaf = True

    def __init__(self, metrics: ServerMetrics | None) -> None:
        """
        @param metrics: this process's metrics, refreshed before each
            scrape; C{None} in the parent of workers (it serves theirs).
        """
        Resource.__init__(self)
        self.metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        """
        Refresh and expose.
        """
        if self.metrics is not None:
            self.metrics.refresh()
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(scrapeRegistry(self.metrics))


class RefreshMetrics(Service):
    """
    In a worker, refresh the measured gauges (and fold the counts, which
    each reactor turn that counted something also does) every
    L{REFRESH_INTERVAL} seconds: a scrape reaches one worker, and reads
    the others' files.
    """

    def __init__(self, metrics: ServerMetrics) -> None:
        self._loop = LoopingCall(metrics.refresh)

    def startService(self) -> None:
        """
        Start refreshing.
        """
        Service.startService(self)
        self._loop.start(REFRESH_INTERVAL)

    def stopService(self) -> None:
        """
        Stop refreshing.
        """
        Service.stopService(self)
        if self._loop.running:
            self._loop.stop()


class MultiprocessDirectory(Service):
    """
    In the parent of workers: the C{PROMETHEUS_MULTIPROC_DIR} they count
    in, made (empty) before they start and removed once they have stopped.
    Started before the worker pool, stopped after it.
    """

    directory: str | None = None

    def __init__(self, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor

    def startService(self) -> None:
        """
        Make the directory and put it in the environment the workers get;
        remove it after shutdown (the workers count until they have
        stopped, which the pool's stop waits for: a service's own stop
        would come too soon, since a C{MultiService} does not wait for one
        child's stop before the next).
        """
        Service.startService(self)
        self.directory = tempfile.mkdtemp(prefix="txclws-metrics-")
        os.environ[MULTIPROC_VARIABLE] = self.directory
        self.reactor.addSystemEventTrigger("after", "shutdown", self.remove)

    def workerEnded(self, pid: int) -> None:
        """
        A worker has ended: its live gauges (connections, write buffers)
        no longer count.
        """
        if self.directory is not None:
            mark_process_dead(pid, self.directory)  # type: ignore[no-untyped-call]

    def remove(self) -> None:
        """
        Remove the directory.
        """
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            os.environ.pop(MULTIPROC_VARIABLE, None)
            self.directory = None


@implementer(IStreamServerEndpoint)
class MetricsEndpoint:
    """
    The endpoint of C{--metrics ENDPOINT}, logging where it listens.
    """

    def __init__(self, endpoint: IStreamServerEndpoint, description: str) -> None:
        self._endpoint = endpoint
        self._description = description

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen, and log where once listening.
        """
        return self._endpoint.listen(factory).addCallback(self._listening)

    def _listening(self, port: IListeningPort) -> IListeningPort:
        address = port.getHost()
        _log.info(
            "clws metrics at http://{host}:{port}/metrics ({endpoint})",
            host=getattr(address, "host", "?"),
            port=getattr(address, "port", 0),
            endpoint=self._description,
        )
        return port


def metricsServices(description: str, metrics: ServerMetrics | None) -> Service:
    """
    The service of C{--metrics ENDPOINT}: C{/metrics}, and nothing else,
    on a port of its own.
    """
    root = Resource()
    root.putChild(b"metrics", MetricsPage(metrics))
    child = strports.service(description, Site(root))
    child.endpoint = MetricsEndpoint(child.endpoint, description)
    return child


def addParentMetrics(service: MultiService, where: str, pool: WorkerPool) -> None:
    """
    In the parent of workers: the multiprocess directory they count in
    (started before them), and a C{--metrics ENDPOINT} port of its own.
    """
    directory = MultiprocessDirectory()
    Service.setServiceParent(directory, service)
    pool.endedHooks.append(directory.workerEnded)
    if where != ON_SITE:
        metricsServices(where, None).setServiceParent(service)


def addMetrics(
    service: MultiService,
    where: str,
    factory: WebSocketFactory,
    root: Resource,
    inWorker: bool,
) -> None:
    """
    Count C{factory}'s traffic, and serve it at C{/metrics} on C{root} or
    on a port of its own (in a worker: the parent serves that port).
    """
    metrics = factory.metrics = ServerMetrics()
    metrics.watchClients(factory.clients)
    if where == ON_SITE:
        root.putChild(b"metrics", MetricsPage(metrics))
    elif not inWorker:
        metricsServices(where, metrics).setServiceParent(service)
    if inWorker:
        Service.setServiceParent(RefreshMetrics(metrics), service)
