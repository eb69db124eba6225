"""
Per-client rate limits (issue 17): token buckets of messages and bytes per
second, the close and pause policies, and the cap on handshakes per second
per source address; through C{twistd clws} on real sockets, and the
buckets on a fake clock.
"""

from __future__ import annotations

import time

import pytest

from tests._daemon import Daemon
from tests._rawsocket import RawClient, clientFrame, upgradeRequest
from txclws import IWebSocketClient, RateLimit, WebSocketResource
from txclws._ratelimit import HandshakeLimiter, TokenBucket
from txclws.testing import InMemoryServer

#: A daemon port and the address-echo resource.
_SERVE = (
    "--port",
    "tcp:0:interface=127.0.0.1",
    "--resource",
    "/who=tests.clws_resources.Whoami",
)

#: Opcodes (RFC 6455 5.2).
_TEXT, _CLOSE = 0x1, 0x8


def opened(port: int) -> RawClient:
    """
    A raw client past its handshake on C{/who}.
    """
    client = RawClient(port)
    client.handshake("/who")
    return client


def test_floodClosedNormalClientUnaffected() -> None:
    """
    At 20 messages/s with a 1 s burst, a client sending 60 messages at once
    has its first 20 (or so: the bucket refills while it sends) answered
    and is then closed with 1008 "rate limit"; a client sending 5 a second
    on the same server, meanwhile, gets every answer and stays open.
    """
    with Daemon(*_SERVE, "--rate-limit-messages", "20") as daemon:
        with opened(daemon.port) as normal, opened(daemon.port) as flood:
            flood.send(b"".join(clientFrame(_TEXT, b"x") for _ in range(60)))
            frames, close = flood.readUntilClose()
            assert close.closeCode == 1008
            assert close.payload[2:] == b"rate limit"
            assert 20 <= len(frames) <= 22, len(frames)
            for _ in range(5):
                assert normal.echo("hi").opcode == _TEXT
                time.sleep(0.2)
            assert normal.echo("still here").opcode == _TEXT
        daemon.waitForLog(r"over its rate limit")


def test_pausePolicyThrottles() -> None:
    """
    With C{--rate-limit-policy pause} at 20,000 bytes/s (a 10,000-byte
    burst), a client that sends 40 KB is not closed: what was read is
    answered, then the server stops reading it until the bucket is back
    under, so a message sent after the flood is answered only ~1.5 s
    later.
    """
    args = ("--rate-limit-bytes", "20000", "--rate-limit-burst", "0.5")
    with Daemon(*_SERVE, *args, "--rate-limit-policy", "pause") as daemon:
        with opened(daemon.port) as client:
            started = time.monotonic()
            client.send(b"".join(clientFrame(_TEXT, b"y" * 994) for _ in range(40)))
            for _ in range(40):
                assert client.readFrame().opcode == _TEXT
            assert client.echo("after").opcode == _TEXT
            elapsed = time.monotonic() - started
    assert 1.2 < elapsed < 4.5, elapsed


def test_handshakeCap() -> None:
    """
    With C{--max-handshakes-per-second 2}, a third handshake from the same
    address within the second is refused with 503 and C{Retry-After}; a
    second later one is accepted again.
    """
    with Daemon(*_SERVE, "--max-handshakes-per-second", "2") as daemon:
        with opened(daemon.port), opened(daemon.port):
            with RawClient(daemon.port) as third:
                third.send(upgradeRequest("/who"))
                status, headers, _ = third.readRefusal()
            assert status.startswith("HTTP/1.1 503")
            assert headers["retry-after"] == "1"
            time.sleep(0.6)
            with opened(daemon.port) as later:
                assert later.echo("ok").opcode == _TEXT
        daemon.waitForLog(r"refused 127\.0\.0\.1:\d+: 503 too many handshakes")


def test_tokenBucket() -> None:
    """
    A bucket starts full, refills at its rate up to its capacity, and says
    how long until what was taken beyond it is paid back.
    """
    bucket = TokenBucket(10.0, 5.0, now=0.0)
    assert [bucket.take(1, 0.0) for _ in range(5)] == [0.0] * 5
    assert bucket.take(1, 0.0) == pytest.approx(0.1)
    assert bucket.level(0.6) == pytest.approx(5.0)  # capped: not 5.0 + ...
    assert bucket.level(100.0) == 5.0


