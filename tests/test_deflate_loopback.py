"""
permessage-deflate (RFC 7692) over real sockets on 127.0.0.1: the
C{websockets} client (which offers compression and checks the response as
its own RFC 7692 implementation reads it), the raw client of
L{tests._rawsocket} where the frames on the wire matter, and a server in a
subprocess where its memory is measured.
"""

from __future__ import annotations

import random
import select
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from tests._rawsocket import (
    SAMPLE_ACCEPT,
    RawClient,
    ServerFrame,
    clientFrame,
    closePayload,
    upgradeRequest,
)
from tests.conftest import WAIT
from tests.test_deflate import WIDEST, windowInflate
from txclws import PerMessageDeflate, writeToClientsText
from txclws._core.deflate import DeflateCodec

ROOT = Path(__file__).resolve().parent.parent

TRAILER = b"\x00\x00\xff\xff"

#: Repetitive text, the kind of message compression is for.
JSON = '{"type": "update", "symbol": "TXC", "price": 101.25, "volume": 300}'


def uri(port: int) -> str:
    """
    The URI of C{/echo} on the test server.
    """
    return f"ws://127.0.0.1:{port}/echo"


def deflateClient(**params: Any) -> dict[str, Any]:
    """
    C{websockets} client options offering permessage-deflate with
    C{params} (L{ClientPerMessageDeflateFactory}'s arguments).
    """
    return {"extensions": [ClientPerMessageDeflateFactory(**params)]}


def responseExtensions(client: Any) -> str | None:
    """
    The C{Sec-WebSocket-Extensions} of the server's 101 response.
    """
    return client.response.headers.get("Sec-WebSocket-Extensions")


def compress(compressor: Any, data: bytes) -> bytes:
    """
    One client message compressed as RFC 7692 section 7.2.1 says.
    """
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TRAILER)
    return out[:-4]


def openRaw(client: RawClient, offer: str | None) -> str | None:
    """
    Open a connection to C{/echo} offering C{offer}; the response's
    C{Sec-WebSocket-Extensions}, or L{None}.
    """
    extra = () if offer is None else (("Sec-WebSocket-Extensions", offer),)
    client.send(upgradeRequest("/echo", extra=extra))
    statusLine, headers = client.readHead()
    assert statusLine == "HTTP/1.1 101 Switching Protocols", statusLine
    assert headers["sec-websocket-accept"] == SAMPLE_ACCEPT
    return headers.get("sec-websocket-extensions")


def rawExchange(
    port: int, offer: str, messages: list[tuple[bytes, bool]], takeover: bool = True
) -> tuple[str | None, list[ServerFrame]]:
    """
    Blocking: open a raw connection offering C{offer}, send each text
    message (compressed when its flag says so, with context kept from one
    to the next if C{takeover}) and read the echo of each.

    @return: the response's extensions and the frames echoed.
    """
    with RawClient(port) as client:
        agreed = openRaw(client, offer)
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        echoes = []
        for message, compressed in messages:
            if not takeover:
                compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            if compressed:
                frame = clientFrame(0x1, compress(compressor, message), rsv=0x40)
            else:
                frame = clientFrame(0x1, message)
            client.send(frame)
            echoes.append(client.readFrame())
        return agreed, echoes


# -- echo through the websockets client ------------------------------------


@pytest.mark.parametrize(
    "message",
    [JSON * 200, "hé ✓", JSON.encode() * 200, b"\x00\xff"],
    ids=["large-text", "small-text", "large-binary", "small-binary"],
)
@pytest_twisted.ensureDeferred
async def test_echo(echoServer: Any, wsClient: Any, message: str | bytes) -> None:
    """
    With the C{websockets} client's default offer, compression is agreed
    (the response echoes no parameter: the client offered only
    C{client_max_window_bits}, and 15 bits needs no announcing), and text
    and binary messages, large and small, come back unchanged, several
    times over the same contexts.
    """
    port, factory, resource = echoServer
    factory.deflate = PerMessageDeflate(**WIDEST)
    client = await wsClient(uri(port), compression="deflate")
    assert responseExtensions(client) == "permessage-deflate"
    assert len(client.protocol.extensions) == 1
    for _ in range(3):
        await deferToThread(client.send, message)
        assert await deferToThread(client.recv, WAIT) == message
    kind = "receivedText" if isinstance(message, str) else "receivedBinary"
    assert resource.named(kind) == [message] * 3


