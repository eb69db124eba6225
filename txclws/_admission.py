# -*- test-case-name: tests.test_proxyaddress,tests.test_ratelimit,tests.test_h2ops -*-
"""
Who a connecting client is, and whether it may open a WebSocket now: its
address behind the owner's trusted proxies (L{txclws._proxyaddress}) and
the owner's cap on handshakes per second per address
(L{txclws._ratelimit}); and the count of the handshakes refused.  Every
entry point asks here, once per handshake: the front door
(L{txclws._protocol}) for an HTTP/1.1 upgrade, the HTTP/2 connection
(L{txclws._h2.connection}) for an extended CONNECT stream (RFC 8441).
"""

from __future__ import annotations

import math
from typing import Any, Protocol, cast

from twisted.internet.interfaces import IReactorTime

from txclws._core.accept import Refused
from txclws._core.handshake import ClientHandshake

__all__ = ["Addressed", "AdmissionOwner", "admitPeer", "countRefusal"]


class Addressed(Protocol):
    """
    What holds a client's address: a L{txclws._session.stream.TransportStream},
    or the session of an HTTP/2 stream.
    """

    host: str
    port: int


class AdmissionOwner(Protocol):
    """
    What admission needs of the factory serving the route (a
    L{txclws._factory.WebSocketFactory}); C{trustedProxies},
    C{handshakeLimiter} and C{metrics} are read if it has them.
    """

    reactor: IReactorTime


def admitPeer(
    owner: AdmissionOwner, peer: Addressed, handshake: ClientHandshake
) -> Refused | None:
    """
    Set C{peer}'s C{host} and C{port} to the client's address, and refuse
    the handshake (503, C{Retry-After}) if that address is over the
    owner's C{maxHandshakesPerSecond}.

    @param peer: holds the address the connection came from (after a
        PROXY header, if any), and is given the client's.
    @return: the refusal, or C{None} to go on.
    """
    peer.host, peer.port = _clientAddress(owner, (peer.host, peer.port), handshake)
    return _handshakeCap(owner, peer.host)


def countRefusal(owner: object, refusal: Refused) -> None:
    """
    Count C{refusal} in the owner's metrics, if it has them (issue 17):
    every refused WebSocket handshake, whatever the entry point.
    """
    metrics: Any = getattr(owner, "metrics", None)
    if metrics is not None:
        metrics.refused(refusal.status)


def _clientAddress(
    owner: AdmissionOwner, peer: tuple[str, int], handshake: ClientHandshake
) -> tuple[str, int]:
    """
    The client's address: C{peer}'s, or behind the owner's trusted proxies
    the one their headers give (issue 17, L{txclws._proxyaddress}).
    """
    trusted = getattr(owner, "trustedProxies", None)
    if trusted is None:
        return peer
    return cast(tuple[str, int], trusted.clientAddress(peer, handshake.request.headers))


def _handshakeCap(owner: AdmissionOwner, host: str) -> Refused | None:
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
