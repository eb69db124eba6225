"""
WebSockets over HTTP/2 (RFC 8441) and pages on the same connection: a real
txclws L{WebSocketSite} on loopback TLS (ALPN C{h2}) and cleartext C{h2c},
and the blocking C{h2} client of L{tests._h2client}, run in threads so
that the reactor keeps serving.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from tests._h2client import H2Client, maskedFrame
from tests._h2server import Server, accept, closeCode, inThread
from txclws._core.deflate import PerMessageDeflate

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


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


@pytest_twisted.ensureDeferred
async def test_multiplexed(h2server: Server) -> None:
    """
    Several WebSockets and page requests share one connection: each
    WebSocket echoes its own messages, the pages are whole, and the
    factory counts each WebSocket stream as a client.
    """

    def run() -> tuple[list[Any], list[Any], int]:
        with H2Client(h2server.tlsPort) as client:
            sockets = [accept(client) for _ in range(3)]
            pages = [client.get("/"), client.get("/big")]
            for index, streamID in enumerate(sockets):
                client.send(streamID, maskedFrame(TEXT, f"m{index}".encode()))
            echoes = [client.frames(streamID)[0] for streamID in sockets]
            bodies = [client.whole(streamID) for streamID in pages]
            count = len(h2server.factory.clients)
            return echoes, [(b.status, len(b.data)) for b in bodies], count

    echoes, pages, count = await inThread(run)
    assert echoes == [(True, TEXT, f"m{i}".encode()) for i in range(3)]
    assert pages == [(200, 26), (200, 300000)]
    assert count == 3


@pytest_twisted.ensureDeferred
async def test_fragmentedAndLarge(h2server: Server) -> None:
    """
    A fragmented message is delivered whole, and a 16 MiB binary message
    crosses both ways within the flow-control windows.
    """
    h2server.factory.maxMessageSize = h2server.factory.maxFrameSize = 17 << 20
    big = bytes(range(256)) * (1 << 16)  # 16 MiB

    def run() -> tuple[Any, Any]:
        with H2Client(h2server.tlsPort) as client:
            streamID = accept(client)
            client.send(streamID, maskedFrame(TEXT, b"frag", fin=False))
            client.send(streamID, maskedFrame(0x0, "mént".encode(), fin=False))
            client.send(streamID, maskedFrame(0x0, b"ed"))
            fragmented = client.frames(streamID)[0]
            client.send(streamID, maskedFrame(BINARY, big))
            echoed = client.frames(streamID)[0]
            return fragmented, echoed

    fragmented, echoed = await inThread(run)
    assert fragmented == (True, TEXT, "fragménted".encode())
    assert echoed[1] == BINARY and echoed[2] == big


@pytest_twisted.ensureDeferred
async def test_pingPong(h2server: Server) -> None:
    """
    A client's ping is answered with a pong carrying its payload; a pong
    to the server's ping reaches the resource.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            streamID = accept(client)
            client.send(streamID, maskedFrame(PING, b"are you there"))
            pong = client.frames(streamID)[0]
            client.send(streamID, maskedFrame(PONG, b"unsolicited"))
            client.send(streamID, maskedFrame(TEXT, b"sync"))
            client.frames(streamID)
            return pong

    assert await inThread(run) == (True, PONG, b"are you there")
    assert h2server.resource.named("receivedPong") == [b"unsolicited"]


