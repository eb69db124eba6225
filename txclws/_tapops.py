# -*- test-case-name: tests.test_proxyaddress,tests.test_daemon -*-
"""
The production options of C{twistd clws} (issue 17): trusted proxies and
rate limits, in a base class of L{txclws.tap.Options}, turned into
L{txclws.WebSocketFactory} arguments by L{opsArguments}; and the tuning of
glibc's malloc for C{--max-message-size} (L{tuneAllocator}).

@since: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from ipaddress import ip_network
from typing import Any, TypeVar

from twisted.logger import Logger
from twisted.python import usage

from txclws._allocator import AllocatorTuning, tuneAllocatorForMessages
from txclws._ratelimit import RateLimit
from txclws._tapvalues import parameter, positiveSeconds, seconds

__all__ = ["OpsOptions", "opsArguments", "tuneAllocator"]

#: The daemon's own lines keep the namespace they have always had.
_log = Logger(namespace="txclws.tap")


_F = TypeVar("_F", bound=Callable[..., object])


def _oneLine(method: _F) -> _F:
    """
    Join C{method}'s docstring into one line: C{usage.Options} shows an
    option's docstring as its help, line breaks and all.
    """
    method.__doc__ = " ".join((method.__doc__ or "").split())
    return method


def _policy(value: str) -> str:
    """
    A C{--rate-limit-policy}.

    @raise ValueError: not C{close} or C{pause}.
    """
    if value not in ("close", "pause"):
        raise ValueError("is not 'close' or 'pause'")
    return value


class OpsOptions(usage.Options):
    """
    The options of C{twistd clws} for running behind proxies, with limits.
    """

    optParameters = [
        parameter(
            "rate-limit-messages",
            None,
            "Most messages a client may send per second (see --rate-limit-"
            "burst); over it, --rate-limit-policy (default: no limit)",
            positiveSeconds,
        ),
        parameter(
            "rate-limit-bytes",
            None,
            "Most bytes a client may send per second, frames included "
            "(default: no limit)",
            positiveSeconds,
        ),
        parameter(
            "rate-limit-burst",
            1.0,
            "How far ahead of the rate limits a client may go, in seconds of them",
            positiveSeconds,
        ),
        parameter(
            "rate-limit-policy",
            "close",
            "Over a rate limit: 'close' (1008 \"rate limit\") or 'pause' "
            "(stop reading the client until it is back under the limit)",
            _policy,
        ),
        parameter(
            "max-handshakes-per-second",
            None,
            "Most opening handshakes per second from one client address; "
            "beyond it they are refused with 503 and Retry-After "
            "(default: no limit)",
            positiveSeconds,
        ),
        parameter(
            "drain-spread",
            5.0,
            "On a rolling restart (SIGHUP with --workers), close each client "
            "of a retiring worker with 1012 at its own random moment within "
            "this many seconds, so that they do not all reconnect at once",
            seconds,
        ),
        parameter(
            "drain-timeout",
            None,
            "Most seconds a retiring worker waits for its clients to go "
            "(default: --drain-spread plus --close-timeout); at least "
            "--drain-spread",
            seconds,
        ),
    ]

    optFlags = [
        [
            "no-tune-allocator",
            None,
            "Leave glibc's malloc thresholds as they are (by default they are "
            "raised so that buffers of up to --max-message-size are reused "
            "from the heap: less CPU for large messages, for up to 16 MiB, or "
            "4 x --max-message-size if more (at most 64 MiB), of freed memory "
            "kept)",
        ],
    ]

    def checkDrain(self) -> None:
        """
        @raise usage.UsageError: C{--drain-timeout} under C{--drain-spread}.
        """
        timeout, spread = self["drain-timeout"], self["drain-spread"]
        if timeout is not None and timeout < spread:
            raise usage.UsageError(
                f"--drain-timeout {timeout:g} is under --drain-spread {spread:g}"
            )

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


def opsArguments(config: Mapping[str, Any]) -> dict[str, Any]:
    """
    The L{txclws.WebSocketFactory} arguments of C{config}'s production
    options.
    """
    limit = None
    messages, size = config["rate-limit-messages"], config["rate-limit-bytes"]
    if messages is not None or size is not None:
        limit = RateLimit(
            messages, size, config["rate-limit-burst"], config["rate-limit-policy"]
        )
    return {
        "trustedProxies": tuple(config.get("trust-proxy", ())),
        "rateLimit": limit,
        "maxHandshakesPerSecond": config["max-handshakes-per-second"],
    }


def tuneAllocator(config: Mapping[str, Any]) -> AllocatorTuning | None:
    """
    Unless C{--no-tune-allocator}, tune glibc's malloc for messages of up
    to C{--max-message-size} (L{tuneAllocatorForMessages}), and log what
    was set.

    @return: what was set, or C{None} when told not to.
    """
    if config["no-tune-allocator"]:
        return None
    tuning = tuneAllocatorForMessages(config["max-message-size"])
    if tuning.applied:
        _log.info(
            "malloc tuned for {size}-byte messages: mmap threshold {mmap}, "
            "trim threshold {trim} ({reason})",
            size=config["max-message-size"],
            mmap=tuning.mmapThreshold,
            trim=tuning.trimThreshold,
            reason=tuning.reason,
        )
    else:
        _log.info("malloc not tuned: {reason}", reason=tuning.reason)
    return tuning
