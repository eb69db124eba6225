"""
The HTTP/2 test server: a txclws L{WebSocketSite} on loopback TLS (ALPN
C{h2}) and on a cleartext port (C{h2c} on), as the fixture C{h2server},
with the helpers the HTTP/2 tests share.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.static import Data

from tests._h2client import H2Client
from tests.conftest import RecordingResource
from tests.test_tls import makeCertificate
from txclws import ResourceRegistry, WebSocketFactory, anyOrigin
from txclws.web import WebSocketSite

_T = TypeVar("_T")


@pytest.fixture(scope="module")
def h2certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """
    A throw-away certificate and key.
    """
    return makeCertificate(tmp_path_factory.mktemp("h2tls"))


class NeverDone(Resource):
    """
    A page that is never finished: its stream stays open until reset.
    """

    isLeaf = True

    def render_GET(self, request: Any) -> Any:
        return NOT_DONE_YET


class Server:
    """
    A L{WebSocketSite} on a TLS port and a plain port (C{h2c} on), with a
    recording echo resource at C{/echo} and a page at C{/}.
    """

    def __init__(self, resource: RecordingResource, **factoryArguments: Any) -> None:
        """
        @param factoryArguments: more L{WebSocketFactory} arguments (limits,
            C{trustedProxies}, C{rateLimit}, C{metrics}, ...).
        """
        self.resource = resource
        self.factory = WebSocketFactory(
            ResourceRegistry(), closeTimeout=2.0, **factoryArguments
        )
        self.factory.registerResource("/echo", resource, anyOrigin)
        self.factory.registerResource(
            "/strict", RecordingResource(), lambda origin: origin == "https://ok"
        )
        root = Resource()
        root.putChild(b"", Data(b"<html>hello over h2</html>", "text/html"))
        root.putChild(b"big", Data(b"x" * 300000, "application/octet-stream"))
        root.putChild(b"slow", NeverDone())
        self.site = WebSocketSite(root, self.factory, h2c=True)
        self.site.displayTracebacks = False
        self.tlsPort = self.plainPort = 0
        self.ports: list[Any] = []


@pytest_twisted.async_yield_fixture
async def h2server(h2certificate: tuple[Path, Path]) -> Any:
    """
    A L{Server} listening on 127.0.0.1.
    """
    server = await listen(Server(RecordingResource()), h2certificate)
    yield server
    await stop(server)


async def listen(server: Server, certificate: tuple[Path, Path]) -> Server:
    """
    Make C{server} listen on 127.0.0.1: TLS with C{certificate}, and plain.
    """
    cert, key = certificate
    tls = await serverFromString(
        reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    ).listen(server.site)
    plain = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
        server.site
    )
    server.ports = [tls, plain]
    server.tlsPort, server.plainPort = tls.getHost().port, plain.getHost().port
    return server


async def stop(server: Server) -> None:
    """
    Stop C{server}'s ports, and drop its clients.
    """
    for port in server.ports:
        await port.stopListening()
    for client in list(server.factory.clients):
        client.abort()


def inThread(function: Callable[[], _T]) -> Any:
    """
    Run a blocking client function in a thread.
    """
    return deferToThread(function)


def accept(client: H2Client, path: str = "/echo", **kwargs: Any) -> int:
    """
    Open a WebSocket and check that it is accepted with a 200.
    """
    streamID = client.websocket(path, **kwargs)
    response = client.response(streamID)
    assert response.status == 200, (response.status, bytes(response.data))
    assert "sec-websocket-accept" not in response.headers
    return streamID


def closeCode(payload: bytes) -> int:
    """
    The code of a close frame's payload.
    """
    return int(struct.unpack("!H", payload[:2])[0])