@pytest_twisted.ensureDeferred
async def test_clientCloses(h2server: Server) -> None:
    """
    The client's close is echoed with its code, then the server ends the
    stream (RFC 8441 5: END_STREAM after the close handshake), and the
    resource hears of it.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            streamID = accept(client)
            client.send(streamID, maskedFrame(CLOSE, struct.pack("!H", 4321) + b"bye"))
            frame = client.frames(streamID)[0]
            client.send(streamID, b"", end=True)
            stream = client.whole(streamID)
            return frame, stream.ended, stream.reset

    (_fin, opcode, payload), ended, reset = await inThread(run)
    assert opcode == CLOSE and closeCode(payload) == 4321
    assert ended and reset is None
    await h2server.resource.waitFor("clientDisconnected")
    assert h2server.factory.clients == set()


@pytest_twisted.ensureDeferred
async def test_serverCloses(h2server: Server) -> None:
    """
    The resource's close reaches the client with its code and reason; once
    the client answers, the stream ends on both sides.
    """
    h2server.resource.respond["receivedText"] = lambda client, _: client.close(
        4000, "done"
    )

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            streamID = accept(client)
            client.send(streamID, maskedFrame(TEXT, b"close me"))
            frame = client.frames(streamID)[0]
            client.send(streamID, maskedFrame(CLOSE, frame[2]), end=True)
            stream = client.whole(streamID)
            return frame, stream.ended

    (_fin, opcode, payload), ended = await inThread(run)
    assert opcode == CLOSE and closeCode(payload) == 4000 and payload[2:] == b"done"
    assert ended
    await h2server.resource.waitFor("clientDisconnected")


@pytest.mark.parametrize(
    ("path", "kwargs", "status"),
    [
        ("/nowhere", {}, 404),
        ("/strict", {"origin": "https://evil"}, 403),
        ("/echo", {"version": "8"}, 426),
        ("/echo", {"extra": [("sec-websocket-version", "13")]}, 426),
        ("/strict?room=1", {"origin": "https://ok"}, 200),
    ],
    ids=["404", "403-origin", "426-version", "426-two-versions", "accepted"],
)
@pytest_twisted.ensureDeferred
async def test_refusals(
    h2server: Server, path: str, kwargs: dict[str, Any], status: int
) -> None:
    """
    The same acceptance as HTTP/1.1 decides: unknown path 404, origin 403,
    other version 426 (with the version served), as HTTP/2 statuses with a
    short body; the connection serves on after a refusal.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            streamID = client.websocket(path, **kwargs)
            stream = client.response(streamID)
            if stream.status != 200:
                client.whole(streamID)
            after = accept(client)
            client.send(after, maskedFrame(TEXT, b"still"))
            return stream, client.frames(after)[0]

    stream, echo = await inThread(run)
    assert stream.status == status
    if status == 426:
        assert stream.headers["sec-websocket-version"] == "13"
    if status != 200:
        assert stream.headers["content-type"].startswith("text/plain")
        assert stream.data.endswith(b"\n")
    assert echo == (True, TEXT, b"still")


@pytest_twisted.ensureDeferred
async def test_maxClients(h2server: Server) -> None:
    """
    A stream over C{maxClients} is refused with 503, as an HTTP/1.1 client
    would be: HTTP/2 streams count against the same limit.
    """
    h2server.factory.maxClients = 2

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            accept(client)
            accept(client)
            return client.response(client.websocket()).status

    assert await inThread(run) == 503


