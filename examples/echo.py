"""
The CLWS echo example, in Python: ws://localhost:12345/echo echoes every
message back.

    python examples/echo.py [PORT]
"""

import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

from txclws import (
    WebSocketResource,
    originPrefix,
    registerGlobalResource,
    runServer,
)


class EchoResource(WebSocketResource):
    """Echo every text and binary message to the client that sent it."""

    def clientConnected(self, client):
        print(f"got connection on echo server from {client.host} : {client.port}")

    def clientDisconnected(self, client):
        print(f"Client disconnected from resource {self}: {client}")

    def receivedText(self, client, message):
        client.writeText(message)

    def receivedBinary(self, client, message):
        client.writeBinary(message)


def main(port: int = 12345) -> None:
    """Register /echo and serve it until interrupted."""
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    registerGlobalResource(
        "/echo",
        EchoResource(),
        originPrefix("http://127.0.0.1", "http://localhost"),
    )
    runServer(port)
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12345)