def test_handshakeLimiter() -> None:
    """
    Each address has its own bucket; a refusal names the wait.
    """
    limiter = HandshakeLimiter(2.0)
    assert limiter.admit("192.0.2.1", 0.0) == 0.0
    assert limiter.admit("192.0.2.1", 0.0) == 0.0
    assert limiter.admit("192.0.2.1", 0.0) == pytest.approx(0.5)
    assert limiter.admit("192.0.2.2", 0.0) == 0.0
    assert limiter.admit("192.0.2.1", 0.5) == 0.0


@pytest.mark.parametrize(
    "arguments",
    [
        {"messagesPerSecond": 0},
        {"bytesPerSecond": -1},
        {"burst": 0},
        {"policy": "drop"},
    ],
)
def test_rateLimitChecked(arguments: dict[str, object]) -> None:
    """
    A rate limit that cannot be applied is refused when it is made.
    """
    with pytest.raises(ValueError):
        RateLimit(**arguments)  # type: ignore[arg-type]


class _Echo(WebSocketResource):
    """
    Echo text; a class attribute C{rateLimit} overrides the factory's.
    """

    def receivedText(self, client: IWebSocketClient, message: str) -> None:
        client.writeText(message)


class _Strict(_Echo):
    rateLimit = RateLimit(messagesPerSecond=2, burst=1)


def test_perResourceOverride() -> None:
    """
    A resource's own C{rateLimit} applies to its clients instead of the
    factory's: on one server, the strict resource closes at its third
    message while the other resource takes ten at the factory's limit.
    """
    server = InMemoryServer(rateLimit=RateLimit(messagesPerSecond=100))
    server.register("/strict", _Strict())
    server.register("/echo", _Echo())
    strict, echo = server.connect("/strict"), server.connect("/echo")
    for _ in range(3):
        strict.sendText("a")
    for _ in range(10):
        echo.sendText("b")
    assert strict.readMessages() == ["a", "a"]
    assert strict.closeCode == 1008
    assert echo.readMessages() == ["b"] * 10
    assert echo.closeCode is None


def test_unlimitedSessionUntouched() -> None:
    """
    Without a limit the session's receive path and resource are its own
    (no counting wrapper: no cost when off).
    """
    server = InMemoryServer()
    resource = _Echo()
    server.register("/echo", resource)
    client = server.connect("/echo")
    session = next(iter(server.factory.clients))
    assert session._resource is resource
    assert "_receive" not in vars(session)
    client.sendText("x")
    assert client.readMessages() == ["x"]


def test_pauseResumesOnTheClock() -> None:
    """
    The pause policy delivers what was read, then stops reading the client
    for as long as it owes, so that its average rate is the limit: at 2/s
    with a burst of 2, of six messages sent at once three are read first
    (the third goes over: 0.5 s owed), the rest when reading resumes, and a
    seventh only once the debt of those is paid, about 2 s after the
    first.  The client is never closed.
    """
    limit = RateLimit(messagesPerSecond=2, burst=1, policy="pause")
    server = InMemoryServer(rateLimit=limit)
    server.register("/echo", _Echo())
    client = server.connect("/echo")
    for _ in range(6):
        client.sendText("m")
    received = client.readMessages()
    assert received == ["m"] * 3
    assert not client.serverReading
    waited = 0.0
    while len(received) < 6 and waited < 5:
        server.advance(0.05)
        waited += 0.05
        received += client.readMessages()
    assert 0.45 < waited < 0.6, waited
    assert not client.serverReading  # paused again: three more owed
    client.sendText("last")
    while "last" not in received and waited < 5:
        server.advance(0.05)
        waited += 0.05
        received += client.readMessages()
    assert received == ["m"] * 6 + ["last"]
    assert 1.9 < waited < 2.2, waited
    assert client.closeCode is None
