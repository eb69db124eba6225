"""
Tests for the large-message path (issue 16): a large binary message written
as its header and its payload through the transport's C{writeSequence}
(L{txclws._session.session.writeApart}, from the session's C{writeBinary}),
and the send size of a connection that has received a large frame
(L{txclws._readsize}).
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults
from twisted.internet.threads import deferToThread
from twisted.protocols.tls import TLSMemoryBIOProtocol

from tests._rawsocket import RawClient, clientFrame
from tests.conftest import RecordingResource
from tests.test_protocol import (
    PEER,
    REQUEST,
    RecordingTransport,
    SocketTransport,
    makeFactory,
    openSocketClient,
)
from txclws import ConnectionClosed, PerMessageDeflate
from txclws._core.clientconnection import ClientConnection
from txclws._core.connection import WebSocketConnection
from txclws._core.deflate import DeflateCodec, DeflateParameters
from txclws._core.frames import Opcode, serializeFrame
from txclws._core.hixie76 import Hixie76Connection
from txclws._readsize import MAX_READ_SIZE, MAX_SEND_SIZE, resizeReads
from txclws._session.session import LARGE_WRITE, writeApart


@pytest.fixture
def recorder() -> RecordingResource:
    """
    A recording resource that does not echo.
    """
    return RecordingResource(echo=False)


class SequenceTransport(RecordingTransport):
    """
    A L{RecordingTransport} that also records what each C{writeSequence}
    was given, as it was given.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sequences: list[list[bytes]] = []

    def writeSequence(self, seq: Any) -> None:
        self.sequences.append(list(seq))
        super().writeSequence(seq)


def openSequenceClient(resource: Any) -> tuple[Any, SequenceTransport]:
    """
    A protocol past its handshake on a L{SequenceTransport}, the 101
    cleared away.
    """
    factory, _ = makeFactory(resource)
    protocol = factory.buildProtocol(PEER)
    transport = SequenceTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    protocol.dataReceived(REQUEST)
    transport.clear()
    return protocol, transport


def test_largeBinaryHeaderAndPayloadApart(recorder: RecordingResource) -> None:
    """
    A binary message of L{LARGE_WRITE} bytes or more goes to a transport
    with C{writeSequence} as its RFC 6455 header (FIN + binary, the 64-bit
    length) and the very payload object, not copied; the bytes on the wire
    are the frame L{serializeFrame} makes.
    """
    protocol, transport = openSequenceClient(recorder)
    payload = bytes(range(256)) * 400  # 102,400 bytes
    protocol.writeBinary(payload)
    [[header, sent]] = transport.sequences
    assert header == b"\x82\x7f" + (102400).to_bytes(8, "big")
    assert sent is payload
    assert transport.value() == serializeFrame(Opcode.BINARY, payload)


