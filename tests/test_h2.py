"""
WebSockets over HTTP/2 (RFC 8441) and pages on the same connection: a real
txclws L{WebSocketSite} on loopback TLS (ALPN C{h2}) and cleartext C{h2c},
and the blocking C{h2} client of L{tests._h2client}, run in threads so
that the reactor keeps serving.
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
from twisted.web.static import Data

from tests._h2client import H2Client, maskedFrame
from tests.conftest import RecordingResource
from tests.test_tls import makeCertificate
from txclws import ResourceRegistry, WebSocketFactory, anyOrigin
from txclws.web import WebSocketSite

_T = TypeVar("_T")

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """
    A throw-away certificate and key.
    """
    return makeCertificate(tmp_path_factory.mktemp("h2tls"))


class Server:
    """
    A L{WebSocketSite} on a TLS port and a plain port (C{h2c} on), with a
    recording echo resource at C{/echo} and a page at C{/}.
    """

    def __init__(self, resource: RecordingResource) -> None:
        self.resource = resource
        self.factory = WebSocketFactory(ResourceRegistry(), closeTimeout=2.0)
        self.factory.registerResource("/echo", resource, anyOrigin)
        self.factory.registerResource(
            "/strict", RecordingResource(), lambda origin: origin == "https://ok"
        )
        root = Resource()
        root.putChild(b"", Data(b"<html>hello over h2</html>", "text/html"))
        root.putChild(b"big", Data(b"x" * 300000, "application/octet-stream"))
        self.site = WebSocketSite(root, self.factory, h2c=True)
        self.site.displayTracebacks = False
        self.tlsPort = self.plainPort = 0
        self.ports: list[Any] = []


@pytest_twisted.async_yield_fixture
async def h2server(certificate: tuple[Path, Path]) -> Any:
    """
    A L{Server} listening on 127.0.0.1.
    """
    cert, key = certificate
    server = Server(RecordingResource())
    tls = await serverFromString(
        reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    ).listen(server.site)
    plain = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
        server.site
    )
    server.ports = [tls, plain]
    server.tlsPort, server.plainPort = tls.getHost().port, plain.getHost().port
    yield server
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


@pytest_twisted.ensureDeferred
async def test_settingsAndEcho(h2server: Server) -> None:
    """
    Over TLS, ALPN picks h2, the server advertises
    SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 3), accepts an extended
    CONNECT with 200, and echoes a text and a binary message.
    """

    def run() -> tuple[Any, ...]:
        with H2Client(h2server.tlsPort) as client:
            settings = client.settingsAcknowledged()
            streamID = accept(client)
            client.send(streamID, maskedFrame(TEXT, "héllo".encode()))
            client.send(streamID, maskedFrame(BINARY, b"\x00\xff"))
            return client.alpn, settings, client.frames(streamID, 2)

    alpn, settings, frames = await inThread(run)
    assert alpn == "h2"
    assert settings[0x8] == 1  # SETTINGS_ENABLE_CONNECT_PROTOCOL
    assert settings[0x3] == 100  # SETTINGS_MAX_CONCURRENT_STREAMS
    assert frames[:2] == [(True, TEXT, "héllo".encode()), (True, BINARY, b"\x00\xff")]
    assert h2server.resource.named("receivedText") == ["héllo"]