@pytest.mark.parametrize(
    "serverNoTakeover, clientNoTakeover, expected",
    [
        (False, False, "permessage-deflate"),
        (True, False, "permessage-deflate; server_no_context_takeover"),
        (False, True, "permessage-deflate; client_no_context_takeover"),
        (
            True,
            True,
            "permessage-deflate; server_no_context_takeover; "
            "client_no_context_takeover",
        ),
    ],
    ids=["both-take-over", "server-resets", "client-resets", "both-reset"],
)
@pytest_twisted.ensureDeferred
async def test_contextTakeover(
    echoServer: Any,
    wsClient: Any,
    serverNoTakeover: bool,
    clientNoTakeover: bool,
    expected: str,
) -> None:
    """
    Each combination of C{server_no_context_takeover} and
    C{client_no_context_takeover} is agreed as offered, both ends apply
    it, and a run of similar messages goes both ways intact.
    """
    port, factory, _ = echoServer
    factory.deflate = PerMessageDeflate(**WIDEST)
    client = await wsClient(
        uri(port),
        **deflateClient(
            server_no_context_takeover=serverNoTakeover,
            client_no_context_takeover=clientNoTakeover,
        ),
    )
    assert responseExtensions(client) == expected
    [extension] = client.protocol.extensions
    assert extension.remote_no_context_takeover is serverNoTakeover
    assert extension.local_no_context_takeover is clientNoTakeover
    for index in range(6):
        message = f"{JSON} #{index} " * 30
        await deferToThread(client.send, message)
        assert await deferToThread(client.recv, WAIT) == message


@pytest_twisted.ensureDeferred
async def test_windowBitsOffered(echoServer: Any, wsClient: Any) -> None:
    """
    A client that limits both windows to 10 bits gets both limits back,
    and messages with repeats further apart than 1 KiB go both ways.
    """
    port, factory, _ = echoServer
    factory.deflate = PerMessageDeflate(**WIDEST)
    client = await wsClient(
        uri(port),
        **deflateClient(server_max_window_bits=10, client_max_window_bits=10),
    )
    assert responseExtensions(client) == (
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"
    )
    noise = random.Random(3).randbytes
    block = noise(1500)
    message = block + noise(3000) + block
    for _ in range(3):
        await deferToThread(client.send, message)
        assert await deferToThread(client.recv, WAIT) == message


@pytest_twisted.ensureDeferred
async def test_windowBitsPolicy(echoServer: Any, wsClient: Any) -> None:
    """
    A policy of 9 client bits answers the C{websockets} client's bare
    C{client_max_window_bits} with 9, which the client accepts and
    compresses with.
    """
    port, factory, _ = echoServer
    factory.deflate = PerMessageDeflate(clientMaxWindowBits=9)
    client = await wsClient(uri(port), compression="deflate")
    assert responseExtensions(client) == "permessage-deflate; client_max_window_bits=9"
    [extension] = client.protocol.extensions
    assert extension.local_max_window_bits == 9
    message = JSON * 100
    await deferToThread(client.send, message)
    assert await deferToThread(client.recv, WAIT) == message


@pytest_twisted.ensureDeferred
async def test_deflateOff(echoServer: Any, wsClient: Any) -> None:
    """
    Without a deflate policy on the factory (the default), a client's
    offer is not answered and messages go uncompressed.
    """
    port, factory, _ = echoServer
    assert factory.deflate is None
    client = await wsClient(uri(port), compression="deflate")
    assert responseExtensions(client) is None
    assert client.protocol.extensions == []
    await deferToThread(client.send, JSON * 10)
    assert await deferToThread(client.recv, WAIT) == JSON * 10


# -- the frames on the wire ------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_minSizeOnTheWire(echoServer: Any) -> None:
    """
    A message shorter than C{minSize} goes back uncompressed (RSV1 clear,
    the payload as it is), one of C{minSize} bytes or more compressed (RSV1
    set, the payload deflate), whether the client compressed it or not.
    """
    port, factory, _ = echoServer
    factory.deflate = PerMessageDeflate(minSize=64, **WIDEST)
    short, exact = b"x" * 63, b"y" * 64
    agreed, echoes = await deferToThread(
        rawExchange,
        port,
        "permessage-deflate",
        [(short, True), (exact, True), (short, False), (exact, False)],
    )
    assert agreed == "permessage-deflate"
    assert [(frame.fin, frame.rsv, frame.opcode) for frame in echoes] == [
        (True, 0x00, 0x1),
        (True, 0x40, 0x1),
        (True, 0x00, 0x1),
        (True, 0x40, 0x1),
    ]
    assert echoes[0].payload == echoes[2].payload == short
    inflater = zlib.decompressobj(-15)
    assert windowInflate(echoes[1].payload, 15, inflater) == exact
    assert windowInflate(echoes[3].payload, 15, inflater) == exact


