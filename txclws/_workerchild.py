# -*- test-case-name: tests.test_workers -*-
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

A unix: socket's path belongs to the parent: a worker's port never
unlinks it when it stops (L{_SharedUNIXPort}), so the other workers, and
this one's replacement, keep serving on it.

@since: 0.2.0
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any, cast

from twisted.internet import fdesc, tcp, unix
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
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws._ports import ListenSpec, listenSpec
from txclws._rolling import callOnSignal, drainWorker
from txclws._workers import FIRST_FD
from txclws.tap import Options, makeService

__all__ = ["AdoptedEndpoint", "adoptedEndpoints", "formatLine", "main"]

_log = Logger()


class _SharedUNIXPort(unix.Port):
    """
    A unix: port on a listening socket that the parent owns and other
    workers share: stopping it closes this worker's descriptor and leaves
    the path where it is.
    """

    # tcp.Port does not shut down a socket it adopted, but unix.Port does
    # (it never clears this): shutdown() of a listening socket stops it
    # listening for every process sharing it, not just this one.
    _shouldShutdown = False

    def connectionLost(self, reason: Failure) -> None:
        # unix.Port.connectionLost unlinks the socket's path, which the
        # other workers still serve on and which a replacement worker will
        # adopt: skip it.  The parent removes the path, once, at the end.
        tcp.Port.connectionLost(self, reason)


@implementer(IStreamServerEndpoint)
class AdoptedEndpoint:
    """
    An endpoint that "listens" by adopting a listening socket inherited
    from the parent, wrapped in TLS for an ssl: port.
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
            factory = TLSMemoryBIOFactory(self.spec.contextFactory, False, factory)
        return execute(self._adopt, factory)

    def _adopt(self, factory: IProtocolFactory) -> IListeningPort:
        port: IListeningPort
        if self.spec.kind == "unix":
            # What reactor.adoptStreamPort does for AF_UNIX, with our port.
            shared = _SharedUNIXPort._fromListeningDescriptor(  # type: ignore[no-untyped-call]  # mypy#16651
                self.reactor, self.fileno, factory
            )
            # startListening chmods the path to the port's mode, even on an
            # adopted socket: keep the one the parent set (mode=).
            shared.mode = self.spec.mode
            shared.startListening()
            port = shared
        else:
            port = self.reactor.adoptStreamPort(
                self.fileno, _family(self.fileno), factory
            )
        os.close(self.fileno)  # the port holds its own duplicate
        return port


def _family(fileno: int) -> int:
    sock = socket.socket(fileno=fileno)
    try:
        return int(sock.family)
    finally:
        sock.detach()


def adoptedEndpoints(
    reactor: Any, descriptions: Sequence[str]
) -> list[AdoptedEndpoint]:
    """
    The endpoints of a worker: one per port, on the inherited sockets.
    """
    return [
        AdoptedEndpoint(reactor, FIRST_FD + offset, listenSpec(description))
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
