# -*- test-case-name: tests.test_workers -*-
"""
C{twistd clws --workers N}, the parent: N worker processes serving the
same ports.

The parent process opens the listening sockets (before twistd drops
privileges, so ports under 1024 work), then starts N workers: each is a
Python process running L{txclws._workerchild.main}, the same C{clws}
service, on sockets inherited as file descriptors 3, 4, ... (one per port)
and adopted there.  The parent serves nothing itself: it relays
each worker's log lines into its own log, restarts a worker that dies
(logging how it died), and on shutdown asks every worker to stop
(C{SIGTERM}: each closes its clients with 1001) and waits for them.

On Linux, a tcp:, ssl: or stdssl: port is N listening sockets bound to the same
address with C{SO_REUSEPORT}, one per worker, all opened by the parent;
the kernel spreads incoming connections over them by a hash of their
addresses.  Why not one socket that every worker accepts from: with one,
connections are split as the scheduler happens to wake the workers (and
Twisted accepts up to 100 per wakeup), and WebSocket connections last, so
the split does too; the figures (C{benchmarks/scaling.py}, "spread") are
in the scaling documentation.  The
parent keeps a dead worker's sockets open, so the connections hashed to
them wait in their queue for the replacement instead of being reset.

unix: ports (no C{SO_REUSEPORT}), and every port elsewhere than on Linux
(where C{SO_REUSEPORT} does not balance), are one socket shared by all the
workers.  The parent owns a unix: socket's path: it claims it before
binding (L{claimUnixPath}: a live listener there is refused, a stale
socket file removed, as with one process), the workers never unlink it
(a worker that stops leaves the path to the others and its replacement),
and the parent removes it once, when the last worker has stopped.
A systemd: port is the one socket systemd passed the parent
(L{txclws._systemd}), shared by all the workers; its path, if any, is
systemd's.  tcp:, tcp6:, ssl:, stdssl:, unix: and systemd: ports are
supported; for ssl: and stdssl: the TLS context is built by each worker
from the same description (the parent builds one too, only to check the
description before it binds).  Other endpoint types (onion:, ...) are
refused with C{--workers}.

@since: 0.1.0
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

from txclws._ports import CannotListen, ListenSpec, claimUnixPath, listenSpec
from txclws._rolling import RollingRestart, callOnSignal
from txclws._systemd import InheritedSocket, inheritedSocket, withoutListenVariables
from txclws._workerprocess import WorkerProcess, howEnded, signalWorker

__all__ = ["FIRST_FD", "STOP_GRACE", "WorkerPool", "bindSockets"]

_log = Logger()

#: The first file descriptor of the inherited listening sockets in a worker.
FIRST_FD = 3

#: A worker that dies within this many seconds of starting makes the next
#: restart wait (doubling, up to L{MAX_RESTART_DELAY}): no busy loop of
#: workers that cannot start.
QUICK_DEATH = 2.0
MAX_RESTART_DELAY = 10.0

#: Seconds a stopping worker gets beyond its clients' close timeout before
#: it is killed.
STOP_GRACE = 5.0


#: Whether the kernel balances connections over C{SO_REUSEPORT} sockets:
#: Linux does (since 3.9); elsewhere the option means something else.
BALANCED_REUSEPORT = sys.platform.startswith("linux") and hasattr(
    socket, "SO_REUSEPORT"
)


def bindSockets(
    spec: ListenSpec, workers: int, option: str = "--port"
) -> list[socket.socket]:
    """
    Open, bind and listen on the sockets of one port: one per worker
    (C{SO_REUSEPORT}) for tcp, ssl and stdssl ports on Linux, else one for
    all.

    @param option: the option naming the port, for error messages.
    @return: the sockets, listening and non-blocking.
    @raise CannotListen: the path of a unix: port is not free.
    @raise OSError: C{bind()} or C{listen()} failed.
    """
    if spec.descriptor is not None:
        return [inheritedSocket(spec.descriptor)]  # systemd's: one for all
    if spec.kind == "unix":
        return [_bindUnix(spec, option)]
    if not BALANCED_REUSEPORT:
        return [_bindTCP(spec, spec.port, False)]
    first = _bindTCP(spec, spec.port, True)
    port = first.getsockname()[1]  # the one picked, for a port of 0
    sockets = [first]
    try:
        for _ in range(workers - 1):
            sockets.append(_bindTCP(spec, port, True))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bindTCP(spec: ListenSpec, port: int, reusePort: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in spec.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As Twisted's own TCP ports do on POSIX: rebind at once after a
        # restart, over connections still in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reusePort:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((spec.address, port))
        sock.listen(spec.backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)  # the worker's adoptStreamPort expects it
    return sock


def _bindUnix(spec: ListenSpec, option: str) -> socket.socket:
    claimUnixPath(spec.address, option)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(spec.address)
    except OSError:
        sock.close()
        raise
    try:
        os.chmod(spec.address, spec.mode)
        sock.listen(spec.backlog)
    except OSError:
        sock.close()
        os.unlink(spec.address)  # bound by us just now
        raise
    sock.setblocking(False)
    return sock


def _described(sock: socket.socket) -> str:
    address = sock.getsockname()
    if isinstance(address, tuple):
        host = f"[{address[0]}]" if sock.family == socket.AF_INET6 else address[0]
        return f"{host}:{address[1]}"
    return str(address)


# -- the parent ------------------------------------------------------------


#: What a worker runs: L{txclws._workerchild.main}, under its module's name
#: (so that its log lines say C{txclws._workerchild}, not C{__main__}).
_WORKER_MAIN = "from txclws._workerchild import main; main()"


class WorkerPool(Service):
    """
    The parent of C{twistd clws --workers N}: holds the listening sockets,
    keeps N workers running on them, and stops them on shutdown.

    @ivar workers: the running workers by index (1 to N).
    @ivar sockets: the listening sockets of each port: one per worker (the
        first for worker 1, ...), or one for all.
    @ivar endedHooks: called with the pid of each worker that ends (the
        metrics' multiprocess directory forgets its live gauges).
    """

    def __init__(
        self,
        count: int,
        descriptions: Sequence[str],
        arguments: Sequence[str],
        stopTimeout: float,
        reactor: Any = None,
    ) -> None:
        """
        @param descriptions: the endpoint description of each port.
        @param arguments: the C{clws} arguments each worker runs with.
        @param stopTimeout: seconds a stopping worker gets before it is
            killed.
        """
        if reactor is None:
            from twisted.internet import reactor
        self.count = count
        self.descriptions = list(descriptions)
        self.arguments = list(arguments)
        self.stopTimeout = stopTimeout
        self.reactor = reactor
        self.workers: dict[int, WorkerProcess] = {}
        self.sockets: list[list[socket.socket]] = []
        self._quickDeaths: dict[int, int] = {}
        self._restarts: dict[int, Any] = {}
        self._stopping = False
        self.endedHooks: list[Callable[[int], None]] = []
        self.rolling = RollingRestart(self)

    def privilegedStartService(self) -> None:
        """
        Listen (before twistd drops privileges, for ports under 1024).
        """
        Service.privilegedStartService(self)
        self._bind()

    def startService(self) -> None:
        """
        Start the workers.
        """
        Service.startService(self)
        self._bind()
        for index in range(1, self.count + 1):
            self._spawn(index)
        self.reactor.callWhenRunning(
            callOnSignal, self.reactor, signal.SIGHUP, self.restartWorkers
        )

    def restartWorkers(self) -> None:
        """
        Replace the workers one at a time (C{SIGHUP}), on the same sockets:
        see L{txclws._rolling}.
        """
        if not self._stopping:
            self.rolling.start()

    def _bind(self) -> None:
        if self.sockets:
            return
        for description in self.descriptions:
            option = f"--port {description}"
            try:
                sockets = bindSockets(listenSpec(description), self.count, option)
            except OSError as error:
                self._closeSockets()
                raise CannotListen(f"{option}: cannot listen: {error}") from error
            except CannotListen:
                self._closeSockets()
                raise
            self.sockets.append(sockets)
            _log.info(
                "clws listening on {address} ({endpoint}) for {count} workers, {how}",
                address=_described(sockets[0]),
                endpoint=description,
                count=self.count,
                how="a SO_REUSEPORT socket each"
                if len(sockets) > 1
                else "sharing one socket",
            )

    def _spawn(self, index: int) -> None:
        self._restarts.pop(index, None)
        self.workers[index] = worker = self.launch(index)
        _log.info("started worker {worker} pid={pid}", worker=index, pid=worker.pid)

    def launch(self, index: int) -> WorkerProcess:
        """
        Start a worker C{index} on its sockets; the caller registers it.
        """
        worker = WorkerProcess(index, self._workerEnded)
        childFDs: dict[int, int | str] = {0: "w", 1: "r", 2: "r"}
        for offset, sockets in enumerate(self.sockets):
            sock = sockets[(index - 1) % len(sockets)]
            childFDs[FIRST_FD + offset] = sock.fileno()
        command = [sys.executable, "-c", _WORKER_MAIN, str(index), "--"]
        self.reactor.spawnProcess(
            worker,
            sys.executable,
            [*command, *self.arguments],
            env=_workerEnvironment(),
            childFDs=childFDs,
        )
        return worker

    def _workerEnded(self, worker: WorkerProcess, reason: Failure) -> None:
        for hook in self.endedHooks:
            hook(worker.pid)
        if self.rolling.claims(worker, howEnded(reason)):
            return
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
        if self._stopping:
            _log.info(
                "worker {worker} pid={pid} stopped ({how})",
                worker=worker.index,
                pid=worker.pid,
                how=howEnded(reason),
            )
            return
        delay = self._restartDelay(worker)
        _log.error(
            "worker {worker} pid={pid} died ({how}); starting another in {delay}s",
            worker=worker.index,
            pid=worker.pid,
            how=howEnded(reason),
            delay=delay,
        )
        self._restarts[worker.index] = self.reactor.callLater(
            delay, self._spawn, worker.index
        )

    def _restartDelay(self, worker: WorkerProcess) -> float:
        if time.monotonic() - worker.startedAt >= QUICK_DEATH:
            self._quickDeaths[worker.index] = 0
            return 0.0
        deaths = self._quickDeaths.get(worker.index, 0)
        self._quickDeaths[worker.index] = deaths + 1
        return float(min(0.5 * 2**deaths, MAX_RESTART_DELAY))

    def stopService(self) -> Deferred[Any]:
        """
        Ask every worker to stop (C{SIGTERM}: each closes its clients with
        1001 and exits), kill those still running after the stop timeout,
        and close the sockets once all are gone.
        """
        Service.stopService(self)
        self._stopping = True
        for pending in self._restarts.values():
            pending.cancel()
        self._restarts.clear()
        workers = self._allWorkers()
        _log.info("stopping {count} workers", count=len(workers))
        for worker in workers:
            signalWorker(worker, "TERM")
        deadline = self.reactor.callLater(self.stopTimeout, self._killAll)
        ended = gatherResults([worker.ended for worker in workers])

        def closeSockets(result: object) -> object:
            if deadline.active():
                deadline.cancel()
            self._closeSockets()
            return result

        return ended.addBoth(closeSockets)

    def _allWorkers(self) -> list[WorkerProcess]:
        # Those of a rolling restart too: a replacement, a draining worker.
        return [*self.workers.values(), *self.rolling.extra]

    def _killAll(self) -> None:
        for worker in self._allWorkers():
            _log.warn(
                "worker {worker} pid={pid} did not stop in time: killing it",
                worker=worker.index,
                pid=worker.pid,
            )
            signalWorker(worker, "KILL")

    def _closeSockets(self) -> None:
        # The one place a shared unix: path is removed: the workers leave it.
        for sock in [sock for sockets in self.sockets for sock in sockets]:
            if sock.family == socket.AF_UNIX and not isinstance(sock, InheritedSocket):
                path = sock.getsockname()
                if path:
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
            sock.close()
        self.sockets = []


def _workerEnvironment() -> dict[str, str]:
    """
    This environment, with this process's module path: a worker imports
    the same txclws, and the same C{--resource} modules, as the parent.
    """
    path = [os.path.abspath(entry or os.curdir) for entry in sys.path]
    environment = withoutListenVariables(os.environ)  # systemd's are ours
    return dict(environment, PYTHONPATH=os.pathsep.join(dict.fromkeys(path)))
