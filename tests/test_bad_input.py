"""
Bad input over real sockets: raw clients that break RFC 6455 or send a bad
opening handshake get exactly the answer the RFC asks for, and the server
goes on serving its other clients.

Each raw exchange runs in a thread (L{deferToThread}) while the reactor
serves; every socket operation is bounded by L{tests._rawsocket.TIMEOUT}.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests._rawsocket import (
    RawClient,
    ServerFrame,
    clientFrame,
    closePayload,
    upgradeRequest,
)
from tests.conftest import failuresLogged, whenLost
from txclws import originExact


def openRaw(port: int) -> RawClient:
    """
    A raw client past a successful handshake.
    """
    client = RawClient(port)
    client.handshake()
    return client


@pytest_twisted.async_yield_fixture
async def bystander(echoServer: Any) -> Any:
    """
    A well-behaved raw client, connected before the bad one.
    """
    port, _, _ = echoServer
    client = await deferToThread(openRaw, port)
    yield client
    client.sock.close()


def stillServed(port: int, bystander: RawClient) -> tuple[ServerFrame, ServerFrame]:
    """
    An echo for the client that was already connected, and one for a client
    that connects now.
    """
    old = bystander.echo("still here")
    with RawClient(port) as fresh:
        fresh.handshake()
        new = fresh.echo("new here")
    return old, new


async def assertStillServed(port: int, bystander: RawClient, logEvents: Any) -> None:
    """
    The server still serves the bystander and new clients, and logged no
    failure (no internal error) along the way.
    """
    old, new = await deferToThread(stillServed, port, bystander)
    assert old == ServerFrame(fin=True, rsv=0, opcode=0x1, payload=b"still here")
    assert new == ServerFrame(fin=True, rsv=0, opcode=0x1, payload=b"new here")
    assert failuresLogged(logEvents) == []


# -- protocol violations: fail with a close frame --------------------------


def failedWith(port: int, data: bytes) -> tuple[list[ServerFrame], ServerFrame, bool]:
    """
    Open a connection, send C{data}, and read up to the server's close frame.

    @return: the frames before the close frame, the close frame, and whether
        the server then closed its side of the TCP connection.
    """
    with RawClient(port) as client:
        client.handshake()
        client.send(data)
        before, close = client.readUntilClose()
        return before, close, client.atEOF()


def text(payload: bytes, fin: bool = True) -> bytes:
    """
    A masked client text frame.
    """
    return clientFrame(0x1, payload, fin=fin)


VIOLATIONS = {
    # RFC 6455 5.1: a client must mask every frame.
    "unmasked": (clientFrame(0x1, b"hi", masked=False), 1002),
    # 5.2: RSV1-3 must be 0 unless an extension says otherwise.
    "rsv1": (clientFrame(0x1, b"hi", rsv=0x40), 1002),
    "rsv2": (clientFrame(0x2, b"hi", rsv=0x20), 1002),
    "rsv3": (clientFrame(0x1, b"hi", rsv=0x10), 1002),
    # 5.2: opcodes 3-7 and 0xB-0xF are reserved.
    "opcode-3": (clientFrame(0x3, b"hi"), 1002),
    # (A well-formed close payload, so that 0xB is not mistaken for close.)
    "opcode-B": (clientFrame(0xB, closePayload(1000)), 1002),
    "opcode-F": (clientFrame(0xF, b""), 1002),
    # 5.5: control frames must not be fragmented, nor carry over 125 bytes.
    "fragmented-ping": (clientFrame(0x9, b"x", fin=False), 1002),
    "ping-126": (clientFrame(0x9, b"x" * 126), 1002),
    "close-126": (clientFrame(0x8, closePayload(1000, b"x" * 124)), 1002),
    # 5.4: a continuation needs a message to continue...
    "lone-continuation": (clientFrame(0x0, b"x"), 1002),
    # ...and a new data frame may not start inside a fragmented message.
    "text-in-text": (text(b"a", fin=False) + text(b"b"), 1002),
    "binary-in-text": (text(b"a", fin=False) + clientFrame(0x2, b"b"), 1002),
    # 8.1: text must be UTF-8, whole or split across frames.
    "bad-utf8": (text(b"caf\xc3"), 1007),
    "bad-utf8-fragments": (
        text(b"\xce", fin=False) + clientFrame(0x0, b"\xff"),
        1007,
    ),
    "surrogate-utf8": (text(b"\xed\xa0\x80"), 1007),
    # 5.5.1: the close reason is UTF-8, and the code a valid one (7.4).
    "close-reason-utf8": (clientFrame(0x8, closePayload(1000, b"\xff")), 1007),
    "close-code-999": (clientFrame(0x8, closePayload(999)), 1002),
    "close-code-1005": (clientFrame(0x8, closePayload(1005)), 1002),
    "close-code-1016": (clientFrame(0x8, closePayload(1016)), 1002),
    "close-code-5000": (clientFrame(0x8, closePayload(5000)), 1002),
    "close-1-byte": (clientFrame(0x8, b"\x03"), 1002),
}


@pytest.mark.parametrize(
    "data, code", list(VIOLATIONS.values()), ids=list(VIOLATIONS.keys())
)
@pytest_twisted.ensureDeferred
async def test_protocolViolation(
    echoServer: Any, bystander: RawClient, logEvents: Any, data: bytes, code: int
) -> None:
    """
    A frame that breaks RFC 6455 gets nothing but a close frame with the
    right code, then the server closes its side of the connection; the
    resource gets nothing from the bad frames.
    """
    port, _, resource = echoServer
    before, close, eof = await deferToThread(failedWith, port, data)
    assert before == []
    assert (close.fin, close.rsv, close.closeCode) == (True, 0, code)
    close.payload[2:].decode("utf-8")  # the reason, if any, is UTF-8
    assert eof
    assert resource.named("receivedText") == resource.named("receivedBinary") == []
    await assertStillServed(port, bystander, logEvents)


@pytest_twisted.ensureDeferred
async def test_frameOverLimit(
    echoServer: Any, bystander: RawClient, logEvents: Any
) -> None:
    """
    A frame over C{maxFrameSize} is refused with 1009, as soon as its header
    says so; one at the limit is fine.
    """
    port, factory, _ = echoServer
    factory.maxFrameSize = 1000
    before, close, eof = await deferToThread(
        failedWith, port, clientFrame(0x2, b"x" * 1000) + clientFrame(0x2, b"x" * 1001)
    )
    assert before == [ServerFrame(True, 0, 0x2, b"x" * 1000)]
    assert close.closeCode == 1009 and eof
    # The header alone is enough: no need to send the payload.
    header = bytes((0x82, 0x80 | 126)) + struct.pack("!H", 1001) + b"\x00" * 4
    before, close, eof = await deferToThread(failedWith, port, header)
    assert (before, close.closeCode, eof) == ([], 1009, True)
    await assertStillServed(port, bystander, logEvents)


@pytest_twisted.ensureDeferred
async def test_messageOverLimit(
    echoServer: Any, bystander: RawClient, logEvents: Any
) -> None:
    """
    A message over C{maxMessageSize}, in frames each under the limit, is
    refused with 1009 and never delivered.
    """
    port, factory, resource = echoServer
    factory.maxMessageSize = 1000
    data = text(b"a" * 600, fin=False) + clientFrame(0x0, b"b" * 401)
    before, close, eof = await deferToThread(failedWith, port, data)
    assert (before, close.closeCode, eof) == ([], 1009, True)
    assert resource.named("receivedText") == []
    await assertStillServed(port, bystander, logEvents)


# -- opening handshake refusals: an HTTP error, then close ------------------


def refusal(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """
    Send C{request} and read the whole answer, up to the server's EOF.
    """
    with RawClient(port) as client:
        client.send(request)
        return client.readRefusal()


REFUSALS = {
    "garbage": (b"\x16\x03\x01\x00\xff not http at all\r\n\r\n", 400, "Bad Request"),
    "missing-key": (upgradeRequest(key=None), 400, "Bad Request"),
    "key-not-base64": (upgradeRequest(key="not base64!!"), 400, "Bad Request"),
    "key-15-bytes": (
        upgradeRequest(key="AAAAAAAAAAAAAAAAAAAA"),
        400,
        "Bad Request",
    ),
    "version-14": (upgradeRequest(version="14"), 426, "Upgrade Required"),
    "missing-version": (upgradeRequest(version=None), 426, "Upgrade Required"),
    "unknown-path": (upgradeRequest("/nowhere"), 404, "Not Found"),
    "bad-origin": (
        upgradeRequest("/strict", origin="http://evil.example"),
        403,
        "Forbidden",
    ),
    "no-origin": (upgradeRequest("/strict"), 403, "Forbidden"),
}


@pytest.mark.parametrize(
    "request_, status, reason", list(REFUSALS.values()), ids=list(REFUSALS.keys())
)
@pytest_twisted.ensureDeferred
async def test_handshakeRefused(
    echoServer: Any,
    bystander: RawClient,
    logEvents: Any,
    request_: bytes,
    status: int,
    reason: str,
) -> None:
    """
    A bad opening handshake gets exactly the HTTP status the RFC asks for,
    a body whose length the headers state, then the server closes the
    connection; the resource never hears of it.  A 426 says which versions
    the server speaks (RFC 6455 4.4).
    """
    port, factory, resource = echoServer
    factory.registerResource("/strict", resource, originExact("http://good.example"))
    statusLine, headers, body = await deferToThread(refusal, port, request_)
    assert statusLine == f"HTTP/1.1 {status} {reason}"
    assert headers["content-length"] == str(len(body))
    assert headers["connection"] == "close"
    if status == 426:
        assert headers["sec-websocket-version"] == "13, 8, 7"
    else:
        assert "sec-websocket-version" not in headers
    assert len(resource.named("clientConnected")) == 1  # the bystander only
    await assertStillServed(port, bystander, logEvents)


def acceptedAt(port: int, request: bytes) -> str:
    """
    Send C{request}; the status line of the answer.
    """
    with RawClient(port) as client:
        client.send(request)
        return client.readHead()[0]


@pytest_twisted.ensureDeferred
async def test_goodOriginAccepted(echoServer: Any) -> None:
    """
    The origin policy that refuses a foreign origin accepts its own: the
    403s above are the policy's doing.
    """
    port, factory, resource = echoServer
    factory.registerResource("/strict", resource, originExact("http://good.example"))
    request = upgradeRequest("/strict", origin="http://good.example")
    statusLine = await deferToThread(acceptedAt, port, request)
    assert statusLine == "HTTP/1.1 101 Switching Protocols"


@pytest_twisted.ensureDeferred
async def test_headOverLimit(
    echoServer: Any, bystander: RawClient, logEvents: Any
) -> None:
    """
    A request head over C{maxHeadSize} is refused with 431, whether or not
    its end has arrived.
    """
    port, factory, _ = echoServer
    factory.maxHeadSize = 1024
    padded = upgradeRequest(extra=(("X-Padding", "p" * 2000),))
    for request in (padded, padded[:1500]):
        statusLine, headers, body = await deferToThread(refusal, port, request)
        assert statusLine == "HTTP/1.1 431 Request Header Fields Too Large"
        assert headers["content-length"] == str(len(body))
    await assertStillServed(port, bystander, logEvents)


# -- a client that vanishes ------------------------------------------------


def vanish(port: int, abort: bool) -> int:
    """
    Connect, send half a frame, and go: a FIN, or a reset if C{abort}.

    @return: the client's local port.
    """
    client = openRaw(port)
    localPort = client.localPort
    client.send(clientFrame(0x2, b"x" * 100)[:50])
    if abort:
        client.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
    client.sock.close()
    return localPort


@pytest.mark.parametrize("abort", [False, True], ids=["close", "reset"])
@pytest_twisted.ensureDeferred
async def test_clientVanishesMidFrame(
    echoServer: Any, bystander: RawClient, logEvents: Any, abort: bool
) -> None:
    """
    A client that disappears in the middle of a frame costs a single
    C{clientDisconnected} and no logged error.
    """
    port, _, resource = echoServer
    localPort = await deferToThread(vanish, port, abort)
    [_, gone] = await resource.waitFor("clientConnected", 2)
    assert gone.port == localPort
    await whenLost(gone)
    await assertStillServed(port, bystander, logEvents)
    assert resource.named("clientDisconnected").count(gone) == 1
    assert resource.named("receivedBinary") == []