@pytest.mark.parametrize(
    "takeover", [True, False], ids=["client-keeps", "client-resets"]
)
@pytest_twisted.ensureDeferred
async def test_serverContextOnTheWire(echoServer: Any, takeover: bool) -> None:
    """
    With context takeover the server's second copy of a message costs
    fewer bytes than the first, and a client inflater kept across
    messages reads both; with C{server_no_context_takeover} the copies are
    equal and each inflates alone.  The client's messages are inflated
    right whether it keeps its own context (C{takeover}) or not.
    """
    port, factory, _ = echoServer
    factory.deflate = PerMessageDeflate(**WIDEST)
    message = (JSON * 20).encode()
    for serverResets in [False, True]:
        thisOffer = "permessage-deflate"
        if serverResets:
            thisOffer += "; server_no_context_takeover"
        agreed, echoes = await deferToThread(
            rawExchange, port, thisOffer, [(message, True)] * 3, takeover
        )
        assert agreed == thisOffer
        assert all(frame.rsv == 0x40 for frame in echoes)
        payloads = [frame.payload for frame in echoes]
        if serverResets:
            assert payloads[0] == payloads[1] == payloads[2]
            assert windowInflate(payloads[2], 15) == message
        else:
            assert len(payloads[1]) < len(payloads[0])
            inflater = zlib.decompressobj(-15)
            assert [windowInflate(p, 15, inflater) for p in payloads] == [message] * 3


@pytest_twisted.ensureDeferred
async def test_serverWindowOnTheWire(echoServer: Any) -> None:
    """
    With C{server_max_window_bits=9} agreed, the server's messages refer
    no further back than 512 bytes, over several messages with context
    takeover.
    """
    port, factory, _ = echoServer
    factory.deflate = PerMessageDeflate(**WIDEST)
    noise = random.Random(5).randbytes
    block = noise(700).hex().encode()[:700]
    message = block + noise(600).hex().encode() + block
    agreed, echoes = await deferToThread(
        rawExchange,
        port,
        "permessage-deflate; server_max_window_bits=9",
        [(message, False)] * 3,
    )
    assert agreed == "permessage-deflate; server_max_window_bits=9"
    inflater = zlib.decompressobj(-9)
    for frame in echoes:
        assert frame.rsv == 0x40
        assert windowInflate(frame.payload, 9, inflater) == message


# -- broadcast: once per setting -------------------------------------------


@pytest.fixture
def compressCalls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[DeflateCodec]]:
    """
    The codec of every call to L{DeflateCodec.compress}, in order.
    """
    calls: list[DeflateCodec] = []
    original = DeflateCodec.compress

    def spy(self: DeflateCodec, payload: bytes) -> bytes:
        calls.append(self)
        return original(self, payload)

    monkeypatch.setattr(DeflateCodec, "compress", spy)
    yield calls


async def broadcastTo(
    port: int, factory: Any, wsClient: Any, groups: list[tuple[int, dict[str, Any]]]
) -> tuple[int, list[Any]]:
    """
    Connect C{count} clients with each C{params} of C{groups}, broadcast
    one large text message to all, and check each got it.

    @return: how many were written to, and the clients.
    """
    clients = []
    for count, params in groups:
        for _ in range(count):
            clients.append(await wsClient(uri(port), **deflateClient(**params)))
    message = JSON * 50
    sent = writeToClientsText(factory.clients, message)
    for client in clients:
        assert await deferToThread(client.recv, WAIT) == message
    return sent, clients


@pytest_twisted.ensureDeferred
async def test_broadcastCompressesOncePerSetting(
    echoServer: Any, wsClient: Any, compressCalls: list[DeflateCodec]
) -> None:
    """
    A broadcast to 20 clients that agreed C{server_no_context_takeover}
    compresses the message once, and all 20 read it.
    """
    port, factory, _ = echoServer
    factory.deflate = PerMessageDeflate(**WIDEST)
    sent, clients = await broadcastTo(
        port, factory, wsClient, [(20, {"server_no_context_takeover": True})]
    )
    assert sent == 20
    assert all(
        responseExtensions(client) == "permessage-deflate; server_no_context_takeover"
        for client in clients
    )
    assert len(compressCalls) == 1


@pytest_twisted.ensureDeferred
async def test_broadcastPolicyWithoutTakeover(
    echoServer: Any, wsClient: Any, compressCalls: list[DeflateCodec]
) -> None:
    """
    With a policy without context takeover, clients that did not ask for
    it share one compression too.
    """
    port, factory, _ = echoServer
    factory.deflate = PerMessageDeflate(serverNoContextTakeover=True, **WIDEST)
    sent, _ = await broadcastTo(port, factory, wsClient, [(20, {})])
    assert sent == 20
    assert len(compressCalls) == 1


