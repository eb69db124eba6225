# -*- test-case-name: tests.test_jsonlog -*-
"""
C{twistd clws --json-log FILE}: every log event, one JSON object a line,
through C{twisted.logger}'s own C{jsonFileLogObserver} (issue 17), for a
log shipper.

The events are those of the text log, with their fields as keys: C{open}
(C{peer}, C{resource}, C{version}), C{closed} (C{code}, C{reason},
C{duration}), C{refused} (C{status}, C{reason}), the drops and policy
closes (C{cause}: C{keepalive}, C{idle}, C{slow}, C{gone},
C{close-timeout}, C{tls-timeout}, C{refusal-unread}); each also has
Twisted's C{log_format}, C{log_namespace}, C{log_level} and C{log_time}.
Records are separated by the record separator (RFC 7464), as
C{jsonFileLogObserver} writes them; C{eventsFromJSONLogFile} reads them.

With C{--workers}, each worker writes its own events to the file (each
record in one write to a file opened for appending), and the parent its
own: the worker lines it relays into its text log are left out.

@since: 0.2.0
"""

from __future__ import annotations

from typing import IO, Any

from twisted.application.service import Service
from twisted.logger import ILogObserver, globalLogPublisher, jsonFileLogObserver
from zope.interface import implementer

__all__ = ["RELAY_NAMESPACE", "JsonLog"]

#: The namespace of a worker's lines as its parent relays them.
RELAY_NAMESPACE = "txclws._workerprocess"


@implementer(ILogObserver)
class _NotRelayed:
    """
    Pass every event on to C{observer} but a worker's line relayed by the
    parent: the worker wrote the event itself, with its fields.
    """

    def __init__(self, observer: ILogObserver) -> None:
        self._observer = observer

    def __call__(self, event: Any) -> None:
        if event.get("log_namespace") == RELAY_NAMESPACE and "line" in event:
            return
        self._observer(event)


class JsonLog(Service):
    """
    While running, write every log event to a file as JSON.
    """

    _file: IO[str] | None = None
    _observer: ILogObserver | None = None

    def __init__(
        self, path: str, publisher: Any = globalLogPublisher, reactor: Any = None
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.path = path
        self.publisher = publisher
        self.reactor = reactor

    def privilegedStartService(self) -> None:
        """
        Open the file before privileges are dropped (as twistd's own log
        file) and before the ports listen, so their lines go in too.
        """
        Service.privilegedStartService(self)
        self._open()

    def startService(self) -> None:
        """
        Start writing, if L{privilegedStartService} has not.
        """
        Service.startService(self)
        self._open()

    def _open(self) -> None:
        if self._file is not None:
            return
        self._file = open(self.path, "a", encoding="utf-8")
        self._observer = _NotRelayed(jsonFileLogObserver(self._file))
        self.publisher.addObserver(self._observer)
        # Not at stopService: the clients' closes, logged while the other
        # services stop (which a MultiService does not wait for), go in too.
        self.reactor.addSystemEventTrigger("after", "shutdown", self.close)

    def close(self) -> None:
        """
        Stop writing, and close the file.
        """
        if self._observer is not None:
            self.publisher.removeObserver(self._observer)
            self._observer = None
        if self._file is not None:
            self._file.close()
            self._file = None
