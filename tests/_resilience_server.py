"""
A txclws server in a process of its own, for the resilience tests that
measure the server's memory (C{/proc/PID/status}) and so cannot share the
test process.

Usage: C{python tests/_resilience_server.py [LIMITS]}, where LIMITS is a JSON
object of L{WebSocketFactory} keyword arguments.  It listens on a free port
of 127.0.0.1, prints C{LISTENING <port>} and serves until killed:

  /echo   sends every message back (L{txclws.demo.EchoResource});
  /flood  keeps its clients; the text C{"COUNT SIZE"} from one of them
          broadcasts COUNT binary messages of SIZE bytes to all of them,
          each starting with its sequence number (8 bytes, big-endian),
          then the text C{"done"} to the readers.  Readers are the clients
          that connected with the query C{role=reader}; the broadcast waits
          for their C{drained()} after each message, so it runs as fast as
          they read and not as fast as the others do.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

from txclws import (
    ResourceRegistry,
    WebSocketFactory,
    WebSocketResource,
    anyOrigin,
    writeToClientsBinary,
    writeToClientsText,
)
from txclws.demo import EchoResource


class FloodResource(WebSocketResource):
    """
    Broadcasts numbered messages to its clients on demand, paced by the
    readers alone.
    """

    def __init__(self) -> None:
        self.clients: list[Any] = []

    def clientConnected(self, client: Any) -> None:
        self.clients.append(client)

    def clientDisconnected(self, client: Any) -> None:
        self.clients.remove(client)

    def receivedText(self, client: Any, message: str) -> None:
        count, size = map(int, message.split())
        self.broadcast(count, size)

    @inlineCallbacks
    def broadcast(self, count: int, size: int) -> Generator[Deferred[Any], Any, None]:
        filler = b"\xa5" * (size - 8)
        for sequence in range(count):
            writeToClientsBinary(self.clients, struct.pack("!Q", sequence) + filler)
            yield gatherResults([reader.drained() for reader in self.readers()])
        writeToClientsText(self.readers(), "done")

    def readers(self) -> list[Any]:
        return [each for each in self.clients if each.queryString == "role=reader"]


def main() -> None:
    limits = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    # Warnings and errors only: a log line per connection costs memory too.
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    observer = FilteringLogObserver(textFileLogObserver(sys.stderr), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    registry = ResourceRegistry()
    registry.register("/echo", EchoResource(), anyOrigin)
    registry.register("/flood", FloodResource(), anyOrigin)
    factory = WebSocketFactory(registry, **limits)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    sys.stdout.write(f"LISTENING {port.getHost().port}\n")
    sys.stdout.flush()
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