@pytest_twisted.ensureDeferred
async def test_broadcastWithTakeover(
    echoServer: Any, wsClient: Any, compressCalls: list[DeflateCodec]
) -> None:
    """
    Clients with context takeover each have their own compressor: a
    broadcast to 20 of them compresses once per client, and a second
    broadcast (which depends on each client's context) still reads right.
    """
    port, factory, _ = echoServer
    factory.deflate = PerMessageDeflate(**WIDEST)
    sent, clients = await broadcastTo(port, factory, wsClient, [(20, {})])
    assert sent == 20
    assert len(compressCalls) == 20 and len(set(map(id, compressCalls))) == 20
    writeToClientsText(factory.clients, JSON * 50)
    for client in clients:
        assert await deferToThread(client.recv, WAIT) == JSON * 50


@pytest_twisted.ensureDeferred
async def test_broadcastMixed(
    echoServer: Any, wsClient: Any, compressCalls: list[DeflateCodec]
) -> None:
    """
    Once per distinct setting: 5 clients without context takeover at 15
    bits, 5 at 10 bits and 5 with context takeover make 1 + 1 + 5
    compressions.
    """
    port, factory, _ = echoServer
    factory.deflate = PerMessageDeflate(**WIDEST)
    sent, _ = await broadcastTo(
        port,
        factory,
        wsClient,
        [
            (5, {"server_no_context_takeover": True}),
            (5, {"server_no_context_takeover": True, "server_max_window_bits": 10}),
            (5, {}),
        ],
    )
    assert sent == 15
    assert len(compressCalls) == 7


# -- decompression bomb against a server in a subprocess -------------------

#: A server with deflate and a 1 MiB message limit, echoing, that prints
#: its port.
SERVER = """
import sys
from twisted.internet import reactor
from txclws import (
    PerMessageDeflate, ResourceRegistry, WebSocketFactory, WebSocketResource,
    anyOrigin,
)

class Echo(WebSocketResource):
    def receivedText(self, client, message):
        client.writeText(message)

registry = ResourceRegistry()
registry.register("/echo", Echo(), anyOrigin)
factory = WebSocketFactory(
    registry, deflate=PerMessageDeflate(), maxMessageSize=1 << 20
)
port = reactor.listenTCP(0, factory, interface="127.0.0.1")
print(port.getHost().port, flush=True)
reactor.run()
"""


def peakRss(pid: int) -> int:
    """
    The peak resident set size of process C{pid} so far, in bytes.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_bombInSubprocess() -> None:
    """
    A 100 KiB compressed frame that would inflate to 100 MiB, against a
    server whose C{maxMessageSize} is 1 MiB, is answered with close 1009,
    and the server's peak RSS grows by less than 8 MiB.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        zeros = bytes(1 << 20)
        bomb = b"".join(compressor.compress(zeros) for _ in range(100))
        bomb += compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
        assert len(bomb) < 120 * 1024
        with RawClient(port) as client:
            assert openRaw(client, "permessage-deflate") == "permessage-deflate"
            # Warm up: the paths of a compressed message each way.
            warm = zlib.compressobj(6, zlib.DEFLATED, -15)
            client.send(clientFrame(0x1, compress(warm, JSON.encode() * 40), rsv=0x40))
            assert client.readFrame().rsv == 0x40
            before = peakRss(process.pid)
            client.send(clientFrame(0x1, bomb, rsv=0x40))
            frames, close = client.readUntilClose()
            after = peakRss(process.pid)
            assert frames == []
            assert close.closeCode == 1009
            client.send(clientFrame(0x8, closePayload(1009)))
            assert client.atEOF()
        assert after - before < 8 << 20, (before, after)
    finally:
        process.terminate()
        process.wait(WAIT)


def test_streamTailInSubprocess() -> None:
    """
    Issue 11, defect 1: a compressed message whose first frame is a final
    empty deflate block (C{03 00}, RSV1, no FIN), followed by up to 40 MiB
    of continuation frames that never set FIN, against a server whose
    C{maxMessageSize} is 1 MiB: the server closes with 1007 (bytes after
    the end of the message's deflate stream) and its peak RSS grows by
    less than 16 MiB.  (It grew by about 50 MiB, and never closed.)
    """
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with RawClient(port) as client:
            assert openRaw(client, "permessage-deflate") == "permessage-deflate"
            warm = zlib.compressobj(6, zlib.DEFLATED, -15)
            client.send(clientFrame(0x1, compress(warm, JSON.encode() * 40), rsv=0x40))
            assert client.readFrame().rsv == 0x40
            before = peakRss(process.pid)
            client.send(clientFrame(0x1, b"\x03\x00", fin=False, rsv=0x40))
            continuation = clientFrame(0x0, b"\x00" * (1 << 20), fin=False)
            sent = 0
            while sent < 40 and not select.select([client.sock], [], [], 0)[0]:
                client.send(continuation)
                sent += 1
            frames, close = client.readUntilClose()
            after = peakRss(process.pid)
            assert frames == []
            assert close.closeCode == 1007
        assert after - before < 16 << 20, (before, after, sent)
    finally:
        process.terminate()
        process.wait(WAIT)
