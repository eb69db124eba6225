"""
L{txclws.WebSocketFactory.drain} (issue 17, L{txclws._drain}): refuse
handshakes while draining (503, C{Retry-After}), close every client with
1012 at its own offset in [0, spread], and fire once all are gone, within
a bounded time.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.internet.threads import blockingCallFromThread
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests._h2client import H2Client, maskedFrame
from tests._h2server import Server, accept, closeCode, inThread
from tests.test_client_api import HIXIE_REQUEST, HYBI_REQUEST, PEER
from txclws import WebSocketFactory, WebSocketResource, anyOrigin
from txclws._drain import drainOffsets
from txclws._factory import ResourceRegistry
from txclws.testing import InMemoryServer
from txclws.web import WebSocketSite, mountWebSocket


class Fixed:
    """
    A random source that returns the given values in turn.
    """

    def __init__(self, *values: float) -> None:
        self.values = list(values)
        self.asked: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.asked.append((a, b))
        return self.values.pop(0)


def _server(**limits: Any) -> InMemoryServer:
    server = InMemoryServer(closeTimeout=5.0, **limits)
    server.register("/r", WebSocketResource())
    return server


def test_offsetsWithinSpread() -> None:
    """
    Each client's offset is drawn uniform in [0, spread] and clamped there.
    """
    source = Fixed(0.0, 1.5, 3.0, 7.0, -1.0)
    assert drainOffsets(5, 3.0, source) == [0.0, 1.5, 3.0, 3.0, 0.0]
    assert source.asked == [(0.0, 3.0)] * 5


def test_drainClosesEachAtItsOffset() -> None:
    """
    Every client gets 1012 "service restart" at its own offset, not
    before; the Deferred fires once the last has gone.
    """
    server = _server()
    clients = [server.connect("/r") for _ in range(3)]
    fired: list[object] = []
    server.factory.drain(spread=2.0, random=Fixed(0.5, 1.0, 2.0)).addBoth(fired.append)

    def closed() -> int:
        return sum(c.closeCode == 1012 for c in clients)

    server.advance(0.4)
    assert closed() == 0
    server.advance(0.2)  # 0.6: the first offset passed
    assert closed() == 1
    first = next(c for c in clients if c.closeCode == 1012)
    assert first.closeReason == "service restart"
    assert first.disconnected
    server.advance(0.5)  # 1.1
    assert closed() == 2
    assert fired == []
    server.advance(1.0)  # 2.1
    assert closed() == 3
    assert fired == [None]
    assert not server.clock.getDelayedCalls()


def test_handshakeRefusedWhileDraining() -> None:
    """
    A handshake arriving while draining is refused with 503 and
    Retry-After; before the drain it was accepted.
    """
    server = _server()
    server.connect("/r")
    server.factory.drain(spread=0.0)
    refused = server.connect("/r", requireAccept=False)
    assert refused.status == 503
    assert refused.responseHeaders["retry-after"] == "1"


def test_drainThroughWebSocketSite() -> None:
    """
    The same on twisted.web's WebSocketSite: 503 while draining, 1012 to
    the clients there.
    """
    clock = MemoryReactorClock()
    registry = ResourceRegistry()
    registry.register("/r", WebSocketResource(), anyOrigin)
    factory = WebSocketFactory(registry, reactor=clock)
    server = InMemoryServer(WebSocketSite(Resource(), factory), clock=clock)
    client = server.connect("/r")
    factory.drain(spread=0.0)
    server.advance(0)
    assert client.closeCode == 1012
    refused = server.connect("/r", requireAccept=False)
    assert refused.status == 503


def test_drainThroughPlainSite() -> None:
    """
    A plain twisted.web Site with a mounted WebSocketUpgradeResource
    refuses with the same 503 while its factory drains, and its clients
    get 1012.
    """
    clock = MemoryReactorClock()
    factory = WebSocketFactory(ResourceRegistry(), reactor=clock)
    root = Resource()
    mountWebSocket(root, "/r", WebSocketResource(), anyOrigin, factory)
    server = InMemoryServer(Site(root), clock=clock)  # type: ignore[arg-type]
    client = server.connect("/r")
    factory.drain(spread=0.0)
    server.advance(0)
    assert client.closeCode == 1012
    refused = server.connect("/r", requireAccept=False)
    assert refused.status == 503
    assert refused.responseHeaders["retry-after"] == "1"


def test_stuckClientAbortedAtTimeout() -> None:
    """
    A client that never answers its 1012 is aborted by the timeout, and
    the drain fires then: the wait is bounded.
    """
    server = _server()
    client = server.connect("/r", autoClose=False)
    fired: list[object] = []
    server.factory.drain(timeout=3.0, spread=1.0, random=Fixed(1.0)).addBoth(
        fired.append
    )
    server.advance(1.0)
    assert client.closeCode == 1012
    server.advance(1.9)
    assert fired == []
    server.advance(0.2)
    assert fired == [None]
    assert client.disconnected


def test_noClients() -> None:
    """
    With no client the drain fires at once, and refuses from then on.
    """
    server = _server()
    fired: list[object] = []
    server.factory.drain(spread=5.0).addBoth(fired.append)
    assert fired == [None]
    assert server.factory.settings.draining


@pytest.mark.parametrize(
    "timeout, spread", [(None, -1.0), (None, float("inf")), (1.0, 2.0)]
)
def test_badArguments(timeout: float | None, spread: float) -> None:
    """
    A negative or infinite spread, or a timeout under the spread, is a
    ValueError, and the factory is not left draining.
    """
    server = _server()
    with pytest.raises(ValueError):
        server.factory.drain(timeout=timeout, spread=spread)
    assert not server.factory.draining


@pytest.mark.parametrize(
    "version, request_, expected",
    [
        (8, HYBI_REQUEST.format(version=8).encode(), b"\x88\x11\x03\xe9"),
        (7, HYBI_REQUEST.format(version=7).encode(), b"\x88\x11\x03\xe9"),
        (13, HYBI_REQUEST.format(version=13).encode(), b"\x88\x11\x03\xf4"),
        (0, HIXIE_REQUEST, b"\xff\x00"),
    ],
)
def test_draftPeers(version: int, request_: bytes, expected: bytes) -> None:
    """
    hybi-07/08 peers get 1001 (their drafts have no 1012), RFC 6455 peers
    1012, hixie-76 peers the closing frame alone.
    """
    registry = ResourceRegistry()
    registry.register("/demo", WebSocketResource(), anyOrigin)
    clock = MemoryReactorClock()
    factory = WebSocketFactory(registry, reactor=clock, protocol76Support=True)
    protocol = factory.buildProtocol(PEER)
    transport = StringTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    protocol.dataReceived(request_)
    assert transport.value().startswith(b"HTTP/1.1 101 ")
    transport.clear()
    factory.drain(spread=0.0)
    clock.advance(0)
    # 0x88: FIN + close; 0x11: 17 bytes, the code then "service restart".
    assert transport.value().startswith(expected)
    if version:
        assert transport.value().endswith(b"service restart")


@pytest_twisted.ensureDeferred
async def test_drainHTTP2Streams(h2server: Server) -> None:
    """
    Over HTTP/2 (RFC 8441): a WebSocket stream open when the drain starts
    is sent 1012, and an extended CONNECT while draining is refused with
    503 and Retry-After, on the same connection.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            streamID = accept(client)
            blockingCallFromThread(reactor, h2server.factory.drain, 5.0, 0.0)
            frame = client.frames(streamID)[0]
            client.send(streamID, maskedFrame(0x8, frame[2]), end=True)
            refused = client.response(client.websocket())
            return frame, refused

    (_fin, opcode, payload), refused = await inThread(run)
    assert opcode == 0x8 and closeCode(payload) == 1012
    assert payload[2:] == b"service restart"
    assert refused.status == 503
    assert refused.headers["retry-after"] == "1"
