# -*- test-case-name: tests.test_workers -*-
"""
A worker process of C{twistd clws --workers N}, as its parent sees it: its
output relayed into the parent's log at the level of each line, its end
reported.

@since: 0.2.0
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.error import (
    ProcessDone,
    ProcessExitedAlready,
    ProcessTerminated,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

__all__ = ["WorkerProcess", "howEnded", "signalWorker"]

#: The worker's lines keep the namespace the parent has always logged them in.
_log = Logger(namespace="txclws._workers")

#: The level of a worker's log line: C{[namespace#level] text}, as
#: L{txclws._workerchild.formatLine} writes it.
_LINE_LEVEL = re.compile(r"\[[^\]#]*#(debug|info|warn|error|critical)\] ")


class WorkerProcess(ProcessProtocol):
    """
    One worker process, seen from the parent: relays its output to the
    parent's log, line by line, and reports its end.

    @ivar index: the worker's number, 1 to N.
    @ivar pid: its process id, once started.
    @ivar startedAt: when it was started (C{time.monotonic()}).
    @ivar ended: fires (with C{None}) once it has ended and been reported.
    @ivar ready: fires (with C{None}) once it has said it serves its
        sockets: its line C{[txclws._workerchild#info] worker N ready},
        written after its ports have adopted them (the rolling restart,
        L{txclws._rolling}, waits for it).  Never fires if it dies first.
    """

    def __init__(
        self, index: int, onEnded: Callable[[WorkerProcess, Failure], None]
    ) -> None:
        """
        @param onEnded: called with this worker and why it ended.
        """
        self._onEnded = onEnded
        self.index = index
        self.pid = 0
        self.startedAt = time.monotonic()
        self.ended: Deferred[None] = Deferred()
        self.ready: Deferred[None] = Deferred()
        self._readyLine = f"[txclws._workerchild#info] worker {index} ready"
        self._partial = {1: b"", 2: b""}

    def connectionMade(self) -> None:
        # transport is Optional on ProcessProtocol; it is set by now.
        assert self.transport is not None
        self.pid = self.transport.pid

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        *lines, self._partial[childFD] = (self._partial[childFD] + data).split(b"\n")
        for line in lines:
            self._relay(childFD, line)

    def _relay(self, childFD: int, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if not line:
            return
        if childFD == 1 and line == self._readyLine and not self.ready.called:
            self.ready.callback(None)
        level = LogLevel.error if childFD == 2 else LogLevel.info
        found = _LINE_LEVEL.match(line)
        if found is not None:
            level = LogLevel.levelWithName(found.group(1))
        _log.emit(
            level,
            "worker {worker} pid={pid}: {line}",
            worker=self.index,
            pid=self.pid,
            line=line,
        )

    def processEnded(self, reason: Failure) -> None:
        for childFD, rest in self._partial.items():
            self._relay(childFD, rest)
        self._onEnded(self, reason)
        self.ended.callback(None)


def signalWorker(worker: WorkerProcess, name: str | int) -> None:
    """
    Send the signal C{name} (C{"TERM"}, ..., or a number such as
    C{signal.SIGUSR2}, which Twisted has no name for) to C{worker}, unless
    it has exited already.
    """
    # transport is Optional on ProcessProtocol; set once the worker is spawned.
    transport = worker.transport
    assert transport is not None
    try:
        transport.signalProcess(name)
    except ProcessExitedAlready:  # it is ending anyway
        pass


def howEnded(reason: Failure) -> str:
    """
    How a process ended, for the log: its exit code, or the signal.
    """
    error = reason.value
    if isinstance(error, ProcessTerminated) and error.signal is not None:
        try:
            name = signal.Signals(error.signal).name
        except ValueError:
            name = "?"
        return f"killed by signal {error.signal} ({name})"
    if isinstance(error, (ProcessDone, ProcessTerminated)):
        return f"exit code {error.exitCode}"
    return str(error)
