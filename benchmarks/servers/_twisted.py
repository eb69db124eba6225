"""
Twisted set-up shared by the Twisted-based benchmark servers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)


def listen(args: Any, factory: Any, backlog: int) -> Any:
    """
    Listen on C{args.port} with C{factory}: plain TCP, or TLS by Twisted's
    own way (C{listenSSL}: C{TLSMemoryBIOProtocol} over pyOpenSSL) when
    C{--tls-cert} is given.

    @return: the listening port.
    """
    if not args.tls_cert:
        return reactor.listenTCP(
            args.port, factory, backlog=backlog, interface=args.host
        )
    from twisted.internet.ssl import DefaultOpenSSLContextFactory

    context = DefaultOpenSSLContextFactory(args.tls_key, args.tls_cert)
    return reactor.listenSSL(
        args.port, factory, context, backlog=backlog, interface=args.host
    )


def logWarnings() -> None:
    """
    Log warnings and errors to standard error; drop the rest, as a
    production server would.
    """
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    observer = FilteringLogObserver(textFileLogObserver(sys.stderr), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def inRounds(count: int, perTurn: int, sendOne: Callable[[], None]) -> None:
    """
    Call C{sendOne} C{count} times, C{perTurn} times per reactor turn (the
    transports write between two turns).
    """

    def turn(left: int) -> None:
        for _ in range(min(left, perTurn)):
            sendOne()
        if left > perTurn:
            reactor.callLater(0, turn, left - perTurn)

    if count > 0:
        turn(count)
