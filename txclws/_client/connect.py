# -*- test-case-name: tests.test_client -*-
"""
Connecting a WebSocket client: L{connectWebSocket} (a C{ws://} or
C{wss://} URL, directly or through an HTTP proxy) and
L{connectWebSocketEndpoint} (over any client endpoint).

Each returns a C{Deferred} that fires with the open connection (a
L{WebSocketClientProtocol}, an L{txclws.IWebSocketClient}) or fails: with
L{HandshakeFailed} when the server (or the proxy) answered something other
than an acceptance, or did not answer within C{handshakeTimeout}; with the
endpoint's error (e.g. C{ConnectionRefusedError}) when no connection was
made.  Cancelling it abandons the attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IOpenSSLClientConnectionCreator,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from txclws._client.owner import ClientOwner
from txclws._client.protocol import WebSocketClientProtocol
from txclws._core.clientdeflate import DeflateOffer
from txclws._core.clienthandshake import ClientOpening, ClientSettings, WebSocketURL
from txclws._core.clientproxy import ProxyTunnel
from txclws._core.errors import HandshakeFailed
from txclws._resource import IWebSocketResource

__all__ = ["connectWebSocket", "connectWebSocketEndpoint"]

#: The default limits of what a client accepts from a server: 16 MiB.
DEFAULT_MAX_SIZE = 1 << 24


def connectWebSocket(
    reactor: Any,
    url: str,
    resource: IWebSocketResource,
    origin: str | None = None,
    subprotocols: Sequence[str] = (),
    headers: Iterable[tuple[str, str]] = (),
    deflate: DeflateOffer | bool | None = None,
    proxy: str | None = None,
    handshakeTimeout: float = 10.0,
    closeTimeout: float = 5.0,
    pingInterval: float | None = None,
    maxMessageSize: int = DEFAULT_MAX_SIZE,
    maxFrameSize: int = DEFAULT_MAX_SIZE,
    tlsOptions: IOpenSSLClientConnectionCreator | None = None,
) -> Deferred[WebSocketClientProtocol]:
    """
    Open a WebSocket connection to C{url}, served by C{resource}.

    @param reactor: the reactor (TCP, time).
    @param url: a C{ws://} or C{wss://} URL (RFC 6455 section 3).
    @param resource: the application: its L{IWebSocketResource} callbacks
        get the connection (C{clientConnected} once open, then the
        server's messages, C{clientDisconnected} once it is gone), with the
        server's ordering and pause-while-a-Deferred-pends rules.
    @param origin: the C{Origin} header to send, or C{None}.
    @param subprotocols: subprotocols to offer, in order of preference.
    @param headers: extra request headers, as C{(name, value)} pairs.
    @param deflate: C{True} or a L{DeflateOffer} to offer permessage-deflate.
    @param proxy: C{"http://host:port"}: tunnel through this HTTP proxy with
        C{CONNECT}.
    @param handshakeTimeout: seconds from the start (TCP, proxy and TLS
        included) to the open connection, else L{HandshakeFailed}.
    @param closeTimeout: seconds to wait for the close handshake, and then
        for the server to close the TCP connection (RFC 6455 7.1.1).
    @param pingInterval: ping the server when it has been quiet this long,
        and drop the connection if it does not answer within as long;
        C{None}: no pings.
    @param maxMessageSize: the largest message accepted (1009 over it).
    @param maxFrameSize: the largest frame payload accepted (1009 over it).
    @param tlsOptions: for C{wss://}, the TLS options to use instead of
        C{optionsForClientTLS(host)} (which verifies the server's
        certificate against the system's trust roots).
    @raise ValueError: the URL, the proxy or a header is invalid.
    @since: 0.2.0
    """
    target = WebSocketURL.parse(url)
    tls = None
    if target.secure:
        tls = tlsOptions if tlsOptions is not None else _verifyingTLS(target.host)
    tunnel = None
    if proxy is not None:
        host, port = _proxyAddress(proxy)
        endpoint: IStreamClientEndpoint = HostnameEndpoint(reactor, host, port)
        tunnel = ProxyTunnel(target.authority)
    else:
        endpoint = HostnameEndpoint(reactor, target.host, target.port)
        if tls is not None:
            endpoint = wrapClientTLS(tls, endpoint)
            tls = None
    settings = _settings(
        origin, subprotocols, headers, deflate, maxMessageSize, maxFrameSize
    )
    return _open(
        reactor,
        endpoint,
        ClientOpening(target, settings),
        resource,
        (handshakeTimeout, closeTimeout, pingInterval),
        tunnel,
        tls,
    )


def connectWebSocketEndpoint(
    reactor: Any,
    endpoint: IStreamClientEndpoint,
    url: str,
    resource: IWebSocketResource,
    origin: str | None = None,
    subprotocols: Sequence[str] = (),
    headers: Iterable[tuple[str, str]] = (),
    deflate: DeflateOffer | bool | None = None,
    handshakeTimeout: float = 10.0,
    closeTimeout: float = 5.0,
    pingInterval: float | None = None,
    maxMessageSize: int = DEFAULT_MAX_SIZE,
    maxFrameSize: int = DEFAULT_MAX_SIZE,
) -> Deferred[WebSocketClientProtocol]:
    """
    Open a WebSocket connection over C{endpoint} (any client endpoint: TCP,
    TLS, UNIX, a tunnel); C{url} gives the C{Host} header and the resource
    name only.  The other parameters are L{connectWebSocket}'s.

    @since: 0.2.0
    """
    target = WebSocketURL.parse(url)
    settings = _settings(
        origin, subprotocols, headers, deflate, maxMessageSize, maxFrameSize
    )
    return _open(
        reactor,
        endpoint,
        ClientOpening(target, settings),
        resource,
        (handshakeTimeout, closeTimeout, pingInterval),
    )


def _open(
    reactor: Any,
    endpoint: IStreamClientEndpoint,
    opening: ClientOpening,
    resource: IWebSocketResource,
    timers: tuple[float, float, float | None],
    tunnel: ProxyTunnel | None = None,
    tls: IOpenSSLClientConnectionCreator | None = None,
) -> Deferred[WebSocketClientProtocol]:
    """
    Connect C{endpoint} and run the opening handshake over it, within the
    handshake timeout of C{timers} (handshake, close, ping interval).
    """
    handshakeTimeout, closeTimeout, pingInterval = timers
    owner = ClientOwner(reactor, closeTimeout, pingInterval)
    attempt = _Attempt(reactor, handshakeTimeout)
    return attempt.start(
        endpoint,
        lambda opened: WebSocketClientProtocol(
            opening, resource, owner, opened, tunnel, tls
        ),
    )


def _settings(
    origin: str | None,
    subprotocols: Sequence[str],
    headers: Iterable[tuple[str, str]],
    deflate: DeflateOffer | bool | None,
    maxMessageSize: int,
    maxFrameSize: int,
) -> ClientSettings:
    offer = DeflateOffer() if deflate is True else deflate or None
    return ClientSettings(
        origin=origin,
        subprotocols=tuple(subprotocols),
        headers=tuple((str(name), str(value)) for name, value in headers),
        deflate=offer,
        maxFrameSize=maxFrameSize,
        maxMessageSize=maxMessageSize,
    )


def _proxyAddress(proxy: str) -> tuple[str, int]:
    """
    The host and port of an C{http://host:port} proxy URL.

    @raise ValueError: it is not one.
    """
    parts = urlsplit(proxy)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"proxy must be an http://host:port URL: {proxy!r}")
    return parts.hostname, parts.port or 80


class _ClientFactory(Factory):
    """
    Builds the one protocol of a connection attempt.
    """

    def __init__(self, protocol: WebSocketClientProtocol) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: IAddress | None) -> WebSocketClientProtocol:
        self._protocol.factory = self
        return self._protocol


class _Attempt:
    """
    One connection attempt: the endpoint's connection, then the handshake,
    within one timeout, and cancellable.
    """

    def __init__(self, reactor: IReactorTime, timeout: float) -> None:
        self._reactor = reactor
        self._timeout = timeout
        self._timedOut = False
        self._protocol: WebSocketClientProtocol | None = None
        self._connecting: Deferred[Any] | None = None
        self._timer: IDelayedCall | None = None
        self.opened: Deferred[WebSocketClientProtocol] = Deferred(self._cancel)

    def start(
        self,
        endpoint: IStreamClientEndpoint,
        build: Any,
    ) -> Deferred[WebSocketClientProtocol]:
        """
        Connect with C{endpoint} a protocol C{build(opened)} gives.
        """
        protocol = self._protocol = build(self.opened)
        self._timer = self._reactor.callLater(self._timeout, self._timeUp)
        self.opened.addBoth(self._settled)
        self._connecting = endpoint.connect(_ClientFactory(protocol))
        self._connecting.addErrback(self._notConnected)
        return self.opened

    def _settled(self, result: object) -> object:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        return result

    def _notConnected(self, failure: Failure) -> None:
        if self.opened.called:
            return
        if self._timedOut:
            self.opened.errback(HandshakeFailed("the connection attempt timed out"))
        else:
            self.opened.errback(failure)

    def _timeUp(self) -> None:
        self._timer = None
        self._timedOut = True
        assert self._protocol is not None
        if self._protocol.transport is not None:
            self._protocol.handshakeTimedOut()
        elif self._connecting is not None:
            self._connecting.cancel()

    def _cancel(self, opened: Deferred[WebSocketClientProtocol]) -> None:
        # Left to fail with CancelledError.
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            protocol.abandonHandshake()
        elif self._connecting is not None:
            connecting, self._connecting = self._connecting, None
            connecting.addErrback(lambda failure: failure.trap(CancelledError))
            connecting.cancel()


def _verifyingTLS(host: str) -> IOpenSSLClientConnectionCreator:
    """
    TLS options that verify C{host}'s certificate against the system's
    trust roots.  Imported here, not at the top: C{twisted.internet.ssl}
    needs pyOpenSSL (the C{tls} extra), and C{import txclws}, the daemon
    included, must not.

    @raise ImportError: pyOpenSSL is not installed.
    """
    from twisted.internet.ssl import optionsForClientTLS

    return optionsForClientTLS(host)
