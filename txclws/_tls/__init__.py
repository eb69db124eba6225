# -*- test-case-name: tests.test_stdlibtls -*-
"""
TLS on the standard library's C{ssl} module behind Twisted's transport
interfaces (issue 16): L{StdlibTLSFactory} and the C{stdssl:} endpoint.
"""

from txclws._tls.endpoint import StdlibSSLServerEndpoint, parseStdlibSSL, serverContext
from txclws._tls.factory import StdlibTLSFactory
from txclws._tls.protocol import StdlibTLSProtocol

__all__ = [
    "StdlibSSLServerEndpoint",
    "StdlibTLSFactory",
    "StdlibTLSProtocol",
    "parseStdlibSSL",
    "serverContext",
]