@pytest_twisted.ensureDeferred
async def test_malformedConnect(h2server: Server) -> None:
    """
    An extended CONNECT for another protocol is refused with 501, and a
    plain CONNECT (a tunnel) with 405.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            other = client.conn.get_next_available_stream_id()
            client.conn.send_headers(
                other,
                [
                    (":method", "CONNECT"),
                    (":protocol", "mqtt"),
                    (":scheme", "https"),
                    (":path", "/echo"),
                    (":authority", "localhost"),
                ],
            )
            client.streams[other] = type(client.streams.get(1) or _stream())()
            tunnel = client.conn.get_next_available_stream_id()
            client.conn.send_headers(
                tunnel, [(":method", "CONNECT"), (":authority", "example:443")]
            )
            client.streams[tunnel] = _stream()
            client.flush()
            return client.response(other).status, client.response(tunnel).status

    assert await inThread(run) == (501, 405)


def _stream() -> Any:
    from tests._h2client import ClientStream

    return ClientStream()


@pytest_twisted.ensureDeferred
async def test_subprotocolAndDeflate(h2server: Server) -> None:
    """
    The subprotocol chosen and permessage-deflate are agreed on in the
    200's header fields, and a compressed message echoes.
    """
    h2server.factory.deflate = PerMessageDeflate()
    h2server.resource.respond["selectSubprotocol"] = lambda client, offered: offered[-1]

    def run() -> Any:
        import zlib

        with H2Client(h2server.tlsPort) as client:
            streamID = client.websocket(
                extra=[
                    ("sec-websocket-protocol", "a, b"),
                    ("sec-websocket-extensions", "permessage-deflate"),
                ]
            )
            response = client.response(streamID)
            compressor = zlib.compressobj(wbits=-15)
            body = compressor.compress(b"squeeze " * 100) + compressor.flush(
                zlib.Z_SYNC_FLUSH
            )
            frame = bytearray(maskedFrame(TEXT, body[:-4]))
            frame[0] |= 0x40  # RSV1: compressed (RFC 7692 6)
            client.send(streamID, bytes(frame))
            return response, client.frames(streamID)[0]

    response, (_fin, opcode, _payload) = await inThread(run)
    assert response.status == 200
    assert response.headers["sec-websocket-protocol"] == "b"
    assert response.headers["sec-websocket-extensions"].startswith("permessage-deflate")
    assert h2server.resource.named("receivedText") == ["squeeze " * 100]
    assert opcode == TEXT


@pytest_twisted.ensureDeferred
async def test_resetMidMessage(h2server: Server) -> None:
    """
    A client that resets its stream in the middle of a message is a lost
    connection to the session: the resource hears of it, the client count
    drops, and the connection serves on.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            streamID = accept(client)
            client.send(streamID, maskedFrame(BINARY, b"x" * 100000)[:50000])
            client.conn.reset_stream(streamID, 0x8)
            client.flush()
            after = accept(client)
            client.send(after, maskedFrame(TEXT, b"next"))
            return client.frames(after)[0], len(h2server.factory.clients)

    assert await inThread(run) == ((True, TEXT, b"next"), 1)
    await h2server.resource.waitFor("clientDisconnected")
    assert h2server.resource.named("receivedBinary") == []


@pytest_twisted.ensureDeferred
async def test_h2c(h2server: Server) -> None:
    """
    With C{h2c=True}, a cleartext connection that opens with the HTTP/2
    preface (prior knowledge, RFC 9113 3.3) is served HTTP/2: a page and
    a WebSocket.
    """

    def run() -> Any:
        with H2Client(h2server.plainPort, tls=False) as client:
            page = client.whole(client.get("/"))
            streamID = accept(client)
            client.send(streamID, maskedFrame(TEXT, b"clear"))
            return page.status, bytes(page.data), client.frames(streamID)[0]

    status, body, echo = await inThread(run)
    assert (status, body) == (200, b"<html>hello over h2</html>")
    assert echo == (True, TEXT, b"clear")


def sendUntilBlocked(client: H2Client, streamID: int, limit: int) -> int:
    """
    Send 16 KiB binary messages until the stream's send window stays shut
    (no WINDOW_UPDATE within half a second) or C{limit} bytes went.

    @return: the bytes sent.
    """
    message = maskedFrame(BINARY, b"y" * 16000)
    sent = 0
    client.sock.settimeout(0.5)
    try:
        while sent < limit:
            window = client.conn.local_flow_control_window(streamID)
            if window < len(message):
                try:
                    client.receiveOnce()
                except TimeoutError:
                    break
                continue
            client.conn.send_data(streamID, message)
            client.flush()
            sent += len(message)
    finally:
        client.sock.settimeout(10.0)
    return sent


