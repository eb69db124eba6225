# -*- test-case-name: tests.test_origin -*-
"""
Origin policies: pure functions from the client's declared origin to a
verdict (CLWS's C{any-origin}, C{origin-prefix}, C{origin-exact}).

The origin is what a browser sends in C{Origin} (RFC 6454), or in
C{Sec-WebSocket-Origin} for hybi-07/08; C{None} when the client sent none,
as non-browser clients usually do.  A policy is any callable
C{(origin: str | None) -> bool}.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["OriginCheck", "anyOrigin", "originExact", "originPrefix"]

#: The type of an origin policy.
OriginCheck = Callable[[str | None], bool]


def anyOrigin(origin: str | None) -> bool:
    """
    Accept every origin, and clients that declare none.
    """
    return True


def originPrefix(*prefixes: str) -> OriginCheck:
    """
    Accept origins that start with one of C{prefixes}.

    Unlike a bare string prefix, the match must end at a boundary of the
    origin's host: C{originPrefix("http://localhost")} accepts
    C{http://localhost} and C{http://localhost:8080}, but not
    C{http://localhost.evil.example}.  A client that declares no origin is
    refused.
    """
    accepted = tuple(prefixes)

    def check(origin: str | None) -> bool:
        if origin is None:
            return False
        for prefix in accepted:
            if origin.startswith(prefix):
                rest = origin[len(prefix) :]
                if not rest or rest[0] in ":/" or prefix[-1:] in (":", "/", "."):
                    return True
        return False

    check.__doc__ = f"Accept origins starting with one of {accepted!r}."
    return check


def originExact(*origins: str) -> OriginCheck:
    """
    Accept exactly the given origins; refuse clients that declare none.
    """
    accepted = frozenset(origins)

    def check(origin: str | None) -> bool:
        return origin in accepted

    check.__doc__ = f"Accept exactly the origins {sorted(accepted)!r}."
    return check
