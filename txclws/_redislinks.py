# -*- test-case-name: tests.test_hub -*-
"""
The two Redis connections of a L{txclws.redishub.RedisHub}, on
C{txredisapi}: one it publishes on, one subscribed to its channels.  Each
tells its observer (the hub, through L{IRedisLinkObserver}) when it is
ready, when it is lost and, for the subscriber, what arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from twisted.internet.endpoints import HostnameEndpoint
from twisted.python.failure import Failure

# txredisapi has no type hints: to mypy it is Any, hence [import-untyped]
# here and [misc] (subclassing Any) on the classes made from it below.
try:
    import txredisapi  # type: ignore[import-untyped]
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "txclws.redishub needs txredisapi: pip install 'txclws[redis]'"
    ) from error

#: What publishing on a connection that is gone raises.
RedisConnectionError = txredisapi.ConnectionError

__all__ = [
    "PUBLISHER",
    "REDIS_PORT",
    "SUBSCRIBER",
    "URL_OPTIONS",
    "IRedisLinkObserver",
    "RedisConnectionError",
    "RedisLinkSettings",
    "parseRedisURL",
    "startRedisLinks",
]

#: The default Redis port.
REDIS_PORT = 6379

#: The roles of a hub's two connections.
PUBLISHER, SUBSCRIBER = "publisher", "subscriber"


class IRedisLinkObserver(Protocol):
    """
    What the connections tell their hub.
    """

    def address(self) -> str:
        """
        C{host:port} of the Redis server, for connecting and for logs.
        """

    def linkReady(self, role: str, connection: Any) -> None:
        """
        The connection of C{role} (L{PUBLISHER} or L{SUBSCRIBER}) is up.
        """

    def linkLost(self, role: str, connection: Any) -> None:
        """
        The connection of C{role} is gone; it is being made again.
        """

    def messageArrived(self, redisChannel: bytes, data: bytes) -> None:
        """
        A message arrived on the subscribed connection.
        """

    def linkRefused(self, failure: Failure) -> None:
        """
        Redis refused a connection for good (e.g. a wrong password).
        """


#: The options a hub URL's query may give, as C{RedisHub} keyword arguments.
URL_OPTIONS = {"presence-timeout": "presenceTimeout"}


def parseRedisURL(url: str) -> tuple[str, int, int, str | None, dict[str, float]]:
    """
    The host, port, database number, password and options of a URL such
    as C{redis://host:port/db} (port 6379 and db 0 by default;
    C{redis://:password@host} to authenticate;
    C{?presence-timeout=SECONDS} to set C{RedisHub}'s C{presenceTimeout}).

    @raise ValueError: the URL is not such a URL.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"{url!r} is not a redis:// URL")
    if parts.fragment:
        raise ValueError(f"{url!r}: no fragment is understood")
    options = _urlOptions(url, parts.query)
    path = parts.path.strip("/") or "0"
    if not path.isdigit():
        raise ValueError(f"{url!r}: the database must be a number")
    try:
        port = parts.port or REDIS_PORT
    except ValueError as error:
        raise ValueError(f"{url!r}: {error}") from error
    password = unquote(parts.password) if parts.password is not None else None
    return parts.hostname or "127.0.0.1", port, int(path), password, options


def _urlOptions(url: str, query: str) -> dict[str, float]:
    options: dict[str, float] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if name not in URL_OPTIONS:
            raise ValueError(f"{url!r}: unknown option {name!r}")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not 0 < number < float("inf"):
            raise ValueError(f"{url!r}: {name} must be positive seconds")
        options[URL_OPTIONS[name]] = number
    if query and not options:
        raise ValueError(f"{url!r}: no such option")
    return options


@dataclass(frozen=True)
class RedisLinkSettings:
    """
    How a hub's connections connect: see L{txclws.redishub.RedisHub}.
    """

    password: str | None
    replyTimeout: float
    connectTimeout: float
    retryDelay: float
    maxRetryDelay: float


def startRedisLinks(
    hub: IRedisLinkObserver, host: str, port: int, settings: RedisLinkSettings
) -> list[Any]:
    """
    Start connecting a hub's two connections, reconnecting with growing
    delays while they are not stopped (C{disconnect()} on each).

    @return: their factories: the publisher's, then the subscriber's.
    """
    from twisted.internet import reactor

    endpoint = HostnameEndpoint(reactor, host, port, timeout=settings.connectTimeout)
    factories: list[Any] = [
        _PublisherFactory(hub, settings.password, settings.replyTimeout),
        _SubscriberFactory(hub, settings.password),
    ]
    for factory in factories:
        factory.initialDelay = settings.retryDelay
        factory.maxDelay = settings.maxRetryDelay
        factory.deferred.addErrback(hub.linkRefused)
        factory.startConnecting(endpoint)
    return factories


class _PublisherFactory(txredisapi.RedisFactory):  # type: ignore[misc]
    """
    The connection a hub publishes on; tells the hub when it comes and
    goes (C{addConnection} and C{delConnection} are where
    C{txredisapi} adds a ready connection to its pool and removes it).
    """

    def __init__(
        self, hub: IRedisLinkObserver, password: str | None, replyTimeout: float
    ):
        super().__init__(
            hub.address(),
            None,
            1,
            isLazy=True,
            password=password,
            replyTimeout=replyTimeout,
            # Stream entries come back as the bytes that were kept.
            charset=None,
            convertNumbers=False,
        )
        self.hub = hub

    def addConnection(self, connection: Any) -> None:
        super().addConnection(connection)
        if connection in self.pool:
            self.hub.linkReady(PUBLISHER, connection)

    def delConnection(self, connection: Any) -> None:
        super().delConnection(connection)
        self.hub.linkLost(PUBLISHER, connection)


class _Subscriber(txredisapi.SubscriberProtocol):  # type: ignore[misc]
    """
    The subscribed connection: hands each message to the hub.
    """

    def messageReceived(self, pattern: Any, channel: bytes, message: bytes) -> None:
        self.factory.hub.messageArrived(channel, message)


class _SubscriberFactory(txredisapi.SubscriberFactory):  # type: ignore[misc]
    """
    The subscribed connection's factory: raw bytes in (no decoding, no
    numbers), and the hub told when the connection comes and goes.
    """

    protocol = _Subscriber

    def __init__(self, hub: IRedisLinkObserver, password: str | None):
        super().__init__(isLazy=True)
        self.hub = hub
        self.password = password
        self.charset = None
        self.convertNumbers = False

    def addConnection(self, connection: Any) -> None:
        super().addConnection(connection)
        if connection in self.pool:
            self.hub.linkReady(SUBSCRIBER, connection)

    def delConnection(self, connection: Any) -> None:
        super().delConnection(connection)
        self.hub.linkLost(SUBSCRIBER, connection)
