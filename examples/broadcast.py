"""
A broadcast resource: every message a client sends goes to every connected
client, framed once for all of them by writeToClientsText.

    python examples/broadcast.py [PORT]

Then connect two clients to ws://localhost:12345/broadcast.
"""

import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

from txclws import (
    WebSocketResource,
    originPrefix,
    registerGlobalResource,
    runServer,
    writeToClientsBinary,
    writeToClientsText,
)


class BroadcastResource(WebSocketResource):
    """Send each message to every client connected to this resource."""

    def __init__(self):
        self.clients = set()

    def clientConnected(self, client):
        self.clients.add(client)

    def clientDisconnected(self, client):
        self.clients.discard(client)

    def receivedText(self, client, message):
        writeToClientsText(self.clients, message)

    def receivedBinary(self, client, message):
        writeToClientsBinary(self.clients, message)


def main(port: int = 12345) -> None:
    """Register /broadcast and serve it until interrupted."""
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    registerGlobalResource(
        "/broadcast",
        BroadcastResource(),
        originPrefix("http://127.0.0.1", "http://localhost"),
    )
    runServer(port)
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12345)
