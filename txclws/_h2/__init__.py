"""
HTTP/2 (RFC 9113) for txclws: WebSockets as extended CONNECT streams
(RFC 8441) and C{twisted.web} pages, multiplexed on one connection, built on
the C{h2} library (the extra C{txclws[http2]}).
"""
