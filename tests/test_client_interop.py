"""
The txclws client against real servers over 127.0.0.1: C{websockets}'
asyncio server (in a thread), Autobahn|Python's Twisted server
(in-process) and Node's C{ws} (a subprocess; C{ws} is installed with npm
under C{tests/.cache/node}, and a failed install fails these tests).  Each
serves the same three paths: C{/echo} echoes, C{/close} closes at once
with 4003 "bye", C{/refuse} refuses the handshake with 403.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)
from autobahn.websocket.types import ConnectionDeny
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from tests.conftest import WAIT, RecordingResource
from txclws import DeflateOffer, HandshakeFailed, connectWebSocket

HERE = Path(__file__).resolve().parent
NODE_CACHE = HERE / ".cache" / "node"


# -- websockets, in a thread -------------------------------------------------


async def _websocketsHandler(connection: ServerConnection) -> None:
    assert connection.request is not None
    if connection.request.path == "/close":
        await connection.close(4003, "bye")
        return
    async for message in connection:
        await connection.send(message)


def _websocketsRefuse(
    connection: ServerConnection, request: Request
) -> Response | None:
    if request.path != "/refuse":
        return None
    response = connection.respond(HTTPStatus.FORBIDDEN, "nope\n")
    response.headers["X-Refused"] = "yes"
    return response


@pytest_twisted.async_yield_fixture
async def websocketsServer() -> Any:
    """
    C{websockets}' asyncio server (permessage-deflate on, its default) in
    a thread of its own: yields its port.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> Any:
        return await serve(
            _websocketsHandler,
            "127.0.0.1",
            0,
            process_request=_websocketsRefuse,
            ping_interval=None,
        )

    started = asyncio.run_coroutine_threadsafe(start(), loop)
    server = started.result(WAIT)
    yield server.sockets[0].getsockname()[1]

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    # Waited for in a thread: the reactor must run meanwhile, to finish
    # closing the client side of its connections.
    stopping = asyncio.run_coroutine_threadsafe(stop(), loop)
    await deferToThread(stopping.result, WAIT)
    loop.call_soon_threadsafe(loop.stop)
    await deferToThread(thread.join, WAIT)
    loop.close()


# -- Autobahn|Python, in-process ---------------------------------------------


class _AutobahnEcho(WebSocketServerProtocol):  # type: ignore[misc]
    #: The close code and reason of every close frame received.
    closesReceived: list[tuple[int | None, str | None]] = []

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.remoteCloseCode is not None:
            self.closesReceived.append((self.remoteCloseCode, self.remoteCloseReason))

    def onConnect(self, request: Any) -> None:
        if request.path == "/refuse":
            raise ConnectionDeny(403, "nope")

    def onOpen(self) -> None:
        if self.http_request_path == "/close":
            self.sendClose(4003, "bye")

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)


def _autobahnAccept(offers: list[Any]) -> Any:
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


@pytest.fixture
def autobahnServer() -> Iterator[int]:
    """
    Autobahn|Python's Twisted server, permessage-deflate accepted: yields
    its port.
    """
    factory = WebSocketServerFactory()
    factory.protocol = _AutobahnEcho
    factory.setProtocolOptions(perMessageCompressionAccept=_autobahnAccept)
    listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
    yield listening.getHost().port
    listening.stopListening()


# -- Node's ws, in a subprocess ---------------------------------------------


def installNodeWs() -> Path:
    """
    C{ws} under L{NODE_CACHE}, installed with npm on first use.

    @raise pytest.fail.Exception: node or npm is missing, or npm failed.
    """
    if (NODE_CACHE / "node_modules" / "ws" / "package.json").is_file():
        return NODE_CACHE / "node_modules"
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed for the ws interop tests")
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(NODE_CACHE),
            "ws@8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"npm install ws failed:\n{result.stdout}\n{result.stderr}")
    return NODE_CACHE / "node_modules"


