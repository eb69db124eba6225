"""
The limits of an HTTP/2 connection (L{txclws._h2.limits}): the flood
counter on its own, then each known flood and limit against a real server
over loopback TLS, with a raw C{h2} client that misbehaves on purpose.
Every flood is bounded in frames sent and in time (socket timeouts).
"""

from __future__ import annotations

import struct
from typing import Any

import pytest_twisted
from h2.settings import SettingCodes, Settings

from tests._h2client import H2Client
from tests._h2server import Server, accept, inThread
from txclws._h2.limits import Flood, FloodCounter, FrameSizeGuard, HTTP2Limits

#: RFC 9113 7: the GOAWAY code for a peer that generates excessive load.
ENHANCE_YOUR_CALM = 0xB

#: RFC 9113 7: a frame longer than SETTINGS_MAX_FRAME_SIZE.
FRAME_SIZE_ERROR = 0x6


def test_floodCounterWindow() -> None:
    """
    The counter allows C{perSecond} frames of a kind in any one-second
    window, says so on the next, and starts again in the next second.
    """
    counter = FloodCounter(HTTP2Limits(perSecond=((Flood.PING, 3), (Flood.RESET, 1))))
    assert [counter.count(Flood.PING, 10.0 + i / 10) for i in range(4)] == [
        False,
        False,
        False,
        True,
    ]
    assert counter.count(Flood.PING, 11.5) is False
    assert counter.count(Flood.RESET, 11.6) is False
    assert counter.count(Flood.RESET, 11.7) is True


def frame(kind: int, flags: int, streamID: int, payload: bytes = b"") -> bytes:
    """
    One raw HTTP/2 frame (RFC 9113 4.1): length, type, flags, stream.
    """
    return (
        struct.pack("!I", len(payload))[1:]
        + bytes((kind, flags))
        + struct.pack("!I", streamID)
        + payload
    )


def request(path: str, method: str = "GET") -> list[tuple[str, str]]:
    """
    A request's header fields.
    """
    return [
        (":method", method),
        (":scheme", "https"),
        (":path", path),
        (":authority", "localhost"),
    ]


def goAwayAfter(client: H2Client, frames: list[bytes]) -> int | None:
    """
    Send C{frames} (in batches) and read until the server's GOAWAY or its
    close; the GOAWAY's code.
    """
    try:
        for start in range(0, len(frames), 50):
            client.sendRaw(b"".join(frames[start : start + 50]))
        for _ in range(1000):
            if client.goaway is not None:
                break
            client.receiveOnce()
    except (ConnectionError, OSError):
        pass
    return client.goaway


@pytest_twisted.ensureDeferred
async def test_rapidReset(h2server: Server) -> None:
    """
    CVE-2023-44487: a client that opens requests and resets them while the
    server works on them is sent GOAWAY ENHANCE_YOUR_CALM once it passes
    100 resets in a second.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            client.settingsAcknowledged()
            frames = []
            for _ in range(300):
                streamID = client.conn.get_next_available_stream_id()
                client.conn.send_headers(streamID, request("/slow"), end_stream=True)
                client.conn.reset_stream(streamID, 0x8)
                frames.append(client.conn.data_to_send())
            return goAwayAfter(client, frames)

    assert await inThread(run) == ENHANCE_YOUR_CALM


@pytest_twisted.ensureDeferred
async def test_pingFlood(h2server: Server) -> None:
    """
    A PING flood (CVE-2019-9512) is cut off with ENHANCE_YOUR_CALM.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            client.settingsAcknowledged()
            return goAwayAfter(
                client, [frame(0x6, 0, 0, struct.pack("!Q", n)) for n in range(500)]
            )

    assert await inThread(run) == ENHANCE_YOUR_CALM


@pytest_twisted.ensureDeferred
async def test_settingsFlood(h2server: Server) -> None:
    """
    A SETTINGS flood (CVE-2019-9515) is cut off with ENHANCE_YOUR_CALM.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            client.settingsAcknowledged()
            setting = struct.pack("!HI", 0x4, 65535)  # INITIAL_WINDOW_SIZE
            return goAwayAfter(client, [frame(0x4, 0, 0, setting)] * 500)

    assert await inThread(run) == ENHANCE_YOUR_CALM


@pytest_twisted.ensureDeferred
async def test_emptyDataFlood(h2server: Server) -> None:
    """
    Empty DATA frames without END_STREAM (CVE-2019-9518) are cut off with
    ENHANCE_YOUR_CALM.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            streamID = accept(client)
            return goAwayAfter(client, [frame(0x0, 0, streamID)] * 2000)

    assert await inThread(run) == ENHANCE_YOUR_CALM