@pytest.mark.parametrize(
    "payload, frameSize",
    [
        (b"s" * (LARGE_WRITE - 1), None),
        (memoryview(b"v" * LARGE_WRITE), None),
        (b"f" * LARGE_WRITE, LARGE_WRITE // 2),
    ],
    ids=["shorter", "memoryview", "fragmented"],
)
def test_otherBinaryOneWrite(
    recorder: RecordingResource, payload: Any, frameSize: int | None
) -> None:
    """
    A shorter message, one given as a C{memoryview} (Twisted's
    transports take only C{bytes}) and a fragmented one are
    framed whole and written in one C{write}, as before.
    """
    protocol, transport = openSequenceClient(recorder)
    protocol.writeBinary(payload, frameSize)
    assert transport.sequences == []
    assert transport.value()[:1] == (b"\x82" if frameSize is None else b"\x02")


class _Sink:
    """
    A sink with C{writeSequence}, recording what it is given.
    """

    def __init__(self) -> None:
        self.sequences: list[tuple[bytes, ...]] = []

    def write(self, data: bytes) -> None:
        raise AssertionError("writeApart never calls write")

    def writeSequence(self, seq: tuple[bytes, ...]) -> None:
        self.sequences.append(seq)


def test_apartOnlyForPlainServerFrames() -> None:
    """
    L{writeApart} writes header and payload apart only where the frame is
    the payload as it is behind its header: not with permessage-deflate,
    not for a client (masked, RFC 6455 5.3), not for hixie-76, not to a
    sink without C{writeSequence}.
    """
    payload = b"p" * 70000
    sink = _Sink()
    assert writeApart(sink, WebSocketConnection(1 << 20, 1 << 20), payload)
    assert sink.sequences == [(b"\x82\x7f" + (70000).to_bytes(8, "big"), payload)]
    codec = DeflateCodec(DeflateParameters(), PerMessageDeflate())
    others = [
        WebSocketConnection(1 << 20, 1 << 20, codec),
        ClientConnection(1 << 20, 1 << 20),
        Hixie76Connection(1 << 20, 1 << 20),
    ]
    for connection in others:
        assert not writeApart(sink, connection, payload)
    assert not writeApart(object(), WebSocketConnection(1 << 20, 1 << 20), payload)
    assert len(sink.sequences) == 1


def test_apartNotAfterClose() -> None:
    """
    Once our close frame is out, L{writeApart} writes nothing (the caller's
    L{WebSocketConnection.frameBinary} then raises L{ConnectionClosed}).
    """
    connection = WebSocketConnection(1 << 20, 1 << 20)
    connection.frameClose(1000)
    sink = _Sink()
    assert not writeApart(sink, connection, b"p" * 70000)
    assert sink.sequences == []
    with pytest.raises(ConnectionClosed):
        connection.frameBinary(b"p" * 70000)


def test_largeFrameRaisesSendLimit(recorder: RecordingResource) -> None:
    """
    A connection whose read size was raised for a large frame hands the
    kernel up to L{MAX_SEND_SIZE} per C{send} from then on (its own
    C{SEND_LIMIT}); the class's is untouched.
    """
    factory, _ = makeFactory(recorder, maxFrameSize=4 << 20, maxMessageSize=4 << 20)
    protocol, transport = openSocketClient(factory)
    default = SocketTransport.SEND_LIMIT
    frame = clientFrame(0x2, b"z" * 300_000)
    first = transport.bufferSize
    protocol.dataReceived(frame[:first])
    assert transport.SEND_LIMIT == MAX_SEND_SIZE
    protocol.dataReceived(frame[first:])
    assert transport.SEND_LIMIT == MAX_SEND_SIZE
    assert SocketTransport.SEND_LIMIT == default
    assert recorder.named("receivedBinary") == [b"z" * 300_000]


def test_largeFrameResizesTCPBelowTwistedTLS() -> None:
    """
    Under Twisted's TLS (C{ssl:}), the TCP transport below the
    C{TLSMemoryBIOProtocol} is the one resized while a large frame streams
    in: it reads the rest of the frame at once and sends up to
    L{MAX_SEND_SIZE} at a time from then on; once the frame is in, its
    read size is back.  (Measured with C{benchmarks/run --only W2tls}:
    2.40 -> 1.88 ms of server CPU per MiB.)
    """
    connection = WebSocketConnection(4 << 20, 4 << 20)
    frame = clientFrame(0x2, b"t" * (2 << 20))
    tls = TLSMemoryBIOProtocol(None, None)  # type: ignore[arg-type]
    tcp = SocketTransport(peerAddress=PEER)
    tls.transport = tcp
    default = tcp.bufferSize
    connection.receiveData(frame[:default])
    saved = resizeReads(tls, connection, 0)
    assert (tcp.bufferSize, tcp.SEND_LIMIT, saved) == (
        MAX_READ_SIZE,
        MAX_SEND_SIZE,
        default,
    )
    connection.receiveData(frame[default:])
    assert resizeReads(tls, connection, saved) == 0
    assert (tcp.bufferSize, tcp.SEND_LIMIT) == (default, MAX_SEND_SIZE)
    assert "bufferSize" not in vars(tls)


def test_smallMessagesLeaveSendLimitAlone(recorder: RecordingResource) -> None:
    """
    Small messages, and a frame that fits in one read, never change the
    send size.
    """
    factory, _ = makeFactory(recorder)
    protocol, transport = openSocketClient(factory)
    protocol.dataReceived(clientFrame(0x1, b"x" * 100) * 200)
    protocol.dataReceived(clientFrame(0x2, b"y" * 30_000))
    assert "SEND_LIMIT" not in vars(transport)
    assert len(recorder.named("receivedBinary")) == 1


@pytest_twisted.ensureDeferred
async def test_largeEchoesOverTCP(echoServer: Any) -> None:
    """
    Over a real TCP connection, three binary messages of 900,000 bytes or
    so sent at once (the second while the first's echo is still going
    out) come back whole and in order: header and payload, written apart,
    reach the wire in order, with the raised read and send sizes.
    """
    port, _, _ = echoServer
    payloads = [
        bytes([n]) * 256 + bytes(range(256)) * 3500 + bytes([n]) for n in (1, 2, 3)
    ]
    with RawClient(port) as client:
        await deferToThread(client.handshake)

        def sendAll() -> None:
            for payload in payloads:
                client.send(clientFrame(0x2, payload))

        def readAll() -> list[bytes]:
            return [client.readFrame().payload for _ in payloads]

        _, echoed = await gatherResults(
            [deferToThread(sendAll), deferToThread(readAll)]
        )
    assert [len(e) for e in echoed] == [len(p) for p in payloads]
    assert echoed == payloads


def test_apartDuringARead() -> None:
    """
    During a read over TCP the session's writes go through a noting sink
    (L{txclws._session.base.notingSink}, so that the read's replies can be
    sent in its turn): over a sink with C{writeSequence} it passes that on,
    so a large binary echo written from a callback still goes out as its
    header and payload apart; over a sink without it, it has none, and the
    message is framed whole.
    """
    from txclws._session.base import notingSink

    sink = _Sink()
    noting = notingSink(sink)
    payload = b"\x01" * 70000
    assert writeApart(noting, WebSocketConnection(1 << 20, 1 << 20), payload)
    assert noting.wrote
    [pieces] = sink.sequences
    assert pieces[1] is payload

    class PlainSink:
        def write(self, data: bytes) -> None:
            pass

    plain = notingSink(PlainSink())
    assert not writeApart(plain, WebSocketConnection(1 << 20, 1 << 20), payload)
