# -*- test-case-name: tests.test_stdlibtls -*-
"""
L{StdlibTLSFactory}: wraps a factory's connections in L{StdlibTLSProtocol}.
"""

from __future__ import annotations

import ssl
from typing import Any

from twisted.protocols.policies import WrappingFactory

from txclws._tls.protocol import StdlibTLSProtocol

__all__ = ["StdlibTLSFactory"]


class StdlibTLSFactory(WrappingFactory[StdlibTLSProtocol]):
    """
    Wraps C{wrappedFactory}'s connections in TLS with C{context}, an
    C{ssl.SSLContext}.  If the wrapped factory names protocols for ALPN
    (C{IProtocolNegotiationFactory.acceptableProtocols}, as every
    L{txclws.WebSocketFactory} and L{txclws.web.WebSocketSite} does), they
    are set on C{context}, in that order of preference.
    """

    protocol = StdlibTLSProtocol

    def __init__(
        self,
        context: ssl.SSLContext,
        wrappedFactory: Any,
        serverSide: bool = True,
    ) -> None:
        super().__init__(wrappedFactory)  # type: ignore[no-untyped-call]
        self.context = context
        self.serverSide = serverSide
        #: The protocols served by ALPN, in order of preference, or C{[]}.
        self.alpn: list[bytes] = []
        acceptable = getattr(wrappedFactory, "acceptableProtocols", None)
        if serverSide and acceptable is not None:
            self.alpn = list(acceptable())
            context.set_alpn_protocols([p.decode("ascii") for p in self.alpn])
