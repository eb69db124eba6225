"""
The frame size an HTTP/2 connection accepts (C{SETTINGS_MAX_FRAME_SIZE},
RFC 9113 6.5.2, L{txclws._h2.limits.HTTP2Limits.maxFrameSize}): advertised,
accepted from the first read after our SETTINGS are acknowledged, and still
bounded.  A real server over loopback TLS and the blocking C{h2} client of
L{tests._h2client}, in a thread; every read has the client's socket timeout.
"""

from __future__ import annotations

import pytest_twisted
from h2.events import RemoteSettingsChanged, WindowUpdated
from h2.settings import SettingCodes

from tests._h2client import ClientStream, H2Client, maskedFrame, parseFrames
from tests._h2server import Server, accept, inThread
from txclws._h2.limits import HTTP2Limits

BINARY = 0x2

#: RFC 9113 7: FRAME_SIZE_ERROR.
FRAME_SIZE_ERROR = 0x6


def test_defaultFrameSize() -> None:
    """
    The default accepted frame is 128 KiB: larger than RFC 9113's 16 KiB
    (so that a large message arrives in a few frames, each of which costs
    the C{h2} library the same whatever its size), half the stream window
    (so that a client still has a frame in flight while we acknowledge the
    one before), and within the protocol's range.
    """
    limits = HTTP2Limits()
    assert limits.maxFrameSize == 1 << 17
    assert limits.maxFrameSize * 2 == limits.streamWindow
    assert (1 << 14) <= limits.maxFrameSize <= (1 << 24) - 1


@pytest_twisted.ensureDeferred
async def test_advertisesMaxFrameSize(h2server: Server) -> None:
    """
    The server's SETTINGS carry C{SETTINGS_MAX_FRAME_SIZE} from its limits,
    and a client that uses it (one DATA frame of about 100 KiB) is echoed.
    """
    payload = bytes(range(256)) * 400  # 100 KiB

    def run() -> tuple[dict[int, int], int, list[tuple[bool, int, bytes]]]:
        with H2Client(h2server.tlsPort) as client:
            settings = client.settingsAcknowledged()
            streamID = accept(client)
            client.send(streamID, maskedFrame(BINARY, payload))
            return (
                settings,
                client.conn.max_outbound_frame_size,
                client.frames(streamID),
            )

    settings, frameSize, frames = await inThread(run)
    assert settings[SettingCodes.MAX_FRAME_SIZE] == HTTP2Limits().maxFrameSize
    assert frameSize == HTTP2Limits().maxFrameSize
    assert frames == [(True, BINARY, payload)]


def _largeFrameWithAcknowledgement(
    port: int, payload: bytes
) -> tuple[int | None, bytes]:
    """
    Read the server's SETTINGS and its connection WINDOW_UPDATE, then send,
    in one write, our acknowledgement of the SETTINGS, an extended CONNECT
    and one DATA frame larger than 16 KiB carrying C{payload} in a masked
    binary message.

    @return: the server's GOAWAY code (or C{None}) and the payload echoed.
    """
    with H2Client(port) as client:
        conn = client.conn
        seen: set[type] = set()
        for _ in range(20):
            if {RemoteSettingsChanged, WindowUpdated} <= seen:
                break
            for event in conn.receive_data(client.sock.recv(1 << 16)):
                seen.add(type(event))
        # Nothing flushed yet: the SETTINGS ACK h2 queued goes with the rest.
        streamID = conn.get_next_available_stream_id()
        conn.send_headers(
            streamID,
            [
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "https"),
                (":path", "/echo"),
                (":authority", "localhost"),
                ("sec-websocket-version", "13"),
            ],
        )
        frame = maskedFrame(BINARY, payload)
        assert 1 << 14 < len(frame) <= conn.max_outbound_frame_size
        conn.send_data(streamID, frame)
        client.sock.sendall(conn.data_to_send())
        client.streams[streamID] = stream = ClientStream()
        buffer = bytearray()
        echoed: list[tuple[bool, int, bytes]] = []
        for _ in range(200):
            if echoed or client.goaway is not None or client.closed:
                break
            try:
                client.receiveOnce()
            except ConnectionError:
                break
            buffer.extend(stream.data)
            stream.data.clear()
            echoed.extend(parseFrames(buffer))
        return client.goaway, echoed[0][2] if echoed else b""


@pytest_twisted.ensureDeferred
async def test_largeFrameInTheAcknowledgementsRead(h2server: Server) -> None:
    """
    A DATA frame larger than 16 KiB that arrives in the same read as the
    client's acknowledgement of our SETTINGS is accepted: the advertised
    size holds from the start (C{h2} itself would apply it only to the
    next read, and answer C{GOAWAY FRAME_SIZE_ERROR} to a client that did
    nothing wrong).
    """
    payload = b"\xa5" * (40 << 10)
    goaway, echoed = await inThread(
        lambda: _largeFrameWithAcknowledgement(h2server.tlsPort, payload)
    )
    assert goaway is None
    assert echoed == payload


@pytest_twisted.ensureDeferred
async def test_overlongFrameRefused(h2server: Server) -> None:
    """
    A frame longer than the advertised size is still a connection error:
    C{GOAWAY FRAME_SIZE_ERROR}.
    """
    size = HTTP2Limits().maxFrameSize + 1

    def run() -> int | None:
        with H2Client(h2server.tlsPort) as client:
            client.settingsAcknowledged()
            streamID = accept(client)
            header = size.to_bytes(3, "big") + b"\x00\x00" + streamID.to_bytes(4, "big")
            client.sendRaw(header + b"\x00" * size)
            try:
                client.waitFor(lambda: client.goaway is not None, 200)
            except ConnectionError:
                pass  # the GOAWAY came before the close, or not at all
            return client.goaway

    assert await inThread(run) == FRAME_SIZE_ERROR
