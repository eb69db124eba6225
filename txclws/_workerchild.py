# -*- test-case-name: tests.test_workers,tests.test_stdsslworkers -*-
"""
One worker of C{twistd clws --workers N}: the C{clws} service on the
listening sockets inherited from the parent (L{txclws._workers}).

The parent runs C{python -c "from txclws._workerchild import main; main()"
INDEX -- CLWS-ARGUMENTS} with the sockets as file descriptors 3, 4, ...
(one per C{--port}, in order) and a pipe as standard input.  The worker
parses the same arguments, makes the same service on those sockets
(L{adoptedEndpoints}), writes its log as lines the parent relays
(L{formatLine}), stops on C{SIGTERM} (closing its clients with 1001), and
stops too when the pipe ends, whichever way the parent went.

A systemd: port's socket (one, shared) is adopted as systemd's
(L{InheritedEndpoint}); the worker's environment has no C{LISTEN_FDS}.
A unix: socket's path belongs to the parent: a worker's port never
unlinks it when it stops (L{txclws._adopt.KeptUNIXPort}), so the other workers, and
this one's replacement, keep serving on it.

@since: 0.2.0
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, cast

from twisted.internet import fdesc
from twisted.internet.defer import Deferred, execute
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorFromThreads,
    IReadDescriptor,
    IStreamServerEndpoint,
)
from twisted.logger import (
    FileLogObserver,
    Logger,
    LogLevel,
    eventAsText,
    globalLogBeginner,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws._adopt import adoptListeningSocket
from txclws._ports import ListenSpec, listenSpec
from txclws._rolling import callOnSignal, drainWorker
from txclws._systemd import InheritedEndpoint, isSystemd
from txclws._tls.factory import StdlibTLSFactory
from txclws._workers import FIRST_FD
from txclws.tap import Options, makeService

__all__ = ["AdoptedEndpoint", "adoptedEndpoints", "formatLine", "main"]

_log = Logger()


@implementer(IStreamServerEndpoint)
class AdoptedEndpoint:
    """
    An endpoint that "listens" by adopting a listening socket inherited
    from the parent, wrapped in TLS for an ssl: port (Twisted's
    C{TLSMemoryBIOFactory}) and a stdssl: one (L{StdlibTLSFactory}), with
    the context this worker built from the port's description.
    """

    def __init__(self, reactor: Any, fileno: int, spec: ListenSpec) -> None:
        self.reactor = reactor
        self.fileno = fileno
        self.spec = spec

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Serve C{factory} on the inherited socket.
        """
        if self.spec.contextFactory is not None:
            # Imported here: it needs pyOpenSSL, which a worker serving no
            # ssl: port may not have (a plain pip install .).
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self.spec.contextFactory, False, factory)
        elif self.spec.sslContext is not None:
            factory = StdlibTLSFactory(self.spec.sslContext, factory)
        return execute(self._adopt, factory)

    def _adopt(self, factory: IProtocolFactory) -> IListeningPort:
        # A unix: socket keeps the mode the parent set (mode=).
        mode = self.spec.mode if self.spec.kind == "unix" else None
        return adoptListeningSocket(self.reactor, self.fileno, factory, mode)


def adoptedEndpoints(
    reactor: Any, descriptions: Sequence[str]
) -> list[IStreamServerEndpoint]:
    """
    The endpoints of a worker: one per port, on the inherited sockets (a
    systemd: one as systemd's, L{InheritedEndpoint}).
    """
    return [
        InheritedEndpoint(reactor, FIRST_FD + offset)
        if isSystemd(description)
        else AdoptedEndpoint(reactor, FIRST_FD + offset, listenSpec(description))
        for offset, description in enumerate(descriptions)
    ]


@implementer(IReadDescriptor)
class _ParentWatch:
    """
    Standard input, a pipe from the parent: it ends when the parent does,
    however it does, and then the worker stops.
    """

    def __init__(self, stop: Any, stopping: Any) -> None:
        """
        @param stop: stop the worker.
        @param stopping: whether it is already stopping (the reactor then
            disconnects this too, which is not the parent going).
        """
        self._stop = stop
        self._stopping = stopping
        fdesc.setNonBlocking(0)

    def fileno(self) -> int:
        return 0

    # IReadDescriptor says Failure, but the reactor wants an exception, as
    # Twisted's own CONNECTION_DONE is: posixbase._disconnectSelectable
    # looks up why.__class__ and wraps it in a Failure itself.
    def doRead(self) -> Exception | None:  # type: ignore[override]
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return None
        return None if data else EOFError("the parent is gone")

    def connectionLost(self, reason: Failure) -> None:
        # An end of file, or a hangup (the reactor reports it as a lost
        # connection), unless the worker is stopping anyway.
        if not self._stopping():
            _log.warn("the parent process is gone: stopping")
            self._stop()

    def logPrefix(self) -> str:
        return "parent-watch"


def formatLine(event: Any) -> str:
    """
    A worker's log line: C{[namespace#level] text}, one line per line of
    text; the parent adds the time and the worker's number.
    """
    text = eventAsText(event, includeTimestamp=False, includeSystem=False)
    level = event.get("log_level", LogLevel.info).name
    prefix = f"[{event.get('log_namespace', '-')}#{level}] "
    return "".join(f"{prefix}{line}\n" for line in text.splitlines())


def main(argv: Sequence[str] | None = None) -> None:
    """
    Run a worker: C{main INDEX -- CLWS-ARGUMENTS}, with the listening
    sockets from file descriptor 3 on; return once it has stopped.
    """
    parser = argparse.ArgumentParser(prog="txclws-worker")
    parser.add_argument("index", type=int)
    parser.add_argument("arguments", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    arguments = args.arguments[1:] if args.arguments[:1] == ["--"] else args.arguments
    # Ctrl-C in a terminal reaches the whole process group: the parent
    # decides, and stops the workers with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    globalLogBeginner.beginLoggingTo(
        [FileLogObserver(sys.stdout, formatLine)], redirectStandardIO=False
    )
    from twisted.internet import reactor

    config = Options()
    config.inheritedPorts = True
    config.parseOptions(arguments)
    service = makeService(config, adoptedEndpoints(reactor, config["ports"]))
    stop = _serve(reactor, service)
    # The rolling restart's drain (txclws._rolling): the parent sends it
    # once this worker's replacement is ready.
    reactor.callWhenRunning(
        callOnSignal,
        reactor,
        signal.SIGUSR2,
        lambda: drainWorker(reactor, service, config, stop),
    )
    # The parent waits for this line (WorkerProcess.ready): the ports have
    # adopted their sockets.
    _log.info("worker {index} ready", index=args.index)
    reactor.run()


def _serve(reactor: Any, service: Any) -> Callable[[], None]:
    """
    Start C{service}, and stop the reactor (stopping the service first) on
    C{SIGTERM} or when the parent goes.

    @return: the stop, at most once, that these use.
    """
    stopping: list[bool] = []

    def stop() -> None:
        if not stopping:
            stopping.append(True)
            reactor.stop()

    def onSignal(number: int, frame: object) -> None:
        # Twisted's reactors provide IReactorFromThreads; the type Twisted
        # gives the global one (_IReactorCommon) leaves it out.
        cast(IReactorFromThreads, reactor).callFromThread(stop)

    reactor.addReader(_ParentWatch(stop, lambda: bool(stopping)))
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    service.privilegedStartService()
    service.startService()
    reactor.callWhenRunning(signal.signal, signal.SIGTERM, onSignal)
    return stop