@pytest_twisted.ensureDeferred
async def test_slowReaderHoldsServerToWindows(h2server: Server) -> None:
    """
    A client that never sends WINDOW_UPDATE receives no more than its
    window; the rest waits at the server, counted in C{bufferedAmount}, and
    C{drained()} fires only once the client reads again.
    """
    size = 2 << 20
    h2server.resource.respond["clientConnected"] = lambda client, _: client.writeBinary(
        b"z" * size
    )
    client = await inThread(lambda: H2Client(h2server.tlsPort, autoAcknowledge=False))
    try:
        streamID = await inThread(lambda: accept(client))

        def readStalled() -> int:
            stream = client.streams[streamID]
            client.sock.settimeout(0.5)
            try:
                while True:
                    client.receiveOnce()
            except TimeoutError:
                pass
            client.sock.settimeout(10.0)
            return len(stream.data)

        received = await inThread(readStalled)
        assert received <= 65535
        (session,) = h2server.factory.clients
        assert session.bufferedAmount >= size - 65535
        drained = session.drained()
        assert not drained.called

        def readAll() -> int:
            stream = client.streams[streamID]
            client.autoAcknowledge = True
            client.conn.acknowledge_received_data(len(stream.data), streamID)
            client.flush()
            client.waitFor(lambda: len(stream.data) >= size + 10)
            return len(stream.data)

        assert await inThread(readAll) == size + 10  # the frame's header too
        await drained
        assert session.bufferedAmount == 0
    finally:
        client.sock.close()


@pytest_twisted.ensureDeferred
async def test_pausedReadingWithholdsWindowUpdate(h2server: Server) -> None:
    """
    While a callback is pending the session reads on up to the factory's
    C{maxQueuedBytes}, then pauses reading, and the server acknowledges
    nothing more: the client's window shuts after at most the queue's
    bound, one frame past it and the stream's window, so the server holds
    a bounded amount; once the callback is done, the window opens again.
    """
    pending: Deferred[None] = Deferred()
    h2server.resource.respond["receivedBinary"] = lambda client, _: pending
    client = await inThread(lambda: H2Client(h2server.tlsPort))
    try:
        streamID = await inThread(lambda: accept(client))
        sent = await inThread(lambda: sendUntilBlocked(client, streamID, 16 << 20))
        # The queue's bound, the stream's window (256 KiB) and the first
        # message, not 16 MiB.
        bound = h2server.factory.maxQueuedBytes
        assert sent <= bound + (1 << 18) + 2 * 16400
        pending.callback(None)
        more = await inThread(lambda: sendUntilBlocked(client, streamID, 1 << 20))
        assert more > 0
    finally:
        client.sock.close()


def test_daemonOptions() -> None:
    """
    C{twistd clws} offers HTTP/2 by default, not with C{--no-http2}, and
    serves h2c only with C{--h2c}.
    """
    from tests.test_tap import parse
    from tests.test_tap import siteOf as siteOfService
    from txclws.tap import makeService

    def siteOf(*arguments: str) -> Any:
        port = ["--port", "tcp:0:interface=127.0.0.1"]
        return siteOfService(makeService(parse(*port, *arguments)))

    default = siteOf()
    assert default.acceptableProtocols() == [b"h2", b"http/1.1"]
    assert not default.h2c
    assert siteOf("--no-http2").acceptableProtocols() == [b"http/1.1"]
    assert siteOf("--h2c").h2c


@pytest_twisted.ensureDeferred
async def test_shutdownGoingAway(h2server: Server) -> None:
    """
    On shutdown (the daemon's C{GoingAway} service), every WebSocket stream
    is closed with 1001, then the HTTP/2 connection is sent GOAWAY.
    """
    from txclws._tapservices import GoingAway

    client = await inThread(lambda: H2Client(h2server.tlsPort))
    try:
        streams = await inThread(lambda: [accept(client), accept(client)])
        service = GoingAway(h2server.factory, h2server.site)
        service.startService()
        stopped = service.stopService()

        def run() -> Any:
            codes = []
            for streamID in streams:
                (frame,) = client.frames(streamID)
                codes.append(closeCode(frame[2]))
                client.send(streamID, maskedFrame(CLOSE, frame[2]), end=True)
            client.waitFor(lambda: client.goaway is not None)
            return codes, client.goaway

        codes, goaway = await inThread(run)
        await stopped
        assert codes == [1001, 1001]
        assert goaway == 0
    finally:
        client.sock.close()
