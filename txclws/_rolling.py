# -*- test-case-name: tests.test_rolling -*-
"""
Zero-downtime restart of C{twistd clws --workers N} (issue 17).

In the parent, L{RollingRestart}: on C{SIGHUP}, one worker at a time, a
replacement is started on the same inherited listening sockets (which the
parent never closes); once it has said it is ready (its C{worker N ready}
line, L{txclws._workerprocess.WorkerProcess.ready}), the old worker is
sent C{SIGUSR2}, and the next worker is replaced only once the old one
has exited.  A replacement that dies, or is not ready within
L{READY_TIMEOUT}, ends the restart there: the old worker goes on serving.

In a worker, L{drainWorker} (on C{SIGUSR2}): stop reading the listening
sockets (the worker's own descriptors are closed; the sockets, shared with
the parent and the replacement, are neither shut down nor closed), let the
handshakes of connections it had already accepted finish for
L{SETTLE} seconds, drain its clients (1012 at a random offset in
C{--drain-spread}, L{txclws.WebSocketFactory.drain}), and exit.
Connections that arrive meanwhile wait in the socket's queue for the
replacement, which accepts from the same socket.

Without C{--workers} there is no parent to start a replacement:
L{IgnoreHangup} logs a C{SIGHUP} and ignores it.

@since: 0.2.0
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, cast

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IServiceCollection, Service
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks
from twisted.internet.interfaces import IReactorFromThreads
from twisted.logger import Logger
from twisted.python.failure import Failure

from txclws._tapservices import GoingAway
from txclws._workerprocess import WorkerProcess, signalWorker

__all__ = [
    "READY_TIMEOUT",
    "SETTLE",
    "IgnoreHangup",
    "RollingRestart",
    "callOnSignal",
    "drainWorker",
    "retireTimeout",
]

_log = Logger(namespace="txclws._workers")

#: Seconds a replacement worker has to say it is ready.
READY_TIMEOUT = 30.0

#: Seconds a draining worker, no longer accepting, goes on answering the
#: handshakes of connections it had accepted already, before it drains.
SETTLE = 0.5


def callOnSignal(reactor: Any, number: int, callback: Callable[[], object]) -> None:
    """
    Call C{callback} in the reactor's thread on each signal C{number}.
    """

    def handler(signum: int, frame: object) -> None:
        # The global reactor's declared type leaves IReactorFromThreads out.
        cast(IReactorFromThreads, reactor).callFromThread(callback)

    signal.signal(number, handler)


class Pool(Protocol):
    """
    What L{RollingRestart} needs of L{txclws._workers.WorkerPool}.
    """

    reactor: Any
    workers: dict[int, WorkerProcess]
    stopTimeout: float

    def launch(self, index: int) -> WorkerProcess:
        """
        Start a worker C{index} on its sockets, without registering it.
        """


class RollingRestart:
    """
    Replace every worker of a pool, one at a time (see the module).

    @ivar running: whether a restart is under way.
    """

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.running = False
        self._starting: set[WorkerProcess] = set()
        self._retiring: set[WorkerProcess] = set()
        #: Seconds a retiring worker gets to drain before it is killed
        #: (L{retireTimeout}); the pool's stop timeout by default.
        self.retireTimeout = pool.stopTimeout

    @property
    def extra(self) -> list[WorkerProcess]:
        """
        The workers of this restart that the pool does not hold: a
        replacement not ready yet, an old worker draining.
        """
        return [*self._starting, *self._retiring]

    def start(self) -> None:
        """
        Begin a rolling restart, unless one is under way (then log that).
        """
        if self.running:
            _log.warn("SIGHUP: a rolling restart is under way already; ignored")
            return
        self.running = True
        self._all().addBoth(self._done, time.monotonic())

    def _done(self, result: object, started: float) -> None:
        self.running = False
        if isinstance(result, Failure):
            _log.failure("rolling restart failed", result)
        _log.info(
            "rolling restart done in {seconds:.1f}s", seconds=time.monotonic() - started
        )

    @inlineCallbacks
    def _all(self) -> Any:
        indexes = sorted(self.pool.workers)
        _log.info("SIGHUP: rolling restart of {count} workers", count=len(indexes))
        for index in indexes:
            replaced = yield self._replace(index)
            if not replaced:
                _log.error("rolling restart stopped at worker {worker}", worker=index)
                return

    @inlineCallbacks
    def _replace(self, index: int) -> Any:
        old = self.pool.workers.get(index)
        if old is None:  # died: the pool starts another anyway
            return True
        new = self.pool.launch(index)
        self._starting.add(new)
        ready = yield _first(self.pool.reactor, [new.ready, new.ended], READY_TIMEOUT)
        if ready is not new.ready:
            _log.error(
                "replacement worker {worker} pid={pid} not ready: keeping pid={old}",
                worker=index,
                pid=new.pid,
                old=old.pid,
            )
            if not new.ended.called:
                signalWorker(new, "KILL")
            return False
        self._starting.discard(new)
        # Retire the worker registered now: the old one, or the one the
        # pool started in its place if it died meanwhile.
        old = self.pool.workers.get(index, old)
        self.pool.workers[index] = new
        if old.ended.called:
            return True
        self._retiring.add(old)
        _log.info(
            "worker {worker} pid={pid} ready: draining pid={old}",
            worker=index,
            pid=new.pid,
            old=old.pid,
        )
        signalWorker(old, signal.SIGUSR2)
        killer = self.pool.reactor.callLater(
            self.retireTimeout, signalWorker, old, "KILL"
        )
        yield old.ended
        if killer.active():
            killer.cancel()
        return True

    def claims(self, worker: WorkerProcess, how: str) -> bool:
        """
        Whether C{worker}, which ended (C{how}), was this restart's: an old
        worker retired, or a replacement that died before it was ready.
        The pool neither logs it as a death nor replaces it.
        """
        if worker in self._starting:
            self._starting.discard(worker)
            _log.error(
                "replacement worker {worker} pid={pid} ended before it was"
                " ready ({how})",
                worker=worker.index,
                pid=worker.pid,
                how=how,
            )
            return True
        if worker not in self._retiring:
            return False
        self._retiring.discard(worker)
        _log.info(
            "worker {worker} pid={pid} retired ({how})",
            worker=worker.index,
            pid=worker.pid,
            how=how,
        )
        return True


def retireTimeout(options: Mapping[str, Any], grace: float) -> float:
    """
    Seconds a retiring worker of C{options} gets before it is killed: the
    settling, its drain's bound (C{--drain-timeout}, or C{--drain-spread}
    plus C{--close-timeout}), and C{grace}.
    """
    drain = options["drain-timeout"]
    if drain is None:
        drain = options["drain-spread"] + options["close-timeout"]
    return float(SETTLE + drain + grace)


def _first(reactor: Any, waits: Iterable[Deferred[None]], timeout: float) -> Any:
    """
    A Deferred firing with the first of C{waits} to fire, or C{None} after
    C{timeout} seconds.
    """
    chosen: Deferred[Any] = Deferred()
    timer = reactor.callLater(timeout, chosen.callback, None)

    def fired(result: object, which: Deferred[None]) -> object:
        if not chosen.called:
            timer.cancel()
            chosen.callback(which)
        return result

    for wait in waits:
        wait.addBoth(fired, wait)
    return chosen


def drainWorker(
    reactor: Any,
    service: IServiceCollection,
    options: Mapping[str, Any],
    stop: Callable[[], None],
) -> Deferred[Any]:
    """
    Drain this worker (on C{SIGUSR2}) and C{stop} it: stop listening, wait
    L{SETTLE} seconds, drain the factory's clients (C{--drain-timeout},
    C{--drain-spread} in C{options}).
    """
    timeout, spread = options["drain-timeout"], options["drain-spread"]
    services = list(cast(Iterable[Any], service))
    ports = [s for s in services if isinstance(s, StreamServerEndpointService)]
    factories = [s.factory for s in services if isinstance(s, GoingAway)]
    _log.info("SIGUSR2: draining; no longer accepting")
    stopped = DeferredList([s.stopService() for s in ports if s.running])

    def drain(_: object) -> Deferred[Any]:
        return DeferredList([f.drain(timeout, spread) for f in factories])

    def settle(result: object) -> Deferred[Any]:
        waited: Deferred[None] = Deferred()
        reactor.callLater(SETTLE, waited.callback, None)
        return waited.addCallback(drain)

    return stopped.addCallback(settle).addBoth(lambda _: stop())


class IgnoreHangup(Service):
    """
    Without C{--workers}: log a C{SIGHUP} and go on (no parent to start a
    replacement; run with C{--workers 2} or more for rolling restarts).
    """

    def __init__(self, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor

    def startService(self) -> None:
        """
        Catch C{SIGHUP} once the reactor runs.
        """
        Service.startService(self)
        self.reactor.callWhenRunning(
            callOnSignal, self.reactor, signal.SIGHUP, _ignored
        )


def _ignored() -> None:
    _log.warn(
        "SIGHUP ignored: a rolling restart needs --workers 2 or more"
        " (a parent to start the replacements); SIGTERM stops"
    )
