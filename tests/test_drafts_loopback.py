"""
Loopback tests of the older protocols CLWS speaks, over real sockets on
127.0.0.1:

- draft-hixie-76 / hybi-00, with a raw-socket client written here (no
  maintained library speaks it): echo, both closes, the 8 bytes after the
  head arriving late, bad keys, the switch off, no binary;
- hybi-07 and hybi-08 (C{Sec-WebSocket-Version} 7 and 8), with raw
  handshakes and the RFC 6455 framing of L{tests._rawsocket}: the origin
  header, the version reported, echo, both closes, the close code 1004;
- broadcasts to a mixed set of RFC 6455 (C{websockets}), hybi-07/08 and
  hixie-76 clients;
- hixie-76 through a C{twisted.web} site (L{txclws.web}), as the daemon
  serves it.

Every blocking socket call runs in a thread (C{deferToThread}), bounded by
L{tests._rawsocket.TIMEOUT}, so the reactor keeps serving.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests._rawsocket import (
    SAMPLE_ACCEPT,
    TIMEOUT,
    RawClient,
    ServerFrame,
    clientFrame,
    closePayload,
    upgradeRequest,
)
from tests.conftest import WAIT, RecordingResource
from txclws import (
    ResourceRegistry,
    UnsupportedByProtocol,
    WebSocketFactory,
    anyOrigin,
    originExact,
    writeToClientsBinary,
    writeToClientsText,
)
from txclws._core.connection import WebSocketConnection
from txclws._core.frames import Opcode
from txclws._core.hixie76 import Hixie76Connection
from txclws.web import mountWebSocket

# The worked example of draft-hixie-76 section 1.3: two keys, the 8 bytes
# after the head, and the 16 bytes of the answer.
KEY1 = "4 @1  46546xW%0l 1 5"
KEY2 = "12998 5 Y3 1  .P00"
BODY = b"^n:ds[4U"
ANSWER = b"8jKS'y:G*Co,Wxa-"

#: The hixie-76 closing frame, both ways.
CLOSING = b"\xff\x00"

GOOD = "http://good.example"
EVIL = "http://evil.example"


class HixieClient(RawClient):
    """
    A blocking draft-hixie-76 client: the handshake of section 4.1 with
    fixed keys, text frames C{0x00 ... 0xFF}, the closing frame
    C{0xFF 0x00}.
    """

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.serverPort = port

    def sendHead(
        self,
        target: str = "/echo",
        *,
        key1: str = KEY1,
        key2: str = KEY2,
        origin: str = GOOD,
    ) -> None:
        """
        Send the request head only, as a hixie-76 browser writes it.
        """
        lines = [
            f"GET {target} HTTP/1.1",
            "Upgrade: WebSocket",
            "Connection: Upgrade",
            f"Host: 127.0.0.1:{self.serverPort}",
            f"Origin: {origin}",
            f"Sec-WebSocket-Key1: {key1}",
            f"Sec-WebSocket-Key2: {key2}",
        ]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def readAccept(self) -> dict[str, str]:
        """
        Read the 101 answer and check its 16 bytes; return its headers.
        """
        statusLine, headers = self.readHead()
        assert statusLine == "HTTP/1.1 101 WebSocket Protocol Handshake", statusLine
        assert self.readExact(16) == ANSWER
        return headers

    def open(self, target: str = "/echo") -> dict[str, str]:
        """
        The whole handshake, the 8 bytes in the same write as the head.
        """
        self.sendHead(target)
        self.send(BODY)
        return self.readAccept()

    def sendText(self, text: str) -> None:
        """
        Send a text frame.
        """
        self.send(b"\x00" + text.encode("utf-8") + b"\xff")

    def readMessage(self) -> str | None:
        """
        The next text frame's text, or L{None} for the closing frame.
        """
        kind = self.readExact(1)
        if kind == b"\xff":
            assert self.readExact(1) == b"\x00", "a 0xFF frame that is not closing"
            return None
        assert kind == b"\x00", f"not a text frame: {kind!r}"
        data = bytearray()
        while (byte := self.readExact(1)) != b"\xff":
            data += byte
        return data.decode("utf-8")


def serverClosed(client: RawClient) -> bool:
    """
    Whether the server closed the connection with nothing more sent: EOF,
    or the reset of an aborted connection.
    """
    try:
        return client.atEOF()
    except ConnectionResetError:
        return True


def hybiOpen(
    port: int,
    version: int,
    target: str = "/echo",
    extra: tuple[tuple[str, str], ...] = (("Sec-WebSocket-Origin", GOOD),),
) -> tuple[RawClient, str]:
    """
    A raw client that sent a hybi handshake (key, version, the given extra
    headers); returns it and the answer's status line, checking the accept
    value of a 101.
    """
    client = RawClient(port)
    client.send(upgradeRequest(target, version=str(version), extra=extra))
    statusLine, headers = client.readHead()
    if statusLine.startswith("HTTP/1.1 101 "):
        assert headers["sec-websocket-accept"] == SAMPLE_ACCEPT, headers
    return client, statusLine


@pytest.fixture
def hixieServer(echoServer: Any) -> Any:
    """
    L{echoServer} with hixie-76 switched on: C{(port, factory, resource)}.
    """
    port, factory, resource = echoServer
    factory.protocol76Support = True
    return port, factory, resource


# -- hixie-76 ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_hixieEcho(hixieServer: Any) -> None:
    """
    A hixie-76 client gets the 101 with the right challenge answer, origin
    and location (scheme, Host as sent, the whole target), its text comes
    back, and the resource sees a version 0 client.
    """
    port, _, resource = hixieServer

    def run() -> tuple[dict[str, str], str | None]:
        with HixieClient(port) as client:
            headers = client.open("/echo?room=1")
            client.sendText("héllo ✓")
            return headers, client.readMessage()

    headers, reply = await deferToThread(run)
    assert reply == "héllo ✓"
    assert headers["upgrade"] == "WebSocket"
    assert headers["connection"] == "Upgrade"
    assert headers["sec-websocket-origin"] == GOOD
    assert headers["sec-websocket-location"] == f"ws://127.0.0.1:{port}/echo?room=1"
    [client] = resource.named("clientConnected")
    assert client.websocketVersion == 0
    assert (client.resourceName, client.queryString) == ("/echo", "room=1")
    assert resource.named("receivedText") == ["héllo ✓"]


@pytest_twisted.ensureDeferred
async def test_hixieClientCloses(hixieServer: Any) -> None:
    """
    The client's closing frame is answered with C{0xFF 0x00}, then the
    server closes TCP; the resource gets C{clientDisconnected}.
    """
    port, _, resource = hixieServer

    def run() -> tuple[bytes, bool]:
        with HixieClient(port) as client:
            client.open()
            client.send(CLOSING)
            return client.readExact(2), serverClosed(client)

    answer, closed = await deferToThread(run)
    assert answer == CLOSING
    assert closed
    [gone] = await resource.waitFor("clientDisconnected")
    assert gone.websocketVersion == 0


@pytest_twisted.ensureDeferred
async def test_hixieServerClosesClientAnswers(hixieServer: Any) -> None:
    """
    C{client.close()} sends C{0xFF 0x00}; once the client answers with its
    own, the server closes TCP at once, long before the close timeout.
    """
    port, factory, resource = hixieServer
    factory.closeTimeout = 60.0
    resource.respond["receivedText"] = lambda client, message: client.close()

    def run() -> tuple[str | None, bool, float]:
        with HixieClient(port) as client:
            client.open()
            client.sendText("bye")
            closing = client.readMessage()
            started = time.monotonic()
            client.send(CLOSING)
            closed = serverClosed(client)
            return closing, closed, time.monotonic() - started

    closing, closed, elapsed = await deferToThread(run)
    assert closing is None  # the closing frame
    assert closed
    assert elapsed < TIMEOUT
    await resource.waitFor("clientDisconnected")


@pytest_twisted.ensureDeferred
async def test_hixieServerClosesClientSilent(hixieServer: Any) -> None:
    """
    A client that never answers the server's closing frame is dropped after
    the close timeout, not before.
    """
    port, factory, resource = hixieServer
    factory.closeTimeout = 0.5
    resource.respond["receivedText"] = lambda client, message: client.close()

    def run() -> tuple[str | None, bool, float]:
        with HixieClient(port) as client:
            client.open()
            client.sendText("bye")
            closing = client.readMessage()
            started = time.monotonic()
            closed = serverClosed(client)
            return closing, closed, time.monotonic() - started

    closing, closed, elapsed = await deferToThread(run)
    assert closing is None
    assert closed
    assert 0.4 <= elapsed < TIMEOUT
    await resource.waitFor("clientDisconnected")


@pytest_twisted.ensureDeferred
async def test_hixieBodyLateInPieces(hixieServer: Any) -> None:
    """
    The server answers nothing while the 8 bytes after the head are
    missing, and accepts once they come, late and in three pieces, the last
    with the first frame.
    """
    port, _, resource = hixieServer

    def run() -> tuple[bytes | None, str | None]:
        with HixieClient(port) as client:
            client.sendHead()
            client.sock.settimeout(0.5)
            try:
                early: bytes | None = client.sock.recv(1)
            except TimeoutError:
                early = None
            client.sock.settimeout(TIMEOUT)
            client.send(BODY[:3])
            time.sleep(0.2)
            client.send(BODY[3:7])
            time.sleep(0.2)
            client.send(BODY[7:] + b"\x00late\xff")
            client.readAccept()
            return early, client.readMessage()

    early, reply = await deferToThread(run)
    assert early is None
    assert reply == "late"
    assert [c.websocketVersion for c in resource.named("clientConnected")] == [0]


@pytest.mark.parametrize(
    ("key1", "key2"),
    [
        pytest.param("4@146546xW%0l15", KEY2, id="no-spaces"),
        pytest.param("1 3 5", KEY2, id="not-divisible"),
        pytest.param(KEY1, "a b c", id="no-digits"),
        pytest.param(KEY1, "42949 67296", id="over-32-bits"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_hixieBadKeys(hixieServer: Any, key1: str, key2: str) -> None:
    """
    A malformed key is answered 400 and the connection closed; the
    resource never hears of the client.
    """
    port, _, resource = hixieServer

    def run() -> str:
        with HixieClient(port) as client:
            client.sendHead(key1=key1, key2=key2)
            client.send(BODY)
            statusLine, _, _ = client.readRefusal()
            return statusLine

    assert await deferToThread(run) == "HTTP/1.1 400 Bad Request"
    assert resource.events == []


@pytest_twisted.ensureDeferred
async def test_hixieSwitchOff(echoServer: Any) -> None:
    """
    With the switch off (the default) a hixie-76 request is answered 426,
    with the versions we speak, from its head alone: the client never sends
    the 8 bytes, and the answer comes well within the socket timeout (with
    a handshake timeout far longer, so a server that waited would fail).
    """
    port, factory, resource = echoServer
    factory.handshakeTimeout = 60.0
    assert factory.protocol76Support is False

    def run() -> tuple[str, dict[str, str], float]:
        with HixieClient(port) as client:
            started = time.monotonic()
            client.sendHead()
            statusLine, headers, _ = client.readRefusal()
            return statusLine, headers, time.monotonic() - started

    statusLine, headers, elapsed = await deferToThread(run)
    assert statusLine == "HTTP/1.1 426 Upgrade Required"
    assert headers["sec-websocket-version"] == "13, 8, 7"
    assert elapsed < TIMEOUT
    assert resource.events == []


@pytest_twisted.ensureDeferred
async def test_hixieNoBinary(hixieServer: Any) -> None:
    """
    C{writeBinary} and C{ping} to a hixie-76 client raise
    L{UnsupportedByProtocol} inside the resource, send nothing, and leave
    the connection working: the next thing the client reads is the text
    written after them.
    """
    port, _, resource = hixieServer
    errors: list[Exception] = []

    def tryBinary(client: Any, message: str) -> None:
        for attempt in (lambda: client.writeBinary(b"\x00\xff"), client.ping):
            try:
                attempt()
            except UnsupportedByProtocol as exc:
                errors.append(exc)
        client.writeText(f"after {message}")

    resource.respond["receivedText"] = tryBinary

    def run() -> str | None:
        with HixieClient(port) as client:
            client.open()
            client.sendText("binary?")
            return client.readMessage()

    assert await deferToThread(run) == "after binary?"
    assert [type(e) for e in errors] == [UnsupportedByProtocol] * 2


# -- hybi-07 and hybi-08 -----------------------------------------------------


@pytest.fixture
def strictServer(server: Any, resource: RecordingResource) -> Any:
    """
    L{server} with L{resource} at C{/strict}, for origin L{GOOD} only:
    C{(port, factory, resource)}.
    """
    port, factory = server
    factory.registerResource("/strict", resource, originExact(GOOD))
    return port, factory, resource


@pytest.mark.parametrize("version", [7, 8])
@pytest_twisted.ensureDeferred
async def test_hybiEcho(strictServer: Any, version: int) -> None:
    """
    A hybi-07/08 handshake whose C{Sec-WebSocket-Origin} passes the origin
    check is accepted with the RFC 6455 accept value; the client reports
    its version, and text and binary echo with RFC 6455 framing.
    """
    port, _, resource = strictServer

    def run() -> list[ServerFrame]:
        client, statusLine = hybiOpen(port, version, "/strict")
        with client:
            assert statusLine == "HTTP/1.1 101 Switching Protocols"
            client.send(clientFrame(0x1, "draft ✓".encode()))
            client.send(clientFrame(0x2, b"\x00\xff"))
            return [client.readFrame(), client.readFrame()]

    frames = await deferToThread(run)
    assert frames == [
        ServerFrame(fin=True, rsv=0, opcode=0x1, payload="draft ✓".encode()),
        ServerFrame(fin=True, rsv=0, opcode=0x2, payload=b"\x00\xff"),
    ]
    [client] = resource.named("clientConnected")
    assert client.websocketVersion == version


@pytest.mark.parametrize(
    ("version", "status"),
    [(7, "403 Forbidden"), (8, "403 Forbidden"), (13, "101 Switching Protocols")],
)
@pytest_twisted.ensureDeferred
async def test_hybiOriginHeader(strictServer: Any, version: int, status: str) -> None:
    """
    For versions 7 and 8 the origin checked is C{Sec-WebSocket-Origin}
    (hybi-07/08 section 5.1), even beside an C{Origin} the policy would
    accept; version 13 checks C{Origin} (RFC 6455 4.1).
    """
    port, _, _ = strictServer
    extra = (("Origin", GOOD), ("Sec-WebSocket-Origin", EVIL))

    def run() -> str:
        client, statusLine = hybiOpen(port, version, "/strict", extra)
        client.sock.close()
        return statusLine

    assert await deferToThread(run) == f"HTTP/1.1 {status}"


@pytest.mark.parametrize("version", [7, 8])
@pytest_twisted.ensureDeferred
async def test_hybiClientCloses(echoServer: Any, version: int) -> None:
    """
    A hybi-07/08 client's close is echoed with its code, then the server
    closes TCP; the resource sees the code.
    """
    port, _, resource = echoServer

    def run() -> tuple[ServerFrame, bool]:
        client, _ = hybiOpen(port, version)
        with client:
            client.send(clientFrame(0x8, closePayload(4001, b"bye")))
            return client.readFrame(), serverClosed(client)

    frame, closed = await deferToThread(run)
    assert (frame.opcode, frame.closeCode, frame.payload[2:]) == (0x8, 4001, b"")
    assert closed
    [gone] = await resource.waitFor("clientDisconnected")
    assert (gone.closeCode, gone.closeReason, gone.websocketVersion) == (
        4001,
        "bye",
        version,
    )


@pytest.mark.parametrize("version", [7, 8])
@pytest_twisted.ensureDeferred
async def test_hybiServerCloses(echoServer: Any, version: int) -> None:
    """
    C{client.close(1001, "going")} reaches a hybi-07/08 client as that
    close frame; once it answers, the server closes TCP.
    """
    port, factory, resource = echoServer
    factory.closeTimeout = 60.0
    resource.respond["receivedText"] = lambda client, m: client.close(1001, "going")

    def run() -> tuple[ServerFrame, bool]:
        client, _ = hybiOpen(port, version)
        with client:
            client.send(clientFrame(0x1, b"bye"))
            frame = client.readFrame()
            client.send(clientFrame(0x8, closePayload(1001)))
            return frame, serverClosed(client)

    frame, closed = await deferToThread(run)
    assert frame == ServerFrame(True, 0, 0x8, closePayload(1001, b"going"))
    assert closed
    await resource.waitFor("clientDisconnected")


@pytest.mark.parametrize(("version", "answer"), [(7, 1004), (8, 1004), (13, 1002)])
@pytest_twisted.ensureDeferred
async def test_closeCode1004(echoServer: Any, version: int, answer: int) -> None:
    """
    hybi-07/08 section 7.4.1 define 1004 ("a frame that is too large"): a
    version 7 or 8 client may close with it and gets it echoed; RFC 6455
    7.4.1 reserves it, so from a version 13 client it is a protocol error
    (1002).
    """
    port, _, _ = echoServer

    def run() -> ServerFrame:
        client, _ = hybiOpen(port, version)
        with client:
            client.send(clientFrame(0x8, closePayload(1004)))
            return client.readFrame()

    frame = await deferToThread(run)
    assert (frame.opcode, frame.closeCode) == (0x8, answer)


@pytest.mark.parametrize(
    ("version", "badUtf8", "tooBig"),
    [(7, 1002, 1004), (8, 1002, 1004), (13, 1007, 1009)],
)
@pytest.mark.parametrize("fault", ["badUtf8", "tooBig"])
@pytest_twisted.ensureDeferred
async def test_failureCodeByVersion(
    echoServer: Any, version: int, badUtf8: int, tooBig: int, fault: str
) -> None:
    """
    A version 7 or 8 peer is failed only with codes its draft defines
    (hybi-07/08 section 7.4.1): invalid UTF-8 with 1002 and a frame over
    C{maxFrameSize} with 1004 ("frame too large"), where an RFC 6455 peer
    gets 1007 and 1009.
    """
    port, factory, _ = echoServer
    factory.maxFrameSize = 100

    def run() -> ServerFrame:
        client, _ = hybiOpen(port, version)
        with client:
            payload = b"\xff" if fault == "badUtf8" else b"x" * 101
            client.send(clientFrame(0x1, payload))
            return client.readFrame()

    frame = await deferToThread(run)
    expected = badUtf8 if fault == "badUtf8" else tooBig
    assert (frame.opcode, frame.closeCode) == (0x8, expected)


@pytest.mark.parametrize(("version", "allowed"), [(8, True), (13, False)])
@pytest_twisted.ensureDeferred
async def test_resourceCloses1004(echoServer: Any, version: int, allowed: bool) -> None:
    """
    A resource may close a hybi-08 client with 1004; for an RFC 6455
    client C{close(1004)} raises ValueError and sends nothing.
    """
    port, _, resource = echoServer
    errors: list[Exception] = []

    def close1004(client: Any, message: str) -> None:
        try:
            client.close(1004)
        except ValueError as exc:
            errors.append(exc)
            client.writeText("refused")

    resource.respond["receivedText"] = close1004

    def run() -> ServerFrame:
        client, _ = hybiOpen(port, version)
        with client:
            client.send(clientFrame(0x1, b"close"))
            return client.readFrame()

    frame = await deferToThread(run)
    if allowed:
        assert (frame.opcode, frame.closeCode, errors) == (0x8, 1004, [])
    else:
        assert (frame.opcode, frame.payload) == (0x1, b"refused")
        assert len(errors) == 1


# -- broadcast to a mixed set --------------------------------------------------


@pytest.fixture
def frameMessageCalls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, int]]:
    """
    Records C{(wireKey, opcode)} for every C{frameMessage} call, RFC 6455
    and hixie-76 connections alike.
    """
    calls: list[tuple[object, int]] = []
    for cls in (WebSocketConnection, Hixie76Connection):
        original = cls.__dict__["frameMessage"]

        def spy(
            self: Any,
            opcode: int,
            payload: bytes,
            frameSize: int | None = None,
            original: Any = original,
        ) -> bytes | None:
            calls.append((self.wireKey, opcode))
            return original(self, opcode, payload, frameSize)  # type: ignore[no-any-return]

        monkeypatch.setattr(cls, "frameMessage", spy)
    return calls


@pytest_twisted.ensureDeferred
async def test_broadcastMixed(
    hixieServer: Any, wsClient: Any, frameMessageCalls: list[tuple[object, int]]
) -> None:
    """
    To an RFC 6455 client (C{websockets}), a hybi-08 and a hybi-07 client
    and two hixie-76 clients: C{writeToClientsText} reaches all five,
    framing the message once per wire form (two calls, not five);
    C{writeToClientsBinary} reaches the three that can carry it, skips the
    hixie-76 ones without error, and frames once per form too.
    """
    port, factory, resource = hixieServer
    modern = await wsClient(f"ws://127.0.0.1:{port}/echo")

    def openRaw() -> tuple[list[RawClient], list[HixieClient]]:
        hybi = [hybiOpen(port, 8)[0], hybiOpen(port, 7)[0]]
        hixie = [HixieClient(port), HixieClient(port)]
        for client in hixie:
            client.open()
        return hybi, hixie

    hybi, hixie = await deferToThread(openRaw)
    try:
        await resource.waitFor("clientConnected", 5)
        versions = sorted(c.websocketVersion for c in factory.clients)
        assert versions == [0, 0, 7, 8, 13]
        clients = list(factory.clients)

        assert writeToClientsText(clients, "to all") == 5
        assert sorted(frameMessageCalls, key=repr) == [
            ("hixie76", Opcode.TEXT),
            ("rfc6455", Opcode.TEXT),
        ]
        frameMessageCalls.clear()
        assert writeToClientsBinary(clients, b"\x01\x02") == 3
        assert sorted(frameMessageCalls, key=repr) == [
            ("hixie76", Opcode.BINARY),
            ("rfc6455", Opcode.BINARY),
        ]
        assert writeToClientsText(clients, "end") == 5

        def readAll() -> tuple[list[Any], list[list[ServerFrame]], list[list[Any]]]:
            fromModern = [modern.recv(WAIT) for _ in range(3)]
            fromHybi = [[c.readFrame() for _ in range(3)] for c in hybi]
            fromHixie = [[c.readMessage() for _ in range(2)] for c in hixie]
            return fromModern, fromHybi, fromHixie

        fromModern, fromHybi, fromHixie = await deferToThread(readAll)
    finally:
        for client in [*hybi, *hixie]:
            client.sock.close()
    assert fromModern == ["to all", b"\x01\x02", "end"]
    for frames in fromHybi:
        assert [(f.opcode, f.payload) for f in frames] == [
            (0x1, b"to all"),
            (0x2, b"\x01\x02"),
            (0x1, b"end"),
        ]
    assert fromHixie == [["to all", "end"], ["to all", "end"]]


# -- hixie-76 through a twisted.web site -------------------------------------


@pytest_twisted.async_yield_fixture
async def webServer() -> Iterator[Any]:
    """
    A C{twisted.web} site with L{RecordingResource} mounted at C{/echo}
    (as the daemon serves resources), hixie-76 switched on: yields
    C{(port, factory, resource)}.
    """
    factory = WebSocketFactory(ResourceRegistry(), protocol76Support=True)
    resource = RecordingResource()
    root = Resource()
    mountWebSocket(root, "/echo", resource, anyOrigin, factory)
    listening = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    try:
        yield listening.getHost().port, factory, resource
    finally:
        await listening.stopListening()
        for protocol in list(factory.clients):
            protocol.transport.abortConnection()


@pytest_twisted.ensureDeferred
async def test_webHixieEcho(webServer: Any) -> None:
    """
    Through a site, a hixie-76 client whose 8 bytes come after the head
    (late, in pieces) is accepted with the right answer and location, and
    echoed: the switch reaches the site's upgrade resource.
    """
    port, _, resource = webServer

    def run() -> tuple[dict[str, str], str | None]:
        with HixieClient(port) as client:
            client.sendHead("/echo?x")
            time.sleep(0.2)
            client.send(BODY[:5])
            time.sleep(0.2)
            client.send(BODY[5:])
            headers = client.readAccept()
            client.sendText("via the site")
            return headers, client.readMessage()

    headers, reply = await deferToThread(run)
    assert reply == "via the site"
    assert headers["sec-websocket-location"] == f"ws://127.0.0.1:{port}/echo?x"
    assert [c.websocketVersion for c in resource.named("clientConnected")] == [0]


@pytest_twisted.ensureDeferred
async def test_webHixieSwitchOff(webServer: Any) -> None:
    """
    Through a site with the switch off, a hixie-76 head alone is answered
    426 with our versions, without waiting for the 8 bytes.
    """
    port, factory, resource = webServer
    factory.protocol76Support = False

    def run() -> tuple[str, dict[str, str]]:
        with HixieClient(port) as client:
            client.sendHead()
            return client.readHead()

    statusLine, headers = await deferToThread(run)
    assert statusLine == "HTTP/1.1 426 Upgrade Required"
    assert headers["sec-websocket-version"] == "13, 8, 7"
    assert resource.events == []