@pytest.fixture(scope="module")
def nodeServer() -> Iterator[int]:
    """
    Node's C{ws} echo server (tests/ws_echo_server.js): yields its port.
    """
    modules = installNodeWs()
    process = subprocess.Popen(
        ["node", str(HERE / "ws_echo_server.js")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={"NODE_PATH": str(modules), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            pytest.fail(f"the ws server did not start: {line!r}")
        yield int(line)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(WAIT)


@pytest.fixture(params=["websockets", "autobahn", "ws"])
def peer(request: pytest.FixtureRequest) -> tuple[str, int]:
    """
    Each real server in turn: yields C{(name, port)}.
    """
    fixture = {
        "websockets": "websocketsServer",
        "autobahn": "autobahnServer",
        "ws": "nodeServer",
    }[request.param]
    return request.param, request.getfixturevalue(fixture)


async def connect(port: int, path: str, resource: Any, **options: Any) -> Any:
    """
    The txclws client, connected to C{path} on the server at C{port}.
    """
    return await connectWebSocket(
        reactor,
        f"ws://127.0.0.1:{port}{path}",
        resource,
        handshakeTimeout=WAIT,
        **options,
    )


@pytest.fixture
def mine() -> RecordingResource:
    """
    The client's resource: records, echoes nothing.
    """
    return RecordingResource(echo=False)


@pytest_twisted.ensureDeferred
async def test_textAndBinary(peer: tuple[str, int], mine: RecordingResource) -> None:
    """
    Text (non-ASCII included), binary and empty messages come back.
    """
    client = await connect(peer[1], "/echo", mine)
    client.writeText("héllo wörld ✓")
    client.writeBinary(b"\x00\xff\x80binary")
    client.writeText("")
    assert await mine.waitFor("receivedText", 2) == ["héllo wörld ✓", ""]
    assert mine.named("receivedBinary") == [b"\x00\xff\x80binary"]
    client.close()
    await mine.waitFor("clientDisconnected")


@pytest_twisted.ensureDeferred
async def test_fragmented(peer: tuple[str, int], mine: RecordingResource) -> None:
    """
    Messages we fragment are reassembled by the server; a 1 MiB message
    (64-bit length) comes back whole.
    """
    client = await connect(peer[1], "/echo", mine)
    client.writeText("fragmented ✓" * 1000, frameSize=100)
    client.writeBinary(bytes(range(256)) * 4096, frameSize=65536)
    assert await mine.waitFor("receivedText") == ["fragmented ✓" * 1000]
    assert await mine.waitFor("receivedBinary") == [bytes(range(256)) * 4096]
    client.close()
    await mine.waitFor("clientDisconnected")


@pytest.mark.parametrize(
    "offer",
    [
        DeflateOffer(),
        DeflateOffer(clientNoContextTakeover=True, serverNoContextTakeover=True),
    ],
    ids=["context-takeover", "no-context-takeover"],
)
@pytest_twisted.ensureDeferred
async def test_deflate(
    peer: tuple[str, int], mine: RecordingResource, offer: DeflateOffer
) -> None:
    """
    permessage-deflate agreed, with and without context takeover: the
    server's answer names it, and repeated compressible messages, text
    and binary, come back intact.
    """
    client = await connect(peer[1], "/echo", mine, deflate=offer)
    agreed = client.responseHeaders["sec-websocket-extensions"]
    assert agreed.startswith("permessage-deflate")
    if offer.serverNoContextTakeover:
        assert "server_no_context_takeover" in agreed
    message = "the same words again and again " * 40
    for _ in range(3):
        client.writeText(message)
        client.writeBinary(message.encode() * 3)
    assert await mine.waitFor("receivedText", 3) == [message] * 3
    assert await mine.waitFor("receivedBinary", 3) == [message.encode() * 3] * 3
    client.close()
    await mine.waitFor("clientDisconnected")


@pytest_twisted.ensureDeferred
async def test_clientCloses(peer: tuple[str, int], mine: RecordingResource) -> None:
    """
    Our close code goes to the server, which echoes it (RFC 6455 5.5.1)
    and closes the TCP connection; the client is told once.
    """
    name, port = peer
    _AutobahnEcho.closesReceived.clear()
    client = await connect(port, "/echo", mine)
    client.close(4001, "client bye")
    await mine.waitFor("clientDisconnected")
    assert mine.named("clientDisconnected") == [client]
    if name == "autobahn":
        # Autobahn answers every close with 1000; it did get ours.
        assert _AutobahnEcho.closesReceived == [(4001, "client bye")]
        assert client.closeCode == 1000
    else:
        assert client.closeCode == 4001


@pytest_twisted.ensureDeferred
async def test_serverCloses(peer: tuple[str, int], mine: RecordingResource) -> None:
    """
    The server's close code and reason reach the client.
    """
    client = await connect(peer[1], "/close", mine)
    await mine.waitFor("clientDisconnected")
    assert (client.closeCode, client.closeReason) == (4003, "bye")


@pytest_twisted.ensureDeferred
async def test_refused(peer: tuple[str, int], mine: RecordingResource) -> None:
    """
    A refused handshake is a HandshakeFailed with the status and headers
    the server sent.
    """
    name, port = peer
    with pytest.raises(HandshakeFailed) as caught:
        await connect(port, "/refuse", mine)
    failure = caught.value
    assert failure.status == 403
    if name == "autobahn":
        # Autobahn's refusals take no extra headers; its status line says
        # why.
        assert str(failure) == "the server refused the handshake: 403 nope"
    else:
        assert failure.headers["x-refused"] == "yes"
    assert mine.events == []
