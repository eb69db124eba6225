"""
The data path of the C{stdssl:} layer (L{txclws._tls}, issue 16), over a
L{StringTransport} and a client C{ssl.SSLObject}: what arrives is
delivered whole however TCP cuts it (a record completed by a later read
included), a large read as one buffer, a large write encrypted in place
and sent as full records, and a connection that reads large data is sent
large data in large C{send}s.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource
from twisted.web.server import Request

from tests.test_stdlibtls import stdsslString
from tests.test_tls import certificate, trusting
from txclws._tls import StdlibTLSFactory, StdlibTLSProtocol, serverContext
from txclws._tls.plaintext import RECORD
from txclws._tls.slices import MAX_TLS_SEND, adaptReads
from txclws.web import WebSocketSite

__all__ = ["certificate"]  # the fixture, shared with test_tls

#: A TLS record header: type, version, length (RFC 8446 5.1).
RECORD_HEADER = 5


class Recorder(Protocol):
    """
    Records what it is given, and the type it came as.
    """

    takesBytearray = False

    def __init__(self) -> None:
        self.received: list[bytes | bytearray] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)


class BufferRecorder(Recorder):
    """
    A L{Recorder} that says it takes a C{bytearray}.
    """

    takesBytearray = True


class Connected:
    """
    A server L{StdlibTLSProtocol} over a L{StringTransport}, and a client
    C{SSLObject} that has completed its handshake with it.
    """

    def __init__(self, certificate: tuple[Path, Path], app: type[Recorder]) -> None:
        cert, key = certificate
        factory = StdlibTLSFactory(
            serverContext(str(cert), str(key)), Factory.forProtocol(app)
        )
        tls = factory.buildProtocol(None)
        assert isinstance(tls, StdlibTLSProtocol)
        self.tls = tls
        self.transport = StringTransport()
        tls.makeConnection(self.transport)
        self.app = tls.wrappedProtocol
        assert isinstance(self.app, Recorder)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = trusting(cert).wrap_bio(
            self.incoming, self.outgoing, server_hostname="localhost"
        )
        for _ in range(5):  # a bounded number of round trips
            try:
                self.client.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.toServer()
                self.toClient()
        self.toServer()  # the client's Finished
        self.toClient()  # TLS 1.3 session tickets
        assert self.app.received == []

    def toServer(self, cuts: int | None = None) -> None:
        """
        Move the client's pending bytes to the server: at once, or in
        reads of C{cuts} bytes.
        """
        data = self.outgoing.read()
        step = cuts or max(len(data), 1)
        for start in range(0, len(data), step):
            self.tls.dataReceived(data[start : start + step])

    def toClient(self) -> bytes:
        """
        What the server sent, given to the client; its plaintext.
        """
        self.incoming.write(self.transport.value())
        self.transport.clear()
        pieces = []
        try:
            while True:
                pieces.append(self.client.read(RECORD))
        except ssl.SSLWantReadError:
            pass
        return b"".join(pieces)


@pytest.fixture
def connected(certificate: tuple[Path, Path]) -> Iterator[Connected]:
    """
    A handshaken server and client, the server's application a
    L{Recorder}.
    """
    yield Connected(certificate, Recorder)


@pytest.mark.parametrize("cut", [1, 7, 400, 16000, 16406, 16407, 40000, 70001])
def test_deliveredWholeHoweverCut(connected: Connected, cut: int) -> None:
    """
    Three records' plaintext (40 KiB) reaches the application whole once
    the last byte is in, however TCP cuts the records: a read that
    completes a record with its last few bytes delivers the whole record,
    not only as many bytes as the read brought (OpenSSL keeps the rest,
    and no later read may come).
    """
    message = bytes(range(256)) * 160
    connected.client.write(message)
    connected.toServer(cut)
    assert b"".join(connected.app.received) == message


def test_recordCompletedByShortRead(connected: Connected) -> None:
    """
    A 16 KiB record whose last 406 bytes come in a read of their own is
    delivered whole by that read.
    """
    connected.client.write(b"x" * RECORD)
    record = connected.outgoing.read()
    connected.tls.dataReceived(record[:16000])
    connected.tls.dataReceived(record[16000:])
    assert b"".join(connected.app.received) == b"x" * RECORD


@pytest.mark.parametrize(
    ("app", "kind"), [(Recorder, bytes), (BufferRecorder, bytearray)]
)
def test_largeReadOneBuffer(
    certificate: tuple[Path, Path], app: type[Recorder], kind: type
) -> None:
    """
    A read of many records reaches the application in one call: as the
    C{bytearray} it was decrypted into if the application takes one
    (C{takesBytearray}), else as C{bytes}.
    """
    tls = Connected(certificate, app)
    message = b"\x05" * 300_000
    tls.client.write(message)
    tls.toServer()
    assert [type(piece) for piece in tls.app.received] == [kind]
    assert tls.app.received[0] == message


def records(wire: bytes) -> list[int]:
    """
    The lengths of the TLS records in C{wire}.
    """
    lengths, position = [], 0
    while position < len(wire):
        length = int.from_bytes(wire[position + 3 : position + 5], "big")
        lengths.append(length)
        position += RECORD_HEADER + length
    assert position == len(wire)
    return lengths


def test_writeSequenceFullRecords(connected: Connected) -> None:
    """
    A header and a 1 MiB payload given to C{writeSequence} reach the peer
    in order, as full records (the header shares the first), 65 in all;
    the payload is not copied into a joined message first.
    """
    header, payload = b"\x82\x7f" + (1 << 20).to_bytes(8, "big"), b"\x09" * (1 << 20)
    connected.tls.writeSequence([header, payload])
    wire = connected.transport.value()
    lengths = records(wire)
    assert len(lengths) == 65
    assert len(set(lengths[:-1])) == 1  # all full
    assert connected.toClient() == header + payload


def test_smallWritesShareRecords(connected: Connected) -> None:
    """
    What the application writes while it handles a read (three small
    replies) is sent in one record, after the read.
    """

    def answer(data: bytes) -> None:
        for reply in (b"one", b"two", b"three"):
            connected.tls.write(reply)

    connected.app.dataReceived = answer  # type: ignore[method-assign]
    connected.client.write(b"go")
    connected.toServer()
    assert len(records(connected.transport.value())) == 1
    assert connected.toClient() == b"onetwothree"


def test_largeReadsRaiseSendLimit() -> None:
    """
    A TCP transport whose reads fill its buffer reads 4x more per
    C{recv} and, from then on, hands the kernel up to 1 MiB per C{send}
    (Twisted's C{SEND_LIMIT} is 128 KiB); a short read puts the read size
    back, not the send size.
    """
    transport = FileDescriptor(reactor)
    own, sendLimit = transport.bufferSize, transport.SEND_LIMIT
    assert sendLimit < MAX_TLS_SEND
    default = adaptReads(transport, own, 0)
    assert (transport.bufferSize, transport.SEND_LIMIT) == (own * 4, MAX_TLS_SEND)
    adaptReads(transport, 100, default)
    assert (transport.bufferSize, transport.SEND_LIMIT) == (own, MAX_TLS_SEND)


class BodyLength(Resource):
    """
    Answers a POST with the length of its body.
    """

    isLeaf = True

    def render_POST(self, request: Request) -> bytes:
        assert request.content is not None
        return str(len(request.content.read())).encode("ascii")


def postOverTLS(port: int, cert: Path, size: int) -> bytes:
    """
    POST C{size} bytes over HTTPS/1.1; the answer's body.
    """
    import http.client

    connection = http.client.HTTPSConnection(
        "localhost", port, context=trusting(cert), timeout=10
    )
    try:
        connection.request("POST", "/", body=b"\x01" * size)
        return connection.getresponse().read()
    finally:
        connection.close()


@pytest_twisted.ensureDeferred
async def test_largeHTTPBody(certificate: tuple[Path, Path]) -> None:
    """
    A L{WebSocketSite} on C{stdssl:} hands twisted.web a large body's
    reads as C{bytes} (the front door takes the TLS layer's C{bytearray},
    twisted.web does not): a 600 KB POST is read whole.
    """
    site = WebSocketSite(BodyLength())
    listening: Any = await serverFromString(reactor, stdsslString(certificate)).listen(
        site
    )
    try:
        body = await deferToThread(
            postOverTLS, listening.getHost().port, certificate[0], 600_000
        )
    finally:
        stopped: Deferred[None] = listening.stopListening()
        await stopped
    assert body == b"600000"
