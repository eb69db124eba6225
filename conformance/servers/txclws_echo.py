"""
The txclws server the Autobahn Testsuite runs against: echo at every path,
permessage-deflate accepted, limits high enough for group 9's 16 MiB
messages.

    python conformance/servers/txclws_echo.py PORT
"""

import sys

from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.logger import globalLogBeginner, textFileLogObserver

from txclws import (
    PerMessageDeflate,
    ResourceRegistry,
    WebSocketFactory,
    WebSocketResource,
    anyOrigin,
)


class EchoResource(WebSocketResource):
    """Echo every message back to its sender."""

    def receivedText(self, client, message):
        client.writeText(message)

    def receivedBinary(self, client, message):
        client.writeBinary(message)


def main(port: int) -> None:
    """Serve echo on 127.0.0.1:PORT until killed."""
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])
    registry = ResourceRegistry()
    echo = EchoResource()
    # The testsuite connects to "/" unless told otherwise; serve both.
    for path in ("/", "/echo"):
        registry.register(path, echo, anyOrigin)
    factory = WebSocketFactory(
        registry,
        maxFrameSize=64 << 20,
        maxMessageSize=64 << 20,
        deflate=PerMessageDeflate(),
    )
    endpoint = serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1")
    endpoint.listen(factory)
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
