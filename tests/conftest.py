"""
Shared fixtures: a resource that records what it is told, a real server on
127.0.0.1 with a fresh registry, real C{websockets} clients run in threads,
and a log capture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import connectionDone
from twisted.internet.testing import EventLoggingObserver
from twisted.internet.threads import deferToThread
from twisted.logger import LogEvent, LogLevel, globalLogPublisher
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as wsConnect

from txclws import ResourceRegistry, WebSocketFactory, WebSocketResource, anyOrigin

#: The HTTP/2 tests' server fixture (h2server).
pytest_plugins = ["tests._h2server"]

#: Upper bound, in seconds, for waiting on any event over real sockets.
WAIT = 10.0


class RecordingResource(WebSocketResource):
    """
    Records every callback as C{(name, client, argument)}, in order.

    By default it accepts every client and echoes every message.  A test
    changes a callback's result by putting a function of C{(client,
    argument)} in L{respond} under the callback's name.

    @ivar events: every callback so far.
    @ivar respond: callback name to a function giving its result.
    @ivar echo: whether text and binary messages are echoed by default.
    """

    def __init__(self, echo: bool = True) -> None:
        self.events: list[tuple[str, Any, Any]] = []
        self.respond: dict[str, Callable[[Any, Any], Any]] = {}
        self.echo = echo
        self._waiters: list[tuple[str, int, Deferred[list[Any]]]] = []

    def _record(self, name: str, client: Any, argument: Any = None) -> Any:
        self.events.append((name, client, argument))
        for waiter in list(self._waiters):
            wanted, count, d = waiter
            if len(self.named(wanted)) >= count:
                # Fire after this callback returns, not in the middle of it.
                self._waiters.remove(waiter)
                reactor.callLater(0, d.callback, self.named(wanted))
        action = self.respond.get(name)
        if action is not None:
            return action(client, argument)
        return None

    def named(self, name: str) -> list[Any]:
        """
        The arguments of every call to callback C{name} (the client, for
        C{clientConnected}/C{clientDisconnected}).
        """
        return [
            client if argument is None else argument
            for event, client, argument in self.events
            if event == name
        ]

    def waitFor(self, name: str, count: int = 1, timeout: float = WAIT) -> Deferred:
        """
        A Deferred firing with L{named}C{(name)} once callback C{name} was
        called C{count} times, failing after C{timeout} seconds.
        """
        d: Deferred[list[Any]] = Deferred()
        if len(self.named(name)) >= count:
            d.callback(self.named(name))
            return d
        self._waiters.append((name, count, d))
        return d.addTimeout(timeout, reactor)

    def clientConnected(self, client: Any) -> Any:
        return self._record("clientConnected", client)

    def clientDisconnected(self, client: Any) -> Any:
        return self._record("clientDisconnected", client)

    def receivedText(self, client: Any, message: str) -> Any:
        result = self._record("receivedText", client, message)
        if self.echo and "receivedText" not in self.respond:
            client.writeText(message)
        return result

    def receivedBinary(self, client: Any, message: bytes) -> Any:
        result = self._record("receivedBinary", client, message)
        if self.echo and "receivedBinary" not in self.respond:
            client.writeBinary(message)
        return result

    def receivedPong(self, client: Any, payload: bytes) -> Any:
        return self._record("receivedPong", client, payload)

    def selectSubprotocol(self, client: Any, offered: Any) -> Any:
        action = self.respond.get("selectSubprotocol")
        return action(client, offered) if action is not None else None


@pytest.fixture
def resource() -> RecordingResource:
    """
    A fresh L{RecordingResource} that echoes.
    """
    return RecordingResource()


@pytest.fixture
def logEvents() -> Any:
    """
    Every log event emitted during the test.
    """
    observer = EventLoggingObserver()
    globalLogPublisher.addObserver(observer)
    yield observer
    globalLogPublisher.removeObserver(observer)


def failuresLogged(events: EventLoggingObserver) -> list[LogEvent]:
    """
    The logged events that carry a failure or are warnings or worse.
    """
    return [
        event
        for event in events
        if "log_failure" in event
        or event.get("log_level", LogLevel.info) >= LogLevel.warn
    ]


class _Lost:
    """
    Whether a server-side protocol has run its C{connectionLost}, and who
    waits for it.
    """

    def __init__(self) -> None:
        self.done = False
        self.waiters: list[Deferred[None]] = []

    def fire(self) -> None:
        self.done = True
        for waiter in self.waiters:
            waiter.callback(None)


#: Every server-side protocol the L{server} fixture built.
_lost: dict[Any, _Lost] = {}


def whenLost(protocol: Any) -> Deferred[None]:
    """
    A Deferred firing once C{protocol} (built by the L{server} fixture) has
    run its C{connectionLost}, failing after L{WAIT} seconds.
    """
    lost = _lost[protocol]
    d: Deferred[None] = Deferred()
    if lost.done:
        d.callback(None)
        return d
    lost.waiters.append(d)
    return d.addTimeout(WAIT, reactor)


@pytest_twisted.async_yield_fixture
async def server() -> Any:
    """
    A L{WebSocketFactory} with an empty, fresh L{ResourceRegistry}, listening
    on 127.0.0.1 on a free port: yields C{(port, factory)}.  Afterwards,
    stops listening and drops every connection still open.
    """
    factory = WebSocketFactory(ResourceRegistry())
    built: list[Any] = []
    buildProtocol = factory.buildProtocol

    def tracking(addr: Any) -> Any:
        protocol = buildProtocol(addr)
        built.append(protocol)
        lost = _lost[protocol] = _Lost()
        connectionLost = protocol.connectionLost

        def reportingLost(reason: Any = connectionDone) -> None:
            try:
                connectionLost(reason)
            finally:
                lost.fire()

        protocol.connectionLost = reportingLost
        return protocol

    factory.buildProtocol = tracking  # type: ignore[method-assign]
    listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        yield listening.getHost().port, factory
    finally:
        await listening.stopListening()
        for protocol in built:
            if protocol.transport.connected:
                protocol.transport.abortConnection()
        await gatherResults([whenLost(protocol) for protocol in built])
        for protocol in built:
            _lost.pop(protocol, None)


@pytest.fixture
def echoServer(server: Any, resource: RecordingResource) -> Any:
    """
    L{server} with L{resource} at C{/echo} for any origin: yields
    C{(port, factory, resource)}.
    """
    port, factory = server
    factory.registerResource("/echo", resource, anyOrigin)
    return port, factory, resource


@pytest_twisted.async_yield_fixture
async def wsClient() -> Any:
    """
    A function that opens a C{websockets} sync client in a thread: call
    C{await wsClient(uri, **options)}.  Clients are closed afterwards.
    """
    opened: list[ClientConnection] = []

    async def connect(uri: str, **options: Any) -> ClientConnection:
        options = {
            "legacy": True,
            "proxy": None,
            "compression": None,
            "ping_interval": None,
            "open_timeout": WAIT,
            "close_timeout": WAIT,
            **options,
        }
        client = await deferToThread(wsConnect, uri, **options)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        await deferToThread(client.close)
