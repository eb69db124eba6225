"""
Benchmark server: txclws.  See _common.py for what it serves.  With
C{--pure}, txclws's optional NumPy masking is turned off; with
C{--stdssl}, TLS is served by txclws' C{stdssl:} endpoint instead of
Twisted's C{ssl:}.  Like C{twistd clws}, it tunes glibc's malloc for its
largest message (L{txclws.tuneAllocatorForMessages}) unless given
C{--no-tune-allocator}.
"""

from __future__ import annotations

import inspect
import sys

from _common import BACKLOG, MAX_SIZE, announce, parseArgs, parseCommand, raiseFileLimit
from _twisted import inRounds, logWarnings
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString

from txclws import (
    PerMessageDeflate,
    ResourceRegistry,
    WebSocketFactory,
    WebSocketResource,
    anyOrigin,
    writeToClientsText,
)


class EchoResource(WebSocketResource):
    """
    Send every message back to its sender.
    """

    def receivedText(self, client, message):
        client.writeText(message)

    def receivedBinary(self, client, message):
        client.writeBinary(message)


class BroadcastResource(WebSocketResource):
    """
    Keep the clients; a text command broadcasts to all of them.
    """

    def __init__(self):
        self.clients = set()

    def clientConnected(self, client):
        self.clients.add(client)

    def clientDisconnected(self, client):
        self.clients.discard(client)

    def receivedText(self, client, message):
        mode, count, text, perTurn = parseCommand(message)
        clients = self.clients
        if mode == "fanout":
            inRounds(count, perTurn, lambda: writeToClientsText(clients, text))
        else:

            def loop():
                for each in clients:
                    each.writeText(text)

            inRounds(count, perTurn, loop)


def chooseMasking(pure):
    """
    Report (and with C{pure}, turn off) txclws's optional NumPy masking.
    """
    from txclws._core import mask as _mask

    if pure and hasattr(_mask, "_np"):
        _mask._np = None
    using = getattr(_mask, "usingNumpy", lambda: False)()
    print(f"txclws masking: {'numpy' if using else 'pure Python'}", file=sys.stderr)


def tuneAllocator(off):
    """
    Tune glibc's malloc for MAX_SIZE messages as the daemon does by
    default, unless C{off} (or this txclws has no such function); say what.
    """
    import txclws

    tune = getattr(txclws, "tuneAllocatorForMessages", None)
    if off or tune is None:
        print("txclws allocator: untouched", file=sys.stderr)
        return
    print(f"txclws allocator: {tune(MAX_SIZE)}", file=sys.stderr)


def main():
    args = parseArgs(__doc__.strip().splitlines()[0])
    raiseFileLimit()
    chooseMasking(args.pure)
    tuneAllocator(args.no_tune_allocator)
    logWarnings()
    registry = ResourceRegistry()
    registry.register("/echo", EchoResource(), anyOrigin)
    registry.register("/bcast", BroadcastResource(), anyOrigin)
    options = {"maxFrameSize": MAX_SIZE, "maxMessageSize": MAX_SIZE}
    if "pingInterval" in inspect.signature(WebSocketFactory).parameters:
        options["pingInterval"] = None  # no keepalive pings, like the others
    if args.deflate:
        options["deflate"] = PerMessageDeflate()
    factory = WebSocketFactory(registry, **options)
    description = f"tcp:{args.port}:interface={args.host}:backlog={BACKLOG}"
    if args.tls_cert:
        # wss:// the documented ways: an ssl: endpoint (Twisted's TLS), or
        # with --stdssl txclws' stdssl: endpoint (the standard library's).
        kind = "stdssl" if args.stdssl else "ssl"
        description = (
            f"{kind}:{args.port}:interface={args.host}:backlog={BACKLOG}"
            f":privateKey={args.tls_key}:certKey={args.tls_cert}"
        )
    endpoint = serverFromString(reactor, description)
    endpoint.listen(factory).addCallback(lambda port: announce(port.getHost().port))
    reactor.run()


if __name__ == "__main__":
    main()
