"""
Loopback tests: a real server on 127.0.0.1 and real clients, the
C{websockets} sync client (run in threads, so the reactor keeps serving)
and, where the exact frames matter, the raw client of L{tests._rawsocket}.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.sync.client import ClientConnection

from tests._rawsocket import RawClient, ServerFrame, clientFrame, closePayload
from tests.conftest import WAIT, whenLost
from txclws import REJECT, ResourceRegistry, WebSocketFactory, writeToClientsText


def uri(port: int, target: str = "/echo") -> str:
    """
    The URI of C{target} on the test server.
    """
    return f"ws://127.0.0.1:{port}{target}"


def closedBy(client: ClientConnection) -> WsConnectionClosed:
    """
    Block until the server closes C{client}; the exception that says how.
    """
    try:
        message = client.recv(WAIT)
    except WsConnectionClosed as exc:
        return exc
    raise AssertionError(f"expected a close, got {message!r}")


@pytest.mark.parametrize(
    "message",
    ["héllo wörld ✓", b"\x00\xffbinary\x80", "", b""],
    ids=["text", "binary", "empty-text", "empty-binary"],
)
@pytest_twisted.ensureDeferred
async def test_echo(echoServer: Any, wsClient: Any, message: str | bytes) -> None:
    """
    A text or binary message, empty ones included, reaches the resource as
    the right kind with the right content, and comes back unchanged.
    """
    port, _, resource = echoServer
    client = await wsClient(uri(port))
    await deferToThread(client.send, message)
    assert await deferToThread(client.recv, WAIT) == message
    kind = "receivedText" if isinstance(message, str) else "receivedBinary"
    assert resource.named(kind) == [message]


@pytest_twisted.ensureDeferred
async def test_sixteenMebibytes(echoServer: Any, wsClient: Any) -> None:
    """
    With limits raised to allow it, a 16 MiB binary message arrives whole
    and is echoed whole.
    """
    port, factory, resource = echoServer
    size = 16 * 1024 * 1024
    factory.maxFrameSize = factory.maxMessageSize = size
    message = os.urandom(size)
    client = await wsClient(uri(port), max_size=None)
    await deferToThread(client.send, message)
    echoed = await deferToThread(client.recv, WAIT * 3)
    assert len(echoed) == size and echoed == message
    [received] = resource.named("receivedBinary")
    assert received == message


@pytest_twisted.ensureDeferred
async def test_clientFragments(echoServer: Any, wsClient: Any) -> None:
    """
    A message the client sends in several frames reaches the resource as one
    message, text and binary alike.
    """
    port, _, resource = echoServer
    client = await wsClient(uri(port))
    await deferToThread(client.send, ["frag", "mént", "ed"])
    assert await deferToThread(client.recv, WAIT) == "fragménted"
    await deferToThread(client.send, [b"\x01\x02", b"", b"\x03"])
    assert await deferToThread(client.recv, WAIT) == b"\x01\x02\x03"
    assert resource.named("receivedText") == ["fragménted"]
    assert resource.named("receivedBinary") == [b"\x01\x02\x03"]


def fragmentedReply(port: int) -> list[ServerFrame]:
    """
    Send one text message over a raw socket and read three frames back.
    """
    with RawClient(port) as client:
        client.handshake()
        client.send(clientFrame(0x1, b"abcdefghij"))
        return [client.readFrame() for _ in range(3)]


@pytest_twisted.ensureDeferred
async def test_serverFragments(echoServer: Any, wsClient: Any) -> None:
    """
    C{writeText(frameSize=4)} really sends a fragmented message: a text
    frame without FIN, then continuations, the last with FIN; a real
    client reassembles it.
    """
    port, _, resource = echoServer
    resource.respond["receivedText"] = lambda c, m: c.writeText(m, frameSize=4)
    frames = await deferToThread(fragmentedReply, port)
    assert frames == [
        ServerFrame(fin=False, rsv=0, opcode=0x1, payload=b"abcd"),
        ServerFrame(fin=False, rsv=0, opcode=0x0, payload=b"efgh"),
        ServerFrame(fin=True, rsv=0, opcode=0x0, payload=b"ij"),
    ]
    client = await wsClient(uri(port))
    await deferToThread(client.send, "a longer message, in many frames")
    reply = await deferToThread(client.recv, WAIT)
    assert reply == "a longer message, in many frames"


@pytest_twisted.ensureDeferred
async def test_clientPing(echoServer: Any, wsClient: Any) -> None:
    """
    A client's ping is answered with a pong carrying its payload, and is not
    given to the resource.
    """
    port, _, resource = echoServer
    client = await wsClient(uri(port))
    pong = await deferToThread(client.ping, b"are you there")
    assert await deferToThread(pong.wait, WAIT)
    assert resource.named("receivedPong") == []


@pytest_twisted.ensureDeferred
async def test_serverPing(echoServer: Any, wsClient: Any) -> None:
    """
    C{client.ping(payload)} gets the real client's pong back to
    C{receivedPong}, with the same payload.
    """
    port, _, resource = echoServer
    await wsClient(uri(port))
    [client] = await resource.waitFor("clientConnected")
    client.ping(b"heartbeat")
    assert await resource.waitFor("receivedPong") == [b"heartbeat"]


@pytest_twisted.ensureDeferred
async def test_clientCloses(echoServer: Any, wsClient: Any) -> None:
    """
    A client closing with 4001 "bye" gets its code echoed, and the resource
    sees C{closeCode} 4001 and C{closeReason} "bye" in C{clientDisconnected}.
    """
    port, _, resource = echoServer
    client = await wsClient(uri(port))
    await deferToThread(client.close, 4001, "bye")
    [gone] = await resource.waitFor("clientDisconnected")
    assert (gone.closeCode, gone.closeReason) == (4001, "bye")
    assert client.close_code == 4001


@pytest_twisted.ensureDeferred
async def test_serverCloses(echoServer: Any, wsClient: Any) -> None:
    """
    C{client.close(4002, "done")} reaches the real client as code 4002 with
    reason "done"; the resource then gets C{clientDisconnected}.
    """
    port, _, resource = echoServer
    client = await wsClient(uri(port))
    [server] = await resource.waitFor("clientConnected")
    server.close(4002, "done")
    closed = await deferToThread(closedBy, client)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4002, "done")
    assert await resource.waitFor("clientDisconnected") == [server]
    assert server.closeCode == 4002


@pytest_twisted.ensureDeferred
async def test_reject(echoServer: Any, wsClient: Any) -> None:
    """
    A client the resource rejects is closed with 1008, its message is never
    delivered, and no C{clientDisconnected} follows, even once the
    connection is gone.
    """
    port, _, resource = echoServer
    resource.respond["clientConnected"] = lambda client, _: REJECT
    client = await wsClient(uri(port))
    [server] = await resource.waitFor("clientConnected")
    closed = await deferToThread(closedBy, client)
    assert closed.rcvd is not None and closed.rcvd.code == 1008
    await whenLost(server)
    assert [name for name, _, _ in resource.events] == ["clientConnected"]


def queryOf(port: int, target: str) -> int:
    """
    Open (and close) a raw connection to C{target}; its local port.
    """
    with RawClient(port) as client:
        client.handshake(target)
        return client.localPort


@pytest_twisted.ensureDeferred
async def test_clientAccessors(echoServer: Any, wsClient: Any) -> None:
    """
    Each accessor of the client the resource sees holds the real request's
    value: resource name, query string (None without '?', '' after a bare
    '?'), version 13, the peer's address and port, case-insensitive headers,
    and the subprotocol chosen from the offered ones.
    """
    port, _, resource = echoServer
    resource.respond["selectSubprotocol"] = lambda client, offered: (
        "chat.v1" if "chat.v1" in offered else None
    )
    ws = await wsClient(
        uri(port, "/echo?x=1&y"),
        user_agent_header="txclws-tests/1.0",
        additional_headers={"X-Test-Header": "yes"},
        subprotocols=["chat.v2", "chat.v1"],
    )
    [client] = await resource.waitFor("clientConnected")
    assert client.resourceName == "/echo"
    assert client.queryString == "x=1&y"
    assert client.websocketVersion == 13
    assert client.host == "127.0.0.1"
    assert client.port == ws.socket.getsockname()[1]
    headers = client.connectionHeaders
    assert headers["User-Agent"] == headers["user-agent"] == "txclws-tests/1.0"
    assert headers["X-TEST-HEADER"] == "yes"
    assert headers["host"] == f"127.0.0.1:{port}"
    assert "USER-AGENT" in headers
    assert client.subprotocol == ws.subprotocol == "chat.v1"

    await wsClient(uri(port, "/echo"))
    [_, plain] = await resource.waitFor("clientConnected", 2)
    assert (plain.resourceName, plain.queryString) == ("/echo", None)
    assert plain.subprotocol is None

    localPort = await deferToThread(queryOf, port, "/echo?")
    [_, _, bare] = await resource.waitFor("clientConnected", 3)
    assert (bare.resourceName, bare.queryString) == ("/echo", "")
    assert bare.port == localPort


def receiveFromAll(clients: list[ClientConnection]) -> list[Any]:
    """
    The next message of each client, in order.
    """
    return [client.recv(WAIT) for client in clients]


@pytest_twisted.ensureDeferred
async def test_broadcastToFifty(echoServer: Any, wsClient: Any) -> None:
    """
    L{writeToClientsText} to 50 connected clients reaches all 50.
    """
    port, factory, resource = echoServer
    clients = [await wsClient(uri(port)) for _ in range(50)]
    connected = await resource.waitFor("clientConnected", 50)
    assert writeToClientsText(connected, "to everyone") == 50
    assert await deferToThread(receiveFromAll, clients) == ["to everyone"] * 50
    assert len(factory.clients) == 50


def closeRaw(port: int) -> tuple[ServerFrame, bool]:
    """
    Open a raw connection, close it with 1000, and return the server's
    close frame and whether the server then closed TCP.
    """
    with RawClient(port) as client:
        client.handshake()
        client.send(clientFrame(0x8, closePayload(1000, b"raw bye")))
        before, close = client.readUntilClose()
        assert before == []
        return close, client.atEOF()


@pytest_twisted.ensureDeferred
async def test_closeHandshakeOverRawSocket(echoServer: Any) -> None:
    """
    The server answers a close frame with exactly one echoing the code (and
    no reason), then closes the TCP connection first (RFC 6455 7.1.1).
    """
    port, _, resource = echoServer
    close, eof = await deferToThread(closeRaw, port)
    # 0x88 = FIN + close; 2 bytes: 0x03e8 = 1000.
    assert close == ServerFrame(fin=True, rsv=0, opcode=0x8, payload=b"\x03\xe8")
    assert eof
    [gone] = await resource.waitFor("clientDisconnected")
    assert (gone.closeCode, gone.closeReason) == (1000, "raw bye")


@pytest_twisted.inlineCallbacks
def test_tcpNoDelay() -> Any:
    """
    The server turns Nagle's algorithm off on its TCP connections: messages
    are written whole, and a small reply must not wait for an ACK.
    """
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    factory = WebSocketFactory(ResourceRegistry())
    made: Deferred[Any] = Deferred()
    buildProtocol = factory.buildProtocol

    def building(addr: Any) -> Any:
        protocol = buildProtocol(addr)
        reactor.callLater(0, made.callback, protocol)
        return protocol

    factory.buildProtocol = building  # type: ignore[method-assign]
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    client = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        protocol = yield made
        handle = protocol.transport.getHandle()
        assert handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        client.close()
        yield port.stopListening()
