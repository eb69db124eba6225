"""
Tests for streaming in and out in the session (L{txclws._session.streaming},
L{txclws._session.producer}, L{txclws.MessagePipe}), over a
L{StringTransport} and a L{MemoryReactorClock}: ordering, pausing on a
Deferred, pings answered mid-stream, backpressure, queued messages and
failures.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests._frames_helpers import (
    BINARY,
    CONT,
    PING,
    TEXT,
    clientFrame,
    parseServerFrames,
)
from tests.test_protocol import fire, makeFactory, openClient
from txclws import (
    ConnectionClosed,
    IStreamingClient,
    IStreamingResource,
    MessagePipe,
    WebSocketResource,
)

# 0x88 = FIN + close; 0x02 = 2 bytes; 0x03f3 = 1011.
CLOSE_1011 = b"\x88\x02\x03\xf3"
# 0x89 = FIN + ping, 0x8a = FIN + pong.
PONG_P = b"\x8a\x01p"


@implementer(IStreamingResource)
class Streamer(WebSocketResource):
    """
    Records the streaming callbacks; C{respond} may give a callback's result.
    """

    maxStreamedMessageSize: int | None = None

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.respond: dict[str, Callable[[Any], Any]] = {}

    def _record(self, name: str, argument: Any = None) -> Any:
        self.events.append((name, argument))
        action = self.respond.get(name)
        return action(argument) if action is not None else None

    def messageStarted(self, client: Any, opcode: int) -> Any:
        return self._record("started", opcode)

    def messageData(self, client: Any, data: str | bytes) -> Any:
        return self._record("data", data)

    def messageEnded(self, client: Any) -> Any:
        return self._record("ended")

    def receivedText(self, client: Any, message: str) -> Any:
        return self._record("text", message)


def test_interfaces() -> None:
    """
    The session provides L{IStreamingClient}; a streaming resource verifies
    against L{IStreamingResource}.
    """
    resource = Streamer()
    verifyObject(IStreamingResource, resource)
    factory, _ = makeFactory(resource)
    protocol, _ = openClient(factory)
    verifyObject(IStreamingClient, protocol)


def test_streamedInOrderWithPingAnswered() -> None:
    """
    A streaming resource gets start, each piece, end, in order; a ping
    between fragments is answered at once and is not the resource's.
    """
    resource = Streamer()
    factory, _ = makeFactory(resource)
    protocol, transport = openClient(factory)
    protocol.dataReceived(
        clientFrame(BINARY, b"ab", fin=False) + clientFrame(PING, b"p")
    )
    assert transport.value() == PONG_P
    protocol.dataReceived(clientFrame(CONT, b"cd"))
    assert resource.events == [
        ("started", 2),
        ("data", b"ab"),
        ("data", b"cd"),
        ("ended", None),
    ]


def test_pendingPiecePausesDelivery() -> None:
    """
    While C{messageData}'s Deferred is unfired, the next pieces wait (and
    with C{maxQueuedBytes=0} reading pauses) but pings are still answered;
    firing it delivers them in order.
    """
    resource = Streamer()
    pending: list[Deferred[None]] = []

    def slow(data: Any) -> Deferred[None]:
        pending.append(Deferred())
        return pending[-1]

    resource.respond["data"] = slow
    factory, _ = makeFactory(resource, maxQueuedBytes=0)
    protocol, transport = openClient(factory)
    protocol.dataReceived(
        clientFrame(TEXT, b"one", fin=False)
        + clientFrame(CONT, b"two", fin=False)
        + clientFrame(PING, b"p")
        + clientFrame(CONT, b"3")
    )
    assert resource.events == [("started", 1), ("data", "one")]
    assert transport.value() == PONG_P
    assert transport.producerState == "paused"
    fire(pending[0], None)
    assert resource.events[-1] == ("data", "two")
    fire(pending[1], None)
    assert resource.events[-1] == ("data", "3")
    fire(pending[2], None)
    assert resource.events[-1] == ("ended", None)
    assert transport.producerState == "producing"


def test_streamedLimitFromResource() -> None:
    """
    The factory's C{maxMessageSize} does not apply to a streamed message;
    the resource's C{maxStreamedMessageSize} does (1009 past it).
    """
    resource = Streamer()
    factory, _ = makeFactory(resource, maxMessageSize=10)
    protocol, _transport = openClient(factory)
    protocol.dataReceived(clientFrame(BINARY, b"x" * 100))
    assert resource.events[-1] == ("ended", None)
    resource.maxStreamedMessageSize = 150
    protocol2, transport2 = openClient(factory)
    protocol2.dataReceived(clientFrame(BINARY, b"x" * 100, fin=False))
    protocol2.dataReceived(clientFrame(CONT, b"x" * 100))
    # 0x88 = close, 0x03f1 = 1009.
    assert transport2.value().startswith(b"\x88") and b"\x03\xf1" in transport2.value()


def test_wholeResourceUnchanged() -> None:
    """
    A resource that does not provide L{IStreamingResource} gets whole
    messages, as before.
    """

    class Whole(WebSocketResource):
        got: list[str] = []

        def receivedText(self, client: Any, message: str) -> None:
            self.got.append(message)

    resource = Whole()
    factory, _ = makeFactory(resource)
    protocol, _ = openClient(factory)
    protocol.dataReceived(clientFrame(TEXT, b"a", fin=False) + clientFrame(CONT, b"b"))
    assert resource.got == ["ab"]


# -- streaming out ------------------------------------------------------------


def test_writeFromFile() -> None:
    """
    A file is read C{frameSize} bytes at a time and sent as a fragmented
    message: the opcode without FIN, CONTINUATION frames, an empty FIN frame
    at its end; the Deferred fires then.
    """
    factory, clock = makeFactory(WebSocketResource())
    protocol, transport = openClient(factory)
    done = protocol.writeFrom(io.BytesIO(b"abcdefg"), binary=True, frameSize=3)
    assert transport.value() == b""
    clock.advance(0)
    # 0x02 = binary, no FIN; 0x00 = continuation; 0x80 = FIN + continuation.
    assert transport.value() == b"\x02\x03abc\x00\x03def\x00\x01g\x80\x00"
    results: list[object] = []
    done.addBoth(results.append)
    assert results == [None]


def test_otherMessagesWaitControlFramesDoNot() -> None:
    """
    While a streamed message goes out, a text message written waits for its
    end; a pong and a ping go out between its fragments.
    """
    factory, _clock = makeFactory(WebSocketResource())
    protocol, transport = openClient(factory)
    pipe = MessagePipe()
    done = protocol.writeFrom(pipe, binary=False)
    pipe.write(b"he")
    protocol.writeText("later")
    protocol.dataReceived(clientFrame(PING, b"p"))
    protocol.ping(b"q")
    pipe.write("llo")
    pipe.finish()
    frames = parseServerFrames(transport.value())
    assert frames == [
        (False, 0, TEXT, b"he"),
        (True, 0, 0xA, b"p"),
        (True, 0, 0x9, b"q"),
        (False, 0, CONT, b"llo"),
        (True, 0, CONT, b""),
        (True, 0, TEXT, b"later"),
    ]
    assert done.called


def test_backpressurePausesSource() -> None:
    """
    When the transport's buffer fills (it pauses its producer, the session),
    the pipe's writer is given a pending Deferred; it fires once the
    transport resumes.
    """
    factory, _clock = makeFactory(WebSocketResource())
    protocol, transport = openClient(factory)
    pipe = MessagePipe()
    protocol.writeFrom(pipe)
    assert pipe.write(b"a").called
    transport.producer.pauseProducing()
    waiting = pipe.write(b"b")
    assert not waiting.called
    transport.producer.resumeProducing()
    assert waiting.called


def test_fileNotReadWhilePaused() -> None:
    """
    A file is not read while the transport is full, and is read on when it
    has room.
    """
    factory, clock = makeFactory(WebSocketResource())
    protocol, transport = openClient(factory)
    source = io.BytesIO(b"x" * 10)
    protocol.writeFrom(source, frameSize=4)
    transport.producer.pauseProducing()
    clock.advance(0)
    assert source.tell() == 0
    transport.producer.resumeProducing()
    clock.advance(0)
    assert source.tell() == 10


def test_sourceFailureCloses1011() -> None:
    """
    A source whose Deferred fails closes the client with 1011, and the
    writeFrom Deferred fails with its failure.
    """
    factory, _clock = makeFactory(WebSocketResource())
    protocol, transport = openClient(factory)
    pipe = MessagePipe()
    done = protocol.writeFrom(pipe)
    pipe.write(b"a")
    pipe.fail(RuntimeError("disk gone"))
    assert transport.value().endswith(CLOSE_1011)
    failures: list[Failure] = []
    done.addErrback(failures.append)
    assert failures[0].check(RuntimeError)


def test_invalidTextSourceCloses1011() -> None:
    """
    A text message whose source writes bytes that are not UTF-8 cannot be
    completed: 1011.
    """
    factory, clock = makeFactory(WebSocketResource())
    protocol, transport = openClient(factory)
    done = protocol.writeFrom(io.BytesIO(b"ok\xff"), binary=False)
    clock.advance(0)
    assert transport.value().endswith(CLOSE_1011)
    failures: list[Failure] = []
    done.addErrback(failures.append)
    assert len(failures) == 1


def test_connectionLostFailsStream() -> None:
    """
    The connection lost mid-stream stops the source and fails the Deferreds
    of the streamed message and of those waiting, with L{ConnectionClosed}.
    """
    factory, _clock = makeFactory(WebSocketResource())
    protocol, _transport = openClient(factory)
    pipe = MessagePipe()
    first = protocol.writeFrom(pipe)
    second = protocol.writeFrom(io.BytesIO(b"zz"))
    protocol.connectionLost(Failure(ConnectionClosed("gone")))
    failures: list[Failure] = []
    first.addErrback(failures.append)
    second.addErrback(failures.append)
    assert [f.check(ConnectionClosed) for f in failures] == [
        ConnectionClosed,
        ConnectionClosed,
    ]
    assert pipe.write(b"late").called


def test_writeFromQueuedInOrder() -> None:
    """
    A second streamed message starts when the first ends.
    """
    factory, clock = makeFactory(WebSocketResource())
    protocol, transport = openClient(factory)
    pipe = MessagePipe()
    protocol.writeFrom(pipe, frameSize=10)
    protocol.writeFrom(io.BytesIO(b"second"), frameSize=10)
    pipe.write(b"first")
    pipe.finish()
    clock.advance(0)
    payloads = [
        (opcode, payload)
        for _, _, opcode, payload in parseServerFrames(transport.value())
    ]
    assert payloads == [
        (BINARY, b"first"),
        (CONT, b""),
        (BINARY, b"second"),
        (CONT, b""),
    ]
