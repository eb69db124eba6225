"""
The C{stdssl:} server endpoint (txclws): TLS on the standard library's
C{ssl} module, described as C{ssl:} is.  Imports txclws only when a
description is parsed, so scanning plugins stays cheap.
"""

from typing import Any

from twisted.internet.interfaces import IStreamServerEndpointStringParser
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IPlugin, IStreamServerEndpointStringParser)
class _StdlibSSLParser:
    prefix = "stdssl"

    def parseStreamServer(self, reactor: Any, *args: str, **kwargs: str) -> Any:
        from txclws._tls.endpoint import parseStdlibSSL

        return parseStdlibSSL(reactor, *args, **kwargs)


stdsslEndpoint = _StdlibSSLParser()
