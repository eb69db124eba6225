# -*- test-case-name: tests.test_clienthandshake -*-
"""
A tunnel through an HTTP proxy (RFC 9110 section 9.3.6, C{CONNECT}), over
bytes: the request, and the reading of the proxy's answer.

A client behind a proxy opens the tunnel first, then (for C{wss://}) starts
TLS inside it, then sends its opening handshake (RFC 6455 section 4.1: "if
the client is configured to use a proxy ... connect to that proxy and ask
it to open a TCP connection to the host given by /host/ and the port given
by /port/").
"""

from __future__ import annotations

from txclws._core.clienthandshake import MAX_RESPONSE_HEAD, readResponseHead
from txclws._core.errors import HandshakeError, HandshakeFailed
from txclws._core.request import RequestHeadReader

__all__ = ["ProxyTunnel"]


class ProxyTunnel:
    """
    One C{CONNECT} request and its answer.
    """

    def __init__(self, authority: str, headers: tuple[tuple[str, str], ...] = ()):
        """
        @param authority: C{host:port} to tunnel to.
        @param headers: extra headers for the proxy (e.g.
            C{Proxy-Authorization}).
        """
        self.authority = authority
        self._headers = headers
        self._reader = RequestHeadReader(MAX_RESPONSE_HEAD)

    def request(self) -> bytes:
        """
        The C{CONNECT} request's bytes.
        """
        lines = [f"CONNECT {self.authority} HTTP/1.1", f"Host: {self.authority}"]
        lines.extend(f"{name}: {value}" for name, value in self._headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def receiveData(self, data: bytes) -> bytes | None:
        """
        Take the proxy's next bytes.

        @return: once the tunnel is open (a 2xx answer), the bytes after the
            answer's head (the server's, already); C{None} while more is
            needed.
        @raise HandshakeFailed: the proxy refused, with its status and
            headers.
        """
        try:
            head = self._reader.feed(data)
        except HandshakeError:
            raise HandshakeFailed("the proxy's answer is too large") from None
        if head is None:
            return None
        status, phrase, headers = readResponseHead(head)
        if not 200 <= status < 300:
            reason = f"the proxy refused to connect: {status} {phrase}".rstrip()
            raise HandshakeFailed(reason, status, headers)
        return self._reader.leftover
