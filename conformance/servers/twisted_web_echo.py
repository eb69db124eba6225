"""Reference echo server: Twisted's own ``twisted.web.websocket`` (>= 25.5).

Usage: python twisted_web_echo.py PORT [--host 127.0.0.1]

Serves a ``WebSocketResource`` at ``/`` that echoes every text and binary
message back unchanged.  That implementation (built on wsproto) offers no
message-size limit and no permessage-deflate, so 16 MiB messages (group 9)
pass through and the compression groups 12/13 come out UNIMPLEMENTED.

Needs ``Twisted[websocket]``; conformance/runner.py runs it from its own
reference venv (see servers/requirements.txt).
"""

from __future__ import annotations

import argparse
import sys

try:
    from twisted.web.websocket import WebSocketResource, WebSocketTransport
except ImportError as exc:  # Twisted < 25.5 or the websocket extra missing
    sys.exit(
        f"twisted.web.websocket is not usable here ({exc}); "
        "install Twisted[websocket] >= 25.5"
    )

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request, Site


class EchoProtocol:
    """A ``WebSocketProtocol`` that sends every message straight back."""

    transport: WebSocketTransport | None = None

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def textMessageReceived(self, message: str) -> None:
        assert self.transport is not None
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        assert self.transport is not None
        self.transport.sendBytesMessage(bytes(data))

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        self.transport = None


class EchoFactory:
    """A ``WebSocketServerFactory``: one ``EchoProtocol`` per connection."""

    def buildProtocol(self, request: Request) -> EchoProtocol:
        return EchoProtocol()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])

    root = Resource()
    root.putChild(b"", WebSocketResource(EchoFactory()))
    reactor.listenTCP(args.port, Site(root), interface=args.host)
    print(
        f"twisted.web.websocket echo server on ws://{args.host}:{args.port}", flush=True
    )
    reactor.run()


if __name__ == "__main__":
    main()
