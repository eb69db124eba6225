"""
Benchmark server: Twisted's own twisted.web.websocket (on wsproto).  See
_common.py for what it serves; it has no broadcast API, so both broadcast
modes are a loop of sendTextMessage.
"""

from __future__ import annotations

from _common import BACKLOG, announce, parseArgs, parseCommand, raiseFileLimit
from _twisted import inRounds, listen, logWarnings
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.websocket import WebSocketResource


class EchoProtocol:
    """
    Send every message back to its sender.
    """

    transport = None

    def negotiationStarted(self, transport):
        self.transport = transport

    def negotiationFinished(self):
        pass

    def textMessageReceived(self, message):
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data):
        self.transport.sendBytesMessage(bytes(data))

    def pongReceived(self, payload):
        pass

    def connectionLost(self, reason):
        self.transport = None


class BroadcastProtocol(EchoProtocol):
    """
    Join the subscribers; a text command broadcasts to all of them.
    """

    def __init__(self, subscribers):
        self.subscribers = subscribers

    def negotiationFinished(self):
        # The transport is not hashable: keep the protocols.
        self.subscribers.add(self)

    def textMessageReceived(self, message):
        _, count, text, perTurn = parseCommand(message)
        subscribers = self.subscribers

        def loop():
            for each in subscribers:
                each.transport.sendTextMessage(text)

        inRounds(count, perTurn, loop)

    def connectionLost(self, reason):
        self.subscribers.discard(self)
        self.transport = None


class Factory:
    def __init__(self, build):
        self.build = build

    def buildProtocol(self, request):
        return self.build()


def main():
    args = parseArgs(__doc__.strip().splitlines()[0])
    raiseFileLimit()
    logWarnings()
    subscribers = set()
    root = Resource()
    root.putChild(b"echo", WebSocketResource(Factory(EchoProtocol)))
    root.putChild(
        b"bcast", WebSocketResource(Factory(lambda: BroadcastProtocol(subscribers)))
    )
    port = listen(args, Site(root), BACKLOG)
    announce(port.getHost().port)
    reactor.run()


if __name__ == "__main__":
    main()
