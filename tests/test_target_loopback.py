"""
Request targets over real sockets (issue 11, defects 6 and 7): a raw
client on 127.0.0.1 sends targets in absolute form, which route as their
origin form does, and targets with octets that are not ASCII, which get
an HTTP 400 (never an internal error and a reset), for RFC 6455, hybi-08
and hixie-76 alike.

Each exchange runs in a thread while the reactor serves; every socket
operation is bounded by L{tests._rawsocket.TIMEOUT}.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests._rawsocket import RawClient, upgradeRequest
from tests.conftest import failuresLogged

#: A hixie-76 request's headers (draft section 1.3's keys) and its body.
HIXIE = (
    b"Host: 127.0.0.1\r\n"
    b"Upgrade: WebSocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n"
    b"Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n"
    b"\r\n"
) + b"^n:ds[4U"


def rfcRequest(target: bytes, version: str = "13") -> bytes:
    """
    An RFC 6455 (or hybi) upgrade request for the raw bytes C{target}.
    """
    return upgradeRequest("/TARGET", version=version).replace(b"/TARGET", target)


@pytest.mark.parametrize(
    "target",
    [
        b"http://127.0.0.1/echo",
        b"HTTP://127.0.0.1:9/echo?x=1",
        b"ws://127.0.0.1/echo",
        b"wss://localhost/echo",
    ],
)
@pytest_twisted.ensureDeferred
async def test_absoluteFormRoutes(echoServer: Any, target: bytes) -> None:
    """
    An absolute-form target for C{/echo} is upgraded and echoes, as
    C{/echo} is; the resource sees the origin-form path.
    """
    port, _, resource = echoServer

    def run() -> tuple[str, bytes]:
        with RawClient(port) as client:
            client.send(rfcRequest(target))
            statusLine, headers = client.readHead()
            assert headers.get("sec-websocket-accept"), headers
            return statusLine, client.echo("hi").payload

    statusLine, echoed = await deferToThread(run)
    assert (statusLine, echoed) == ("HTTP/1.1 101 Switching Protocols", b"hi")
    [client] = resource.named("clientConnected")
    assert client.resourceName == "/echo"


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"http://127.0.0.1/other", "HTTP/1.1 404 Not Found"),
        (b"ftp://127.0.0.1/echo", "HTTP/1.1 400 Bad Request"),
        (b"http://user@127.0.0.1/echo", "HTTP/1.1 400 Bad Request"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_absoluteFormRefused(echoServer: Any, target: bytes, status: str) -> None:
    """
    An absolute-form target routes exactly: another path is 404; another
    scheme or a userinfo part is 400.
    """
    port, _, _ = echoServer

    def run() -> str:
        with RawClient(port) as client:
            client.send(rfcRequest(target))
            return client.readRefusal()[0]

    assert await deferToThread(run) == status


@pytest.mark.parametrize("kind", ["13", "8", "hixie-76"])
@pytest_twisted.ensureDeferred
async def test_nonAsciiTarget(echoServer: Any, logEvents: Any, kind: str) -> None:
    """
    C{GET /echo?\\xe9} is answered 400 and closed, with no failure logged,
    whatever the version; with hixie-76 on, it used to reset the
    connection with a C{UnicodeEncodeError} building
    C{Sec-WebSocket-Location}.
    """
    port, factory, resource = echoServer
    factory.protocol76Support = True
    if kind == "hixie-76":
        request = b"GET /echo?\xe9 HTTP/1.1\r\n" + HIXIE
    else:
        request = rfcRequest(b"/echo?\xe9", version=kind)

    def run() -> tuple[str, bytes]:
        with RawClient(port) as client:
            client.send(request)
            statusLine, _, body = client.readRefusal()
            return statusLine, body

    statusLine, body = await deferToThread(run)
    assert statusLine == "HTTP/1.1 400 Bad Request"
    assert body == b"request target is not visible ASCII\n"
    assert resource.named("clientConnected") == []
    assert failuresLogged(logEvents) == []
