"""
Benchmark server: Autobahn|Python on Twisted, with its NVX native masking
and UTF-8 validation (the server exits if they are not in use).  See
_common.py for what it serves.
"""

from __future__ import annotations

import sys

from _common import BACKLOG, MAX_SIZE, announce, parseArgs, parseCommand, raiseFileLimit
from _twisted import inRounds, listen, logWarnings
from twisted.internet import reactor


def checkAccelerated():
    """
    Exit unless Autobahn runs its native masker and UTF-8 validator.
    """
    from autobahn import websocket
    from autobahn.websocket import utf8validator, xormasker

    kinds = [
        type(xormasker.create_xor_masker(b"abcd")),
        type(xormasker.create_xor_masker(b"abcd", 1 << 20)),
        utf8validator.Utf8Validator,
    ]
    names = ", ".join(f"{kind.__module__}.{kind.__name__}" for kind in kinds)
    native = all(kind.__module__.startswith("autobahn.nvx.") for kind in kinds)
    if not (websocket.USES_NVX and native):
        sys.exit(f"autobahn is not accelerated: USES_NVX={websocket.USES_NVX}; {names}")
    print(f"autobahn accelerators: {names}", file=sys.stderr, flush=True)


def main():
    args = parseArgs(__doc__.strip().splitlines()[0])
    raiseFileLimit()
    checkAccelerated()
    logWarnings()
    from autobahn.twisted.websocket import (
        WebSocketServerFactory,
        WebSocketServerProtocol,
    )

    class BenchProtocol(WebSocketServerProtocol):
        def onConnect(self, request):
            self.broadcast = request.path == "/bcast"

        def onOpen(self):
            if self.broadcast:
                self.factory.subscribers.add(self)

        def onClose(self, wasClean, code, reason):
            self.factory.subscribers.discard(self)

        def onMessage(self, payload, isBinary):
            if not self.broadcast:
                self.sendMessage(payload, isBinary)
                return
            mode, count, text, perTurn = parseCommand(payload.decode("utf-8"))
            subscribers = self.factory.subscribers
            data = text.encode("utf-8")
            if mode == "fanout":

                def fanout():
                    prepared = self.factory.prepareMessage(data, isBinary=False)
                    for each in subscribers:
                        each.sendPreparedMessage(prepared)

                inRounds(count, perTurn, fanout)
            else:

                def loop():
                    for each in subscribers:
                        each.sendMessage(data, False)

                inRounds(count, perTurn, loop)

    factory = WebSocketServerFactory()
    factory.protocol = BenchProtocol
    factory.subscribers = set()
    factory.setProtocolOptions(
        maxMessagePayloadSize=MAX_SIZE,
        maxFramePayloadSize=MAX_SIZE,
        autoPingInterval=0,
    )
    if args.deflate:
        from autobahn.websocket.compress import (
            PerMessageDeflateOffer,
            PerMessageDeflateOfferAccept,
        )

        def accept(offers):
            for offer in offers:
                if isinstance(offer, PerMessageDeflateOffer):
                    return PerMessageDeflateOfferAccept(offer)
            return None

        factory.setProtocolOptions(perMessageCompressionAccept=accept)
    port = listen(args, factory, BACKLOG)
    announce(port.getHost().port)
    reactor.run()


if __name__ == "__main__":
    main()
