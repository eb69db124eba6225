"""Reference echo server: Autobahn|Python on Twisted.

Usage: python autobahn_echo.py PORT [--host 127.0.0.1] [--max-message-size N]

Echoes every text and binary message back unchanged, and accepts
permessage-deflate offers (Autobahn Testsuite groups 12 and 13).  Messages
and frames up to 16 MiB are allowed by default (group 9 sends 16 MiB).

Like the testee server of the Autobahn Testsuite itself, it sets
``failByDrop=False`` ("spec conformance"): on a protocol error it sends a
close frame after what it already wrote, instead of aborting the TCP
connection (Autobahn's default), which would drop pending echoes and make
cases 3.2, 3.3, 4.x.3/4 and 5.15 NON-STRICT.  ``--fail-by-drop`` restores
the default.

Needs ``autobahn[twisted]``; conformance/runner.py runs it from its own
reference venv (see servers/requirements.txt).
"""

from __future__ import annotations

import argparse
import sys

from autobahn.twisted.websocket import (
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)
from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024


class EchoProtocol(WebSocketServerProtocol):
    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)


def accept_permessage_deflate(offers):
    """Accept the first permessage-deflate offer the client makes, as is."""
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--max-message-size", type=int, default=DEFAULT_MAX_MESSAGE_SIZE
    )
    parser.add_argument("--fail-by-drop", action="store_true")
    args = parser.parse_args(argv)

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])

    factory = WebSocketServerFactory(f"ws://{args.host}:{args.port}")
    factory.protocol = EchoProtocol
    factory.setProtocolOptions(
        perMessageCompressionAccept=accept_permessage_deflate,
        maxMessagePayloadSize=args.max_message_size,
        maxFramePayloadSize=args.max_message_size,
        failByDrop=args.fail_by_drop,
    )
    reactor.listenTCP(args.port, factory, interface=args.host)
    print(f"autobahn echo server on ws://{args.host}:{args.port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
