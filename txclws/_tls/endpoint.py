# -*- test-case-name: tests.test_stdlibtls -*-
"""
The C{stdssl:} server endpoint: TCP with L{StdlibTLSFactory} over it,
described as Twisted's C{ssl:} is (C{stdssl:PORT:privateKey=KEY
[:certKey=CERT][:interface=ADDRESS][:backlog=N]}), for C{twistd clws
--port} and C{serverFromString}.
"""

from __future__ import annotations

import ssl
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from zope.interface import implementer

from txclws._tls.factory import StdlibTLSFactory

__all__ = ["StdlibSSLServerEndpoint", "parseStdlibSSL", "serverContext"]

#: The options a C{stdssl:} description may give, besides the port.
_OPTIONS = frozenset({"privateKey", "certKey", "interface", "backlog"})


def serverContext(certKey: str, privateKey: str | None = None) -> ssl.SSLContext:
    """
    A server C{ssl.SSLContext} with the standard library's defaults (TLS
    1.2 and later, its cipher list) serving C{certKey}, a PEM certificate
    (and chain), with the PEM key C{privateKey} (default: in C{certKey}).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certKey, privateKey)
    return context


@implementer(IStreamServerEndpoint)
class StdlibSSLServerEndpoint:
    """
    Listens on TCP and serves TLS with L{StdlibTLSFactory}.
    """

    def __init__(
        self,
        reactor: Any,
        port: int,
        context: ssl.SSLContext,
        backlog: int = 50,
        interface: str = "",
    ) -> None:
        self._tcp = TCP4ServerEndpoint(reactor, port, backlog, interface)
        self.context = context

    def listen(self, protocolFactory: Any) -> Deferred[IListeningPort]:
        """
        Listen, wrapping C{protocolFactory}'s connections in TLS.
        """
        listening: Deferred[IListeningPort] = self._tcp.listen(
            StdlibTLSFactory(self.context, protocolFactory)
        )
        return listening


def parseStdlibSSL(reactor: Any, port: str, **options: str) -> StdlibSSLServerEndpoint:
    """
    The endpoint of a C{stdssl:} description's fields.

    @raise ValueError: an option it does not know, or no C{privateKey}.
    """
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ValueError(f"stdssl: does not know {', '.join(sorted(unknown))}")
    if "privateKey" not in options:
        raise ValueError("stdssl: needs privateKey=")
    key = options["privateKey"]
    context = serverContext(options.get("certKey", key), key)
    return StdlibSSLServerEndpoint(
        reactor,
        int(port),
        context,
        int(options.get("backlog", 50)),
        options.get("interface", ""),
    )
