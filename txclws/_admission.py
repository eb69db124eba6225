# -*- test-case-name: tests.test_proxyaddress,tests.test_ratelimit -*-
"""
Who a connecting client is, and whether it may open a WebSocket now: its
address behind the owner's trusted proxies (L{txclws._proxyaddress}) and
the owner's cap on handshakes per second per address
(L{txclws._ratelimit}).  The front door asks once per handshake.
"""

from __future__ import annotations

import math
from typing import cast

from txclws._core.accept import Refused
from txclws._core.handshake import ClientHandshake
from txclws._frontdoor import FrontDoorOwner
from txclws._session.stream import TransportStream

__all__ = ["admitPeer"]


def admitPeer(
    owner: FrontDoorOwner, stream: TransportStream, handshake: ClientHandshake
) -> Refused | None:
    """
    Set C{stream}'s C{host} and C{port} to the client's address, and refuse
    the handshake (503, C{Retry-After}) if that address is over the
    owner's C{maxHandshakesPerSecond}.

    @return: the refusal, or C{None} to go on.
    """
    stream.host, stream.port = _clientAddress(
        owner, (stream.host, stream.port), handshake
    )
    return _handshakeCap(owner, stream.host)


def _clientAddress(
    owner: FrontDoorOwner, peer: tuple[str, int], handshake: ClientHandshake
) -> tuple[str, int]:
    """
    The client's address: C{peer}'s, or behind the owner's trusted proxies
    the one their headers give (issue 17, L{txclws._proxyaddress}).
    """
    trusted = getattr(owner, "trustedProxies", None)
    if trusted is None:
        return peer
    return cast(tuple[str, int], trusted.clientAddress(peer, handshake.request.headers))


def _handshakeCap(owner: FrontDoorOwner, host: str) -> Refused | None:
    """
    The refusal (503, C{Retry-After}) of a handshake from C{host} over the
    owner's C{maxHandshakesPerSecond}, or C{None} to go on (issue 17).
    """
    limiter = getattr(owner, "handshakeLimiter", None)
    if limiter is None:
        return None
    wait = limiter.admit(host, owner.reactor.seconds())
    if not wait:
        return None
    return Refused(503, "too many handshakes", (("Retry-After", str(math.ceil(wait))),))
