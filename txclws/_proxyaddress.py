# -*- test-case-name: tests.test_proxyaddress -*-
"""
The client's address behind trusted proxies: C{X-Forwarded-For} and
C{Forwarded} (RFC 7239), believed only from the proxies the server is told
to trust, so that a client cannot choose the address it is logged under.

The peer's address is trusted first: if the peer is not a trusted proxy,
its headers are ignored and the peer is the client.  Otherwise the chain
the headers give (client first, each proxy appending the address it heard
from, RFC 7239 section 5.2) is walked from the right, past every trusted
address; the first untrusted address is the client's.  An entry that is
not an address (C{unknown}, an obfuscated identifier, RFC 7239 6.3) stops
the walk at the trusted hop that reported it.

The PROXY protocol needs nothing here: Twisted's C{haproxy:} endpoint
wrapper makes the transport's C{getPeer} the proxied address.

@since: 0.2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from txclws._core.request import RequestHeaders

__all__ = ["TrustedProxies", "forwardedChain", "parseForwardedFor"]

#: An address of a chain: host and port (0: not given).
Address = tuple[str, int]


def parseForwardedFor(value: str) -> Address | None:
    """
    The address in one C{for=} value of C{Forwarded} (RFC 7239 section 6:
    C{192.0.2.43}, C{"192.0.2.43:47011"}, C{"[2001:db8::1]:4711"}) or in one
    C{X-Forwarded-For} entry, or C{None} for anything that is not an IP
    address.
    """
    value = value.strip().strip('"').strip()
    port = 0
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, _, portText = value.partition(":")
        port = int(portText) if portText.isdigit() else 0
    else:
        host = value
    try:
        return str(ip_address(host)), port if port <= 65535 else 0
    except ValueError:
        return None


def _forwardedFor(header: str) -> Iterable[str]:
    """
    The C{for=} value of each element of a C{Forwarded} header, in order.
    """
    for element in header.split(","):
        for pair in element.split(";"):
            name, _, value = pair.partition("=")
            if name.strip().lower() == "for":
                yield value


def forwardedChain(headers: RequestHeaders) -> list[str]:
    """
    The chain of addresses the request's proxies report, client first:
    from C{Forwarded} if the request has one (RFC 7239 supersedes the
    de-facto header), else from C{X-Forwarded-For}; every field line of
    the header, in order (the headers join them with commas).
    """
    if "Forwarded" in headers:
        return list(_forwardedFor(headers["Forwarded"]))
    return headers.tokens("X-Forwarded-For")


class TrustedProxies:
    """
    The proxies whose forwarding headers are believed.

    @ivar networks: the trusted networks (an address is a /32 or /128).
    """

    def __init__(self, proxies: Sequence[str]) -> None:
        """
        @param proxies: addresses or CIDR networks, such as C{"127.0.0.1"}
            or C{"10.0.0.0/8"}.
        @raise ValueError: one is neither.
        """
        self.networks: tuple[IPv4Network | IPv6Network, ...] = tuple(
            ip_network(proxy, strict=False) for proxy in proxies
        )

    def trusts(self, host: str) -> bool:
        """
        Whether C{host} is a trusted proxy's address.
        """
        try:
            address = ip_address(host)
        except ValueError:
            return False  # a UNIX socket's path, say
        return any(address in network for network in self.networks)

    def clientAddress(self, peer: Address, headers: RequestHeaders) -> Address:
        """
        The client's address: the rightmost untrusted address of the chain
        that ends with C{peer}, the address the connection came from.
        """
        if not self.trusts(peer[0]):
            return peer
        client = peer
        for entry in reversed(forwardedChain(headers)):
            address = parseForwardedFor(entry)
            if address is None:
                return client
            client = address
            if not self.trusts(address[0]):
                return client
        return client
