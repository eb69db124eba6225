# -*- test-case-name: tests.test_proxyaddress -*-
"""
The production options of C{twistd clws} (issue 17): trusted proxies and
rate limits, in a base class of L{txclws.tap.Options}, turned into
L{txclws.WebSocketFactory} arguments by L{opsArguments}.

@since: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_network
from typing import Any, TypeVar

from twisted.python import usage

__all__ = ["OpsOptions", "opsArguments"]


_F = TypeVar("_F", bound=Callable[..., object])


def _oneLine(method: _F) -> _F:
    """
    Join C{method}'s docstring into one line: C{usage.Options} shows an
    option's docstring as its help, line breaks and all.
    """
    method.__doc__ = " ".join((method.__doc__ or "").split())
    return method


class OpsOptions(usage.Options):
    """
    The options of C{twistd clws} for running behind proxies, with limits.
    """

    @_oneLine
    def opt_trust_proxy(self, proxy: str) -> None:
        """
        Believe X-Forwarded-For and Forwarded (RFC 7239) from this proxy,
        an address or CIDR network such as 10.0.0.0/8; repeat for several
        (default: no proxy is trusted).
        """
        try:
            ip_network(proxy, strict=False)
        except ValueError as error:
            raise usage.UsageError(f"--trust-proxy {proxy!r}: {error}") from None
        self.setdefault("trust-proxy", []).append(proxy)


def opsArguments(config: usage.Options) -> dict[str, Any]:
    """
    The L{txclws.WebSocketFactory} arguments of C{config}'s production
    options.
    """
    return {"trustedProxies": tuple(config.get("trust-proxy", ()))}
