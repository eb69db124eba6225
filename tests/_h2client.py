"""
A blocking HTTP/2 client on the C{h2} library, for the HTTP/2 tests: one
connection over loopback TLS (ALPN C{h2}) or cleartext (C{h2c} with prior
knowledge), on which a test opens WebSockets by extended CONNECT (RFC 8441)
and requests pages, and sends raw frames when it wants to misbehave.

Every read is bounded by a socket timeout (L{TIMEOUT}).
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.settings import SettingCodes

#: Seconds any read may wait.
TIMEOUT = 10.0

_MASK_KEY = b"\x37\xfa\x21\x3d"


def maskedFrame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """
    One client WebSocket frame (RFC 6455 5.2), masked with a fixed key.
    """
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        header = bytes((first, 0x80 | length))
    elif length < 0x10000:
        header = bytes((first, 0x80 | 126)) + struct.pack("!H", length)
    else:
        header = bytes((first, 0x80 | 127)) + struct.pack("!Q", length)
    key = int.from_bytes(_MASK_KEY * ((length + 3) // 4), "big")
    masked = (int.from_bytes(payload, "big") ^ (key >> (8 * (-length % 4)))).to_bytes(
        length, "big"
    )
    return header + _MASK_KEY + masked


def parseFrames(data: bytearray) -> list[tuple[bool, int, bytes]]:
    """
    Take the whole server frames off the front of C{data}.

    @return: C{(fin, opcode, payload)} of each.
    """
    frames = []
    while len(data) >= 2:
        first, second = data[0], data[1]
        assert not second & 0x80, "a server frame is masked"
        length, offset = second & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                break
            (length,), offset = struct.unpack("!H", data[2:4]), 4
        elif length == 127:
            if len(data) < 10:
                break
            (length,), offset = struct.unpack("!Q", data[2:10]), 10
        if len(data) < offset + length:
            break
        frames.append(
            (bool(first & 0x80), first & 0x0F, bytes(data[offset : offset + length]))
        )
        del data[: offset + length]
    return frames


@dataclass
class ClientStream:
    """
    What the server sent on one stream.
    """

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None


class H2Client:
    """
    One HTTP/2 connection to the test server.

    @ivar streams: what arrived on each stream.
    @ivar goaway: the error code of the server's GOAWAY, once one came.
    @ivar autoAcknowledge: give back flow-control window as data arrives
        (false: a reader that never sends WINDOW_UPDATE).
    """

    def __init__(
        self,
        port: int,
        tls: bool = True,
        autoAcknowledge: bool = True,
        settings: dict[int, int] | None = None,
        preamble: bytes = b"",
    ) -> None:
        """
        @param preamble: bytes sent before anything else (a PROXY protocol
            header, for a cleartext connection).
        """
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        if preamble:
            raw.sendall(preamble)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            self.sock: socket.socket = context.wrap_socket(
                raw, server_hostname="localhost"
            )
            self.alpn = self.sock.selected_alpn_protocol()  # type: ignore[attr-defined]
        else:
            self.sock = raw
            self.alpn = None
        self.conn = H2Connection(
            H2Configuration(client_side=True, header_encoding="latin-1")
        )
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.autoAcknowledge = autoAcknowledge
        self.streams: dict[int, ClientStream] = {}
        self.goaway: int | None = None
        self.closed = False
        self.serverSettings: dict[int, int] = {}
        self.flush()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    # -- sending -----------------------------------------------------------

    def flush(self) -> None:
        """
        Send what h2 has queued.
        """
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def sendRaw(self, data: bytes) -> None:
        """
        Send bytes as they are, past h2 (for misbehaving).
        """
        self.sock.sendall(data)

    def websocket(
        self,
        path: str = "/echo",
        extra: Sequence[tuple[str, str]] = (),
        origin: str | None = None,
        version: str = "13",
    ) -> int:
        """
        Open a WebSocket by extended CONNECT (RFC 8441 4); return its stream.
        """
        streamID = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":path", path),
            (":authority", "localhost"),
            ("sec-websocket-version", version),
        ]
        if origin is not None:
            headers.append(("origin", origin))
        headers.extend(extra)
        self.conn.send_headers(streamID, headers)
        self.streams[streamID] = ClientStream()
        self.flush()
        return streamID

    def get(self, path: str = "/", method: str = "GET") -> int:
        """
        Request a page; return its stream.
        """
        streamID = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            streamID,
            [
                (":method", method),
                (":scheme", "https"),
                (":path", path),
                (":authority", "localhost"),
            ],
            end_stream=True,
        )
        self.streams[streamID] = ClientStream()
        self.flush()
        return streamID

    def send(self, streamID: int, data: bytes, end: bool = False) -> None:
        """
        Send C{data} on C{streamID}, within the windows, reading while they
        are shut.
        """
        view = memoryview(data)
        while view:
            window = min(
                self.conn.local_flow_control_window(streamID),
                self.conn.max_outbound_frame_size,
            )
            if window <= 0:
                self.receiveOnce()
                continue
            self.conn.send_data(streamID, bytes(view[:window]))
            view = view[window:]
            self.flush()
        if end:
            self.conn.end_stream(streamID)
            self.flush()

    # -- receiving ---------------------------------------------------------

    def receiveOnce(self) -> list[Event]:
        """
        Read once from the socket and handle what came.

        @raise socket.timeout: nothing came within L{TIMEOUT}.
        """
        data = self.sock.recv(1 << 20)
        if not data:
            self.closed = True
            raise ConnectionError("the server closed the connection")
        events = self.conn.receive_data(data)
        for event in events:
            self._handle(event)
        self.flush()
        return events

    def _handle(self, event: Event) -> None:
        if isinstance(event, ResponseReceived):
            stream = self.streams[event.stream_id]
            fields = dict(event.headers)  # type: ignore[arg-type]
            stream.status = int(fields.pop(":status"))
            stream.headers = fields
        elif isinstance(event, DataReceived):
            self.streams[event.stream_id].data += event.data
            if self.autoAcknowledge:
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
        elif isinstance(event, StreamEnded):
            self.streams[event.stream_id].ended = True
        elif isinstance(event, StreamReset):
            self.streams[event.stream_id].reset = event.error_code
        elif isinstance(event, ConnectionTerminated):
            self.goaway = event.error_code
        elif isinstance(event, RemoteSettingsChanged):
            for code, setting in event.changed_settings.items():
                self.serverSettings[int(code)] = setting.new_value

    def waitFor(self, condition: object, limit: int = 100000) -> None:
        """
        Read until C{condition()} is true (bounded by reads and timeouts).
        """
        for _ in range(limit):
            if condition():  # type: ignore[operator]
                return
            self.receiveOnce()
        raise AssertionError("condition not met")

    def response(self, streamID: int) -> ClientStream:
        """
        Wait for the response head on C{streamID}.
        """
        stream = self.streams[streamID]
        self.waitFor(lambda: stream.status is not None or stream.reset is not None)
        return stream

    def whole(self, streamID: int) -> ClientStream:
        """
        Wait for the whole response on C{streamID}.
        """
        stream = self.streams[streamID]
        self.waitFor(lambda: stream.ended or stream.reset is not None)
        return stream

    def frames(self, streamID: int, count: int = 1) -> list[tuple[bool, int, bytes]]:
        """
        Wait for C{count} whole WebSocket frames on C{streamID}.
        """
        stream = self.streams[streamID]
        got: list[tuple[bool, int, bytes]] = []
        buffer = bytearray()

        def enough() -> bool:
            buffer.extend(stream.data)
            stream.data.clear()
            got.extend(parseFrames(buffer))
            return len(got) >= count or stream.reset is not None or stream.ended

        self.waitFor(enough)
        stream.data[:0] = buffer
        return got

    def settingsAcknowledged(self) -> dict[int, int]:
        """
        Wait for the server's SETTINGS.
        """
        self.waitFor(
            lambda: SettingCodes.ENABLE_CONNECT_PROTOCOL in self.serverSettings
        )
        return self.serverSettings
