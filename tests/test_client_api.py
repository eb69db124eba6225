"""
Tests for the client API's contract (issue 12, defects 7 and 8, and "one
API contract for every client kind"): every client kind (RFC 6455, hybi-08,
hybi-07 and hixie-76 sessions, and the in-memory test client) answers each
misuse with the same exception, open, closing or gone, and writes nothing
for it; what is decided per protocol (L{UnsupportedByProtocol}) comes after
the arguments, then the state (L{ConnectionClosed}).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from txclws import (
    REJECT,
    ConnectionClosed,
    UnsupportedByProtocol,
    WebSocketFactory,
    WebSocketResource,
    anyOrigin,
)
from txclws._factory import ResourceRegistry
from txclws.testing import InMemoryClient, connect

PEER = IPv4Address("TCP", "192.0.2.7", 40000)

#: An RFC 6455 / hybi handshake for /demo; the version goes in {version}.
HYBI_REQUEST = (
    "GET /demo HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: {version}\r\n"
    "\r\n"
)

#: draft-hixie-76 section 1.3's request, and the 8 bytes after it.
HIXIE_REQUEST = (
    b"GET /demo HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n"
    b"Upgrade: WebSocket\r\n"
    b"Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n"
    b"Origin: http://example.com\r\n"
    b"\r\n"
    b"^n:ds[4U"
)


class SessionKind:
    """
    A server-side client (the resource's C{IWebSocketClient}) of one
    protocol version, over a C{StringTransport}.

    @ivar client: the client, once L{make} ran.
    """

    def __init__(self, version: int) -> None:
        self.version = version
        self.client: Any = None
        self.transport = StringTransport(peerAddress=PEER)

    def __repr__(self) -> str:
        return f"session-v{self.version}"

    def make(self) -> None:
        """
        Connect and answer the handshake; forget the 101.
        """
        registry = ResourceRegistry()
        registry.register("/demo", WebSocketResource(), anyOrigin)
        factory = WebSocketFactory(
            registry, reactor=MemoryReactorClock(), protocol76Support=True
        )
        self.client = factory.buildProtocol(PEER)
        self.client.makeConnection(self.transport)
        if self.version == 0:
            self.client.dataReceived(HIXIE_REQUEST)
        else:
            request = HYBI_REQUEST.format(version=self.version)
            self.client.dataReceived(request.encode("ascii"))
        assert self.transport.value().startswith(b"HTTP/1.1 101 ")
        assert self.client.websocketVersion == self.version
        self.transport.clear()

    def call(self, method: str, *args: Any) -> None:
        """
        Call the client API's C{method}.
        """
        getattr(self.client, method)(*args)

    def startClosing(self) -> None:
        """
        Send our close frame: the client is closing.
        """
        self.client.close()
        self.transport.clear()

    def lose(self) -> None:
        """
        The connection is gone.
        """
        self.client.connectionLost(Failure(ConnectionDone()))
        self.transport.clear()

    def written(self) -> bytes:
        """
        What was written to the peer since the last look.
        """
        data = self.transport.value()
        self.transport.clear()
        return data


class InMemoryKind:
    """
    L{InMemoryClient}, the client side of an in-memory connection; its
    C{send*} methods stand for the client API's.
    """

    #: The client API's name for each of L{InMemoryClient}'s methods.
    METHODS = {
        "writeText": "sendText",
        "writeBinary": "sendBinary",
        "ping": "sendPing",
        "close": "sendClose",
    }

    def __init__(self) -> None:
        self.client: InMemoryClient | None = None
        self.sent: list[bytes] = []

    def __repr__(self) -> str:
        return "InMemoryClient"

    def make(self) -> None:
        """
        Connect to a resource that does nothing, recording what is sent.
        """
        self.client = client = connect(WebSocketResource(), "/demo")
        original = client.sendBytes

        def record(data: bytes) -> None:
            self.sent.append(data)
            original(data)

        client.sendBytes = record  # type: ignore[method-assign]

    def call(self, method: str, *args: Any) -> None:
        """
        Call L{InMemoryClient}'s counterpart of C{method}.
        """
        getattr(self.client, self.METHODS[method])(*args)

    def startClosing(self) -> None:
        """
        Send our close frame.
        """
        assert self.client is not None
        self.client.sendClose()
        self.sent.clear()

    def lose(self) -> None:
        """
        Vanish, as a reset does.
        """
        assert self.client is not None
        self.client.vanish()
        self.sent.clear()

    def written(self) -> bytes:
        """
        What was sent since the last look.
        """
        data, self.sent = b"".join(self.sent), []
        return data


Kind = SessionKind | InMemoryKind

#: Every client kind.
KINDS: list[Callable[[], Kind]] = [
    lambda: SessionKind(13),
    lambda: SessionKind(8),
    lambda: SessionKind(7),
    lambda: SessionKind(0),
    InMemoryKind,
]
KIND_IDS = ["v13", "v8", "v7", "hixie76", "InMemoryClient"]


@dataclass(frozen=True)
class Misuse:
    """
    One wrong call of the client API, and the exception every kind raises.
    """

    method: str
    args: tuple[Any, ...]
    error: type[Exception]

    def __str__(self) -> str:
        shown = ", ".join(repr(a) if len(repr(a)) < 20 else "..." for a in self.args)
        return f"{self.method}({shown})"


MISUSES = [
    # Defect 7: 1005 is never sent (RFC 6455 7.4.1); it sent a close frame
    # without a status.
    Misuse("close", (1005, "bad"), ValueError),
    Misuse("close", (1005,), ValueError),
    # Codes that may not be sent, on any version (1004 is per version).
    *(
        Misuse("close", (code,), ValueError)
        for code in [1006, 1015, 999, 0, -1, 1016, 2000, 2999, 5000, 65536]
    ),
    # Not an int: struct.error, for a float, before.
    Misuse("close", (1000.0,), TypeError),
    Misuse("close", ("1000",), TypeError),
    Misuse("close", (True,), TypeError),
    Misuse("close", (b"1000",), TypeError),
    Misuse("close", (1000, b"why"), TypeError),
    Misuse("close", (1000, None), TypeError),
    Misuse("close", (1000, "a" * 123), ValueError),
    Misuse("close", (1000, "\u20ac" * 41), ValueError),
    Misuse("close", (1000, "\ud800"), ValueError),
    Misuse("close", (None, "a reason needs a code"), ValueError),
    Misuse("ping", (b"x" * 126,), ValueError),
    Misuse("ping", ("text",), TypeError),
    Misuse("ping", (None,), TypeError),
    Misuse("writeText", (b"\xff",), ValueError),
    Misuse("writeText", (b"\xed\xa0\x80",), ValueError),
    Misuse("writeText", ("\ud800",), ValueError),
    Misuse("writeText", (None,), TypeError),
    Misuse("writeText", (1,), TypeError),
    Misuse("writeText", ("x", 0), ValueError),
    Misuse("writeText", ("x", -1), ValueError),
    Misuse("writeText", ("x", 1.0), TypeError),
    Misuse("writeText", ("x", True), TypeError),
    Misuse("writeBinary", ("text",), TypeError),
    Misuse("writeBinary", (None,), TypeError),
    Misuse("writeBinary", (b"x", 0), ValueError),
    Misuse("writeBinary", (b"x", "10"), TypeError),
]

#: The states a client may be in when it is misused.
STATES = ["open", "closing", "lost"]


def inState(makeKind: Callable[[], Kind], state: str) -> Kind:
    """
    A client of one kind, open, closing (our close frame sent) or lost.
    """
    kind = makeKind()
    kind.make()
    if state == "closing":
        kind.startClosing()
    elif state == "lost":
        kind.lose()
    return kind


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("misuse", MISUSES, ids=str)
@pytest.mark.parametrize("makeKind", KINDS, ids=KIND_IDS)
def test_sameErrorEverywhere(
    makeKind: Callable[[], Kind], misuse: Misuse, state: str
) -> None:
    """
    Each misuse raises the same exception type on every client kind and in
    every state (the arguments are checked before anything else), and
    nothing reaches the peer.
    """
    kind = inState(makeKind, state)
    with pytest.raises(misuse.error):
        kind.call(misuse.method, *misuse.args)
    assert kind.written() == b""


@pytest.mark.parametrize(
    ("makeKind", "allowed"),
    [(KINDS[0], False), (KINDS[1], True), (KINDS[2], True), (KINDS[3], False)],
    ids=KIND_IDS[:4],
)
def test_1004PerVersion(makeKind: Callable[[], Kind], allowed: bool) -> None:
    """
    1004 may be sent to hybi-07/08 peers alone (their section 7.4.1); RFC
    6455 reserves it, and hixie-76 is held to RFC 6455's rules.
    """
    kind = inState(makeKind, "open")
    if allowed:
        kind.call("close", 1004, "too large")
        assert kind.written() == b"\x88\x0b\x03\xectoo large"
    else:
        with pytest.raises(ValueError, match="1004"):
            kind.call("close", 1004)
        assert kind.written() == b""


class TestHixie76:
    """
    Defect 8: a hixie-76 client checks C{close()}'s arguments as RFC 6455
    does, then sends its own closing frame; what it has no frames for is
    L{UnsupportedByProtocol}, before its state is looked at.
    """

    @pytest.mark.parametrize(
        "args", [(1000,), (1001, "bye"), (4999, "\u00e9" * 61), (None,)]
    )
    def test_validCloseSendsClosingFrame(self, args: tuple[Any, ...]) -> None:
        """
        A valid close sends the closing frame (hixie-76 4.2), once.
        """
        kind = inState(KINDS[3], "open")
        kind.call("close", *args)
        assert kind.written() == b"\xff\x00"
        kind.call("close", *args)
        assert kind.written() == b""

    @pytest.mark.parametrize("state", STATES)
    @pytest.mark.parametrize(
        ("method", "args"), [("writeBinary", (b"ok",)), ("ping", (b"ok",))]
    )
    def test_unsupportedWhateverTheState(
        self, method: str, args: tuple[Any, ...], state: str
    ) -> None:
        """
        A binary message or a ping with valid arguments is
        L{UnsupportedByProtocol}, open, closing or gone: no timing makes
        it right.
        """
        kind = inState(KINDS[3], state)
        with pytest.raises(UnsupportedByProtocol):
            kind.call(method, *args)
        assert kind.written() == b""


@pytest.mark.parametrize("state", ["closing", "lost"])
@pytest.mark.parametrize(
    ("method", "args", "kinds"),
    [
        ("writeText", ("ok",), KINDS[:4]),
        ("writeBinary", (b"ok",), KINDS[:3]),
        ("ping", (b"ok",), KINDS[:3]),
    ],
    ids=["writeText", "writeBinary", "ping"],
)
def test_closedAfterArguments(
    method: str, args: tuple[Any, ...], kinds: list[Callable[[], Kind]], state: str
) -> None:
    """
    A valid call on a session that is closing or gone is
    L{ConnectionClosed}; a valid C{close()} there does nothing.
    """
    for makeKind in kinds:
        kind = inState(makeKind, state)
        with pytest.raises(ConnectionClosed):
            kind.call(method, *args)
        kind.call("close", 1000, "again")
        assert kind.written() == b""


@pytest.mark.parametrize(
    ("version", "args", "frame"),
    [
        (13, (1000, "bye"), b"\x88\x05\x03\xe8bye"),
        (13, (None,), b"\x88\x00"),
        (13, (4000,), b"\x88\x02\x0f\xa0"),
        # hybi-08 lacks 1011: it is sent the drafts' 1001 (going away).
        (8, (1011, "oops"), b"\x88\x06\x03\xe9oops"),
    ],
)
def test_validCloseFrames(version: int, args: tuple[Any, ...], frame: bytes) -> None:
    """
    What passes the checks is sent as it was before, byte for byte (FIN +
    close opcode, the length, the code in network order, the reason).
    """
    kind = inState(lambda: SessionKind(version), "open")
    kind.call("close", *args)
    assert kind.written() == frame


def test_bytesLikeAccepted() -> None:
    """
    Bytes-like arguments (C{bytearray}, C{memoryview}) are taken by every
    method that takes bytes, on the sessions and the in-memory client.
    """
    for makeKind in [KINDS[0], KINDS[4]]:
        kind = inState(makeKind, "open")
        kind.call("writeText", bytearray(b"h\xc3\xa9"))
        kind.call("writeBinary", memoryview(b"\x01\x02\x03\x04").cast("H"))
        kind.call("writeBinary", bytearray(b"\x05"), 1)
        kind.call("ping", memoryview(b"p"))
        assert kind.written()


class TestWhenDisconnected:
    """
    L{IWebSocketClient.whenDisconnected}: the declared hook a hub ends a
    client's subscriptions by (issue 18).
    """

    def test_afterClientDisconnected(self) -> None:
        """
        It fires once the client is gone, after C{clientDisconnected};
        every waiter's Deferred fires, and one asked afterwards has fired.
        """
        order: list[str] = []

        class Resource(WebSocketResource):
            def clientDisconnected(self, client: Any) -> None:
                order.append("clientDisconnected")

        client = connect(Resource(), "/demo")
        waiters = [client.protocol.whenDisconnected() for _ in range(2)]
        for waiter in waiters:
            waiter.addCallback(lambda _: order.append("whenDisconnected"))
        assert order == []
        client.sendClose()
        assert order == ["clientDisconnected"] + ["whenDisconnected"] * 2
        assert client.protocol.whenDisconnected().called

    def test_waitsForPendingCallback(self) -> None:
        """
        A client that vanishes while a callback is pending is not
        disconnected until the callback is done (as C{clientDisconnected}).
        """
        pending: Deferred[None] = Deferred()

        class Resource(WebSocketResource):
            def receivedText(self, client: Any, message: str) -> Deferred[None]:
                return pending

        client = connect(Resource(), "/demo")
        waiter = client.protocol.whenDisconnected()
        client.sendText("hold")
        client.vanish()
        assert not waiter.called
        pending.callback(None)
        assert waiter.called

    def test_rejected(self) -> None:
        """
        A REJECTed client, which gets no C{clientDisconnected}, is
        disconnected once its connection is gone.
        """
        waiters: list[Deferred[None]] = []

        class Resource(WebSocketResource):
            def clientConnected(self, client: Any) -> object:
                waiters.append(client.whenDisconnected())
                return REJECT

        client = connect(Resource(), "/demo")
        assert client.closeCode == 1008 and client.disconnected
        assert waiters[0].called
