"""
The C{twistd clws} plugin: a WebSocket server with the txclws demo.

Only names L{txclws.tap}; Twisted imports it when C{clws} is run, so
scanning plugins stays cheap.  There is no C{twisted/plugins/__init__.py}:
C{twisted.plugins} is Twisted's package, and this file drops into it.
"""

from twisted.application.service import ServiceMaker

TxCLWS = ServiceMaker(
    "txclws",
    "txclws.tap",
    "A WebSocket server (CLWS for Twisted): the echo and chat demo, or your "
    "resources, with a twisted.web site on the same port.",
    "clws",
)
