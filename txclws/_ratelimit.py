# -*- test-case-name: tests.test_ratelimit -*-
"""
Per-client rate limits (issue 17): token buckets of messages and bytes per
second with a burst allowance, and a cap on handshakes per second per
source address.

A limited session is set up once, when it opens (L{limitSession}): its
receive path is wrapped to count the bytes read and its resource to count
the messages delivered, so an unlimited session pays nothing.  Over a
limit, the L{RateLimit.policy} says what happens:

  - C{"close"} (the default): the client is closed with 1008 (policy
    violation, RFC 6455 7.4.1) and the reason C{"rate limit"}; the message
    that went over is not delivered.
  - C{"pause"}: what arrived is delivered, then the client is not read
    until its buckets have refilled, so that TCP pushes back on it.

@since: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

__all__ = ["HandshakeLimiter", "RateLimit", "TokenBucket", "limitSession"]

_log = Logger()

#: The close reason of a client closed for going over its limit.
RATE_LIMIT_REASON = "rate limit"

#: Addresses the handshake limiter remembers before it forgets those whose
#: buckets are full again.
_PRUNE_AT = 4096


@dataclass(frozen=True)
class RateLimit:
    """
    A client's rate limits.

    @ivar messagesPerSecond: data messages a client may send per second,
        or C{None}: no limit.
    @ivar bytesPerSecond: bytes (on the wire, frame headers included) a
        client may send per second, or C{None}: no limit.
    @ivar burst: how far a client may go ahead of the rates, in seconds of
        them: each bucket holds C{rate * burst} tokens (at least one
        message, and one frame of C{maxFrameSize} is not refused for its
        size only if the bytes bucket holds it).
    @ivar policy: C{"close"} (1008 "rate limit") or C{"pause"} (stop
        reading until the buckets refill).
    """

    messagesPerSecond: float | None = None
    bytesPerSecond: float | None = None
    burst: float = 1.0
    policy: Literal["close", "pause"] = "close"

    def __post_init__(self) -> None:
        for rate in (self.messagesPerSecond, self.bytesPerSecond):
            if rate is not None and not rate > 0:
                raise ValueError(f"a rate must be positive, not {rate!r}")
        if not self.burst > 0:
            raise ValueError(f"burst must be positive, not {self.burst!r}")
        if self.policy not in ("close", "pause"):
            raise ValueError(f"policy must be 'close' or 'pause', not {self.policy!r}")


class TokenBucket:
    """
    A token bucket: C{rate} tokens a second, up to C{capacity}, full at
    first.  Taking may drive it below zero (what was taken is owed).
    """

    __slots__ = ("_level", "_rate", "_updated", "capacity")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self._rate = rate
        self.capacity = capacity
        self._level = capacity
        self._updated = now

    def level(self, now: float) -> float:
        """
        The tokens in the bucket at C{now} (negative: owed).
        """
        self._level = min(
            self.capacity, self._level + (now - self._updated) * self._rate
        )
        self._updated = now
        return self._level

    def take(self, amount: float, now: float) -> float:
        """
        Take C{amount} tokens.

        @return: 0 if the bucket held them, else the seconds until it is
            back at zero (what was taken is then owed).
        """
        level = self._level = self.level(now) - amount
        return 0.0 if level >= 0 else -level / self._rate


class HandshakeLimiter:
    """
    A bucket of handshakes per source address: C{rate} a second, a burst
    of C{max(1, rate)}.
    """

    def __init__(self, rate: float) -> None:
        if not rate > 0:
            raise ValueError(f"maxHandshakesPerSecond must be positive, not {rate!r}")
        self._rate = rate
        self._buckets: dict[str, TokenBucket] = {}

    def admit(self, host: str, now: float) -> float:
        """
        Count a handshake from C{host}.

        @return: 0 to admit it, else the seconds to wait (C{Retry-After}).
        """
        buckets = self._buckets
        bucket = buckets.get(host)
        if bucket is None:
            if len(buckets) >= _PRUNE_AT:
                self._prune(now)
            bucket = buckets[host] = TokenBucket(self._rate, max(1.0, self._rate), now)
        if bucket.level(now) < 1:
            return (1 - bucket.level(now)) / self._rate
        bucket.take(1, now)
        return 0.0

    def _prune(self, now: float) -> None:
        for host, bucket in list(self._buckets.items()):
            if bucket.level(now) >= bucket.capacity:
                del self._buckets[host]


class _Limiter:
    """
    One session's buckets, and what its policy does over them.
    """

    def __init__(self, limit: RateLimit, session: Any, reactor: IReactorTime) -> None:
        now = reactor.seconds()
        self._limit = limit
        self._session = session
        self._reactor = reactor
        self._messages = self._bytes = None
        if limit.messagesPerSecond is not None:
            rate = limit.messagesPerSecond
            self._messages = TokenBucket(rate, max(1.0, rate * limit.burst), now)
        if limit.bytesPerSecond is not None:
            rate = limit.bytesPerSecond
            self._bytes = TokenBucket(rate, rate * limit.burst, now)
        self.closed = False
        self._resume: Any = None

    def overBy(self, bucket: TokenBucket | None, amount: int) -> bool:
        """
        Take C{amount} from C{bucket}; act on the policy if that goes over.

        @return: whether what was counted must be dropped (closed for it).
        """
        if bucket is None or self.closed:
            return self.closed
        wait = bucket.take(amount, self._reactor.seconds())
        if not wait:
            return False
        if self._limit.policy == "close":
            self.closed = True
            _log.info(
                "closing {peer}: over its rate limit",
                peer=self._session._peer(),
                cause="rate limit",
            )
            self._session._dispatching = False  # nothing more is delivered
            self._session.close(1008, RATE_LIMIT_REASON)
            return True
        self._pauseFor(wait)
        return False

    def _pauseFor(self, seconds: float) -> None:
        resume = self._resume
        if resume is not None and resume.active():
            left = resume.getTime() - self._reactor.seconds()
            resume.delay(max(0.0, seconds - left))
            return
        self._session._pausedForRate = True
        self._session._updateReading()
        self._resume = self._reactor.callLater(seconds, self._resumed)

    def _resumed(self) -> None:
        self._resume = None
        self._session._pausedForRate = False
        self._session._updateReading()  # resumes unless it has another reason


def limitSession(session: Any, limit: RateLimit, reactor: IReactorTime) -> None:
    """
    Count C{session}'s bytes and messages against C{limit} from now on.

    @param session: a L{txclws._session.session.WebSocketSession}, just
        opened (not imported: it imports this module).
    """
    limiter = _Limiter(limit, session, reactor)
    receive: Callable[[bytes], None] = session._receive
    byteBucket, messageBucket = limiter._bytes, limiter._messages
    if byteBucket is not None:

        def limitedReceive(data: bytes) -> None:
            limiter.overBy(byteBucket, len(data))
            receive(data)  # the close handshake goes on after a close

        session._receive = limitedReceive
    if messageBucket is not None:
        assert session._resource is not None
        session._resource = _CountedResource(session._resource, limiter, messageBucket)


class _CountedResource:
    """
    A session's resource, behind a count of the messages it is given.
    """

    def __init__(self, resource: Any, limiter: _Limiter, bucket: TokenBucket) -> None:
        self._resource = resource
        self._limiter = limiter
        self._bucket = bucket

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resource, name)

    def receivedText(self, client: Any, message: str) -> Any:
        if self._limiter.overBy(self._bucket, 1):
            return None
        return self._resource.receivedText(client, message)

    def receivedBinary(self, client: Any, data: bytes) -> Any:
        if self._limiter.overBy(self._bucket, 1):
            return None
        return self._resource.receivedBinary(client, data)