@pytest_twisted.ensureDeferred
async def test_continuationFlood(h2server: Server) -> None:
    """
    A header block that never ends (HEADERS without END_HEADERS, then
    CONTINUATION frames without end: CVE-2024-27316 and kin) ends the
    connection with a GOAWAY after a bounded number of frames.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            client.settingsAcknowledged()
            # The start of a block: an indexed :method GET (RFC 7541 C.2.4).
            frames = [frame(0x1, 0, 1, b"\x82")]
            frames += [frame(0x9, 0, 1, b"\x00\x01a\x01b")] * 1000
            return goAwayAfter(client, frames)

    code = await inThread(run)
    assert code is not None and code != 0


def test_frameSizeGuardFollowsFrames() -> None:
    """
    The guard passes the 24-byte preface and each frame's payload, reads
    frame headers split across reads at any byte, and names the first
    header whose length is over the maximum.
    """
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    stream = preface + frame(0x4, 0, 0) + frame(0x0, 0, 1, b"x" * 100)
    stream += frame(0x0, 0, 1, b"y" * 100)
    overlong = struct.pack("!I", 101)[1:] + b"\x00\x00" + struct.pack("!I", 1)
    for cut in range(1, len(stream)):
        guard = FrameSizeGuard(100)
        assert guard.feed(stream[:cut]) is None
        assert guard.feed(stream[cut:]) is None
        assert guard.feed(overlong[:4]) is None
        assert guard.feed(overlong[4:] + b"z" * 101) == 101
    byteAtATime = FrameSizeGuard(100)
    assert [byteAtATime.feed(bytes((b,))) for b in stream + overlong][-1] == 101


@pytest_twisted.ensureDeferred
async def test_overlongFrameRefusedAtItsHeader(h2server: Server) -> None:
    """
    A frame header announcing more than SETTINGS_MAX_FRAME_SIZE (here the
    most the format allows, 16 MiB, on a frame type nobody knows) is
    answered with GOAWAY FRAME_SIZE_ERROR at once, while the client has
    sent only a little of its payload: the server does not buffer the
    frame to find out (the h2 library alone would hold up to 16 MiB of it).
    """

    def run() -> int | None:
        with H2Client(h2server.tlsPort) as client:
            client.settingsAcknowledged()
            client.sock.settimeout(3.0)
            header = b"\xff\xff\xff\xfa\x00" + struct.pack("!I", 0)
            return goAwayAfter(client, [header + b"\x00" * (64 << 10)])

    assert await inThread(run) == FRAME_SIZE_ERROR


@pytest_twisted.ensureDeferred
async def test_headerListSize(h2server: Server) -> None:
    """
    SETTINGS_MAX_HEADER_LIST_SIZE is the factory's C{maxHeadSize}, and a
    header list over it ends the connection.
    """
    limit = h2server.factory.maxHeadSize

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            settings = client.settingsAcknowledged()
            client.websocket(extra=[("x-big", "v" * (limit + 1))])
            return settings[0x6], goAwayAfter(client, [])

    advertised, code = await inThread(run)
    assert advertised == limit
    assert code is not None and code != 0


@pytest_twisted.ensureDeferred
async def test_maxConcurrentStreams(h2server: Server) -> None:
    """
    A client that opens more streams than SETTINGS_MAX_CONCURRENT_STREAMS
    (100) is refused: the connection ends with a GOAWAY.
    """

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            client.settingsAcknowledged()
            # Past the client's own check of the server's limit.
            client.conn.remote_settings = Settings(
                client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: 1000}
            )
            frames = []
            for _ in range(101):
                streamID = client.conn.get_next_available_stream_id()
                client.conn.send_headers(streamID, request("/", "POST"))
                frames.append(client.conn.data_to_send())
            return goAwayAfter(client, frames)

    code = await inThread(run)
    assert code is not None and code != 0


@pytest_twisted.ensureDeferred
async def test_connectionWithoutRequest(h2server: Server) -> None:
    """
    A connection that sends its preface but no request is closed after the
    factory's C{handshakeTimeout}, with GOAWAY NO_ERROR.
    """
    h2server.factory.handshakeTimeout = 0.5

    def run() -> Any:
        with H2Client(h2server.tlsPort) as client:
            client.settingsAcknowledged()
            return goAwayAfter(client, [])

    assert await inThread(run) == 0


@pytest_twisted.ensureDeferred
async def test_noPreface(h2server: Server) -> None:
    """
    A connection that negotiated h2 but sends nothing is closed after the
    factory's C{handshakeTimeout}, as any silent connection is.
    """
    h2server.factory.handshakeTimeout = 0.5

    def run() -> bytes:
        import socket
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", h2server.tlsPort), timeout=10)
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            assert sock.selected_alpn_protocol() == "h2"
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return data
                data += chunk

    # The front door answers a head that never came, and closes.
    assert (await inThread(run)).startswith(b"HTTP/1.1 408")
