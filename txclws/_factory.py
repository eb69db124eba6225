# -*- test-case-name: tests.test_factory -*-
"""
The server factory that holds the limits and the clients, and L{runServer},
CLWS's C{run-server}.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolNegotiationFactory,
    IReactorTime,
)
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws._core.accept import ServerSettings
from txclws._core.deflate import PerMessageDeflate
from txclws._core.origin import OriginCheck
from txclws._drain import Uniform, closeClients, drainClients
from txclws._protocol import WebSocketServerProtocol
from txclws._proxyaddress import TrustedProxies
from txclws._ratelimit import HandshakeLimiter, RateLimit
from txclws._registry import (
    ResourceRegistry,
    findGlobalResource,
    globalResources,
    registerGlobalResource,
)
from txclws._resource import IWebSocketResource
from txclws._session.keepalive import KeepalivePolicy, KeepaliveSweep
from txclws._session.session import WebSocketSession

if TYPE_CHECKING:
    from txclws._metrics import ServerMetrics

__all__ = [
    "DEFAULT_BACKLOG",
    "ResourceRegistry",
    "WebSocketFactory",
    "findGlobalResource",
    "globalResources",
    "registerGlobalResource",
    "runServer",
]

#: Listen backlog used by L{runServer}.  CLWS's default of 5 drops
#: connections under any burst; 511 is what nginx and Redis use, and Linux
#: caps it at C{net.core.somaxconn} anyway.
DEFAULT_BACKLOG = 511


@implementer(IProtocolNegotiationFactory)
class WebSocketFactory(Factory):
    """
    Builds a L{WebSocketServerProtocol} per connection, and holds what they
    share: the resources and the limits.

    @ivar registry: the L{ResourceRegistry} served.
    @ivar clients: every client past the opening handshake, open or closing.
    @ivar maxClients: the most clients at once; over it, the handshake is
        refused with 503.  C{None}: no limit.
    @ivar maxFrameSize: the largest frame payload a client may send; over
        it, the connection is closed with 1009.
    @ivar maxMessageSize: the largest message a client may send; over it,
        the connection is closed with 1009, before the excess is buffered.
    @ivar maxHeadSize: the largest opening handshake request head; over it,
        431.
    @ivar handshakeTimeout: seconds a client has to send its whole request
        head before it is answered 408 and dropped.
    @ivar closeTimeout: seconds to wait for the client's close frame after
        ours (and for it to close TCP after a failure) before dropping it.
    @ivar debugResourceErrors: see L{WebSocketFactory.__init__}.
    @ivar debugServerErrors: see L{WebSocketFactory.__init__}.
    @ivar deflate: the L{PerMessageDeflate} policy, or C{None}.
    @ivar protocol76Support: whether hixie-76 / hybi-00 clients are served.
    @ivar pingInterval: see L{WebSocketFactory.__init__}.
    @ivar pingTimeout: see L{WebSocketFactory.__init__}.
    @ivar idleTimeout: see L{WebSocketFactory.__init__}.
    @ivar maxBuffer: see L{WebSocketFactory.__init__}.
    @ivar slowClientTimeout: see L{WebSocketFactory.__init__}.
    @ivar draining: whether L{drain} was called: handshakes get 503.
    """

    #: The protocol built per connection: a subclass may set its own.
    protocol: type[WebSocketServerProtocol] = WebSocketServerProtocol

    def __init__(
        self,
        registry: ResourceRegistry | None = None,
        *,
        maxClients: int | None = None,
        maxFrameSize: int = 1 << 20,
        maxMessageSize: int = 1 << 20,
        maxHeadSize: int = 16384,
        handshakeTimeout: float = 10.0,
        closeTimeout: float = 5.0,
        debugResourceErrors: bool = False,
        debugServerErrors: bool = False,
        deflate: PerMessageDeflate | None = None,
        protocol76Support: bool = False,
        pingInterval: float | None = 20.0,
        pingTimeout: float = 20.0,
        idleTimeout: float | None = None,
        maxBuffer: int = 1 << 20,
        slowClientTimeout: float = 10.0,
        maxQueuedBytes: int | None = None,
        metrics: ServerMetrics | None = None,
        trustedProxies: Sequence[str] = (),
        rateLimit: RateLimit | None = None,
        maxHandshakesPerSecond: float | None = None,
        reactor: IReactorTime | None = None,
    ) -> None:
        """
        @param registry: the resources to serve; C{None} serves the global
            registry (L{registerGlobalResource}), as CLWS does.
        @param debugResourceErrors: CLWS's C{*debug-on-resource-errors*}.
            When a resource callback raises or its Deferred fails, the
            error is always logged with its traceback.  False (the default):
            that client is closed with 1011.  True: the client stays
            connected, the message that failed is dropped, and
            L{debugFailure} is called with the failure; by default it runs
            C{pdb.post_mortem} on the traceback, which blocks the reactor
            while you debug: for interactive development only.
        @param debugServerErrors: CLWS's C{*debug-on-server-errors*}.  An
            unexpected exception inside txclws itself (a bug) is always
            logged and that connection aborted; when True, L{debugFailure}
            is called with it first.
        @param deflate: the permessage-deflate policy (RFC 7692) offered to
            RFC 6455 clients, or C{None} (the default) for no compression.
            Off by default: it costs CPU and, with context takeover, up to
            ~300 KiB per connection that uses it, and compressing secrets
            beside attacker-chosen text leaks them (CRIME/BREACH).  See
            L{PerMessageDeflate}.
        @param protocol76Support: CLWS's C{*protocol-76/00-support*}: also
            accept draft-hixie-76 / hybi-00 clients (version 0, text only).
            Off by default; when off, such a request is refused with 426.
        @param pingInterval: ping a client from which nothing has arrived
            for this many seconds (keepalive: it also keeps NAT and proxy
            mappings alive); C{None} turns keepalive off.  hixie-76 has no
            pings, so its clients are never pinged.
        @param pingTimeout: drop a pinged client from which nothing arrives
            within this many seconds.
        @param idleTimeout: close (1001) a client from which nothing has
            arrived for this many seconds, pings answered or not; C{None}
            (the default): never.
        @param maxBuffer: the per-client write high-water mark, in bytes.  A
            broadcast to a client that has more than this still buffered
            (it reads too slowly) starts a grace period of
            C{slowClientTimeout}; if it is still over when that ends, or
            over twice the mark at any broadcast, it is closed with 1008
            and gets no more broadcasts.  A direct C{write*} is never
            dropped; use C{client.drained()} to pace those.
        @param slowClientTimeout: the grace period above, in seconds.
        @param maxQueuedBytes: while a resource callback is pending, the
            server goes on reading the client (so that it sees at once a
            client that leaves) and queues its events, up to this many
            payload bytes (each event also counts 64); past it, it stops
            reading the client until the queue is back under it.  C{None}
            (the default): C{maxMessageSize}.  (Since 0.2.0.)
        @param metrics: count this server's traffic in these Prometheus
            metrics (L{txclws._metrics.ServerMetrics}; needs the C{metrics}
            extra); C{None} (the default): count nothing, at no cost.
            (Since 0.2.0.)
        @param trustedProxies: addresses and CIDR networks of the proxies
            whose C{X-Forwarded-For} and C{Forwarded} (RFC 7239) headers are
            believed: behind them the client is the rightmost untrusted
            address of the chain; from any other peer those headers are
            ignored.  Empty (the default): the peer is the client.  (Since
            0.2.0; see L{txclws._proxyaddress}.)
        @param rateLimit: each client's limits (messages and bytes per
            second, burst, policy: L{RateLimit}); a resource's own
            C{rateLimit} attribute, if set, is used for its clients
            instead.  C{None} (the default): no limit, at no cost.
        @param maxHandshakesPerSecond: most opening handshakes per second
            from one source address (the client's, behind trusted
            proxies), with a burst of as many; beyond it the handshake is
            refused with 503 and C{Retry-After}.  C{None}: no limit.
        @param reactor: the reactor for timeouts; the global one by default.
        """
        self.registry = registry if registry is not None else globalResources
        self.clients: set[WebSocketSession] = set()
        self.maxClients = maxClients
        self.maxFrameSize = maxFrameSize
        self.maxMessageSize = maxMessageSize
        self.maxHeadSize = maxHeadSize
        self.handshakeTimeout = handshakeTimeout
        self.closeTimeout = closeTimeout
        self.debugResourceErrors = debugResourceErrors
        self.debugServerErrors = debugServerErrors
        self.deflate = deflate
        self.protocol76Support = protocol76Support
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.idleTimeout = idleTimeout
        self.maxBuffer = maxBuffer
        self.slowClientTimeout = slowClientTimeout
        self.maxQueuedBytes = (
            maxMessageSize if maxQueuedBytes is None else maxQueuedBytes
        )
        self._keepalive = KeepaliveSweep(
            lambda: self.reactor, self.keepalivePolicy, self.clients
        )
        self.trustedProxies = TrustedProxies(trustedProxies) if trustedProxies else None
        self.rateLimit = rateLimit
        self.handshakeLimiter = (
            None
            if maxHandshakesPerSecond is None
            else HandshakeLimiter(maxHandshakesPerSecond)
        )
        self.metrics = metrics
        if metrics is not None:
            metrics.watchClients(self.clients)
        self._whenEmpty: list[Deferred[None]] = []
        self.draining = False
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self.reactor: IReactorTime = reactor

    @property
    def settings(self) -> ServerSettings:
        """
        The L{ServerSettings} acceptance applies, from the current limits.
        """
        return ServerSettings(
            maxFrameSize=self.maxFrameSize,
            maxMessageSize=self.maxMessageSize,
            deflate=self.deflate,
            protocol76Support=self.protocol76Support,
            maxClients=self.maxClients,
            draining=self.draining,
        )

    def keepalivePolicy(self) -> KeepalivePolicy:
        """
        The current keepalive settings.
        """
        return KeepalivePolicy(self.pingInterval, self.pingTimeout, self.idleTimeout)

    def clientOpened(self, client: WebSocketSession) -> None:
        """
        The client registration contract, called by each session: C{client}
        is past its opening handshake; it counts against C{maxClients}, is
        in L{clients} and is swept for keepalive until L{clientClosed}.
        """
        self.clients.add(client)
        self._keepalive.clientsChanged()
        if self.metrics is not None:
            self.metrics.opened(client)

    def clientClosed(self, client: WebSocketSession) -> None:
        """
        C{client}'s connection is gone (see L{clientOpened}).
        """
        if self.metrics is not None and client in self.clients:
            self.metrics.closed(client)
        self.clients.discard(client)
        self._keepalive.clientsChanged()
        if not self.clients:
            waiting, self._whenEmpty = self._whenEmpty, []
            for waiter in waiting:
                waiter.callback(None)

    def clientsGone(self) -> Deferred[None]:
        """
        A Deferred firing once no client is left.  @since: 0.2.0
        """
        if not self.clients:
            return succeed(None)
        gone: Deferred[None] = Deferred()
        self._whenEmpty.append(gone)
        return gone

    def closeAllClients(
        self,
        code: int = 1001,
        reason: str = "server shutting down",
        timeout: float | None = None,
    ) -> Deferred[None]:
        """
        Close every client now, and drop those still there after C{timeout}
        seconds (C{closeTimeout} by default): a stop on purpose (L{runServer}
        and C{twistd clws} on shutdown).  See L{closeClients}.
        """
        return closeClients(self, code, reason, timeout)

    def drain(
        self,
        timeout: float | None = None,
        spread: float = 0.0,
        random: Uniform | None = None,
    ) -> Deferred[None]:
        """
        Drain for a restart (L{drainClients}): refuse every handshake from
        now on (503, C{Retry-After: 1}), close each client with 1012 at its
        own random offset in [0, C{spread}] seconds, abort those left after
        C{timeout} (default: C{spread} + C{closeTimeout}); the caller stops
        its ports.  C{random}: the offsets' source (C{random.Random}).

        @return: a Deferred firing once every client is gone.
        @since: 0.2.0
        """
        return drainClients(self, timeout, spread, random)

    def registerResource(
        self, path: str, resource: IWebSocketResource, originCheck: OriginCheck
    ) -> None:
        """
        Register C{resource} at C{path} in this factory's registry.  See
        L{ResourceRegistry.register}.
        """
        self.registry.register(path, resource, originCheck)

    def findResource(self, path: str) -> IWebSocketResource | None:
        """
        The resource this factory serves at C{path}, or C{None}.
        """
        return self.registry.find(path)

    def debugFailure(self, failure: Failure) -> None:
        """
        Enter the post-mortem debugger on C{failure}'s traceback; called
        only when L{debugResourceErrors} or L{debugServerErrors} asks for
        it.  Override to do something else.
        """
        import pdb

        tb = failure.getTracebackObject()
        if tb is not None:
            pdb.post_mortem(tb)

    def acceptableProtocols(self) -> list[bytes]:
        """
        The protocols this factory speaks after TLS, for ALPN (RFC 7301):
        HTTP/1.1 alone.  On an C{ssl:} endpoint Twisted always installs an
        ALPN selection callback and asks the factory; without this, every
        client that offers ALPN (every browser) is refused mid-handshake.
        See C{IProtocolNegotiationFactory.acceptableProtocols}.

        @return: C{[b"http/1.1"]}, most preferred first.
        @since: 0.2.0
        """
        return [b"http/1.1"]


def runServer(
    port: int,
    backlog: int = DEFAULT_BACKLOG,
    interface: str = "",
    reactor: Any = None,
    registry: ResourceRegistry | None = None,
    **limits: Any,
) -> Deferred[IListeningPort]:
    """
    Listen for WebSocket clients on a TCP port (CLWS's C{run-server}).

    Unlike CLWS's, it does not block: it returns at once, and the server
    runs when the reactor does.

    @param port: the TCP port (0 picks a free one).
    @param backlog: the listen backlog (CLWS's C{*default-socket-backlog*}).
    @param interface: the address to listen on; all of them by default.
    @param registry: as for L{WebSocketFactory}; the global one by default.
    @param limits: any other keyword argument of L{WebSocketFactory}, e.g.
        C{maxClients=1000}.
    @return: a Deferred firing with the listening port.
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        reactor = globalReactor
    factory = WebSocketFactory(registry, reactor=reactor, **limits)
    endpoint = TCP4ServerEndpoint(reactor, port, backlog=backlog, interface=interface)

    def listening(listeningPort: IListeningPort) -> IListeningPort:
        # Stopping on purpose: stop accepting, then close every client
        # with 1001 and wait (up to closeTimeout) for them to go.
        reactor.addSystemEventTrigger(
            "before", "shutdown", _stopServing, listeningPort, factory
        )
        return listeningPort

    # TCP4ServerEndpoint.listen is not annotated; it returns this.
    listened: Deferred[IListeningPort] = endpoint.listen(factory)
    return listened.addCallback(listening)


def _stopServing(
    listeningPort: IListeningPort, factory: WebSocketFactory
) -> Deferred[None]:
    stopped = maybeDeferred(listeningPort.stopListening)
    return stopped.addCallback(lambda _: factory.closeAllClients())
