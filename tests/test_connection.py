"""
Tests for L{txclws._core.connection}: the sans-I/O connection state machine and
the bytes it sends (RFC 6455 sections 5 and 7).
"""

from __future__ import annotations

import pytest

from tests._frames_helpers import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    TEXT,
    clientFrame,
    closePayload,
)
from txclws._core.connection import ConnectionState, WebSocketConnection
from txclws._core.errors import ConnectionClosed
from txclws._core.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    PingReceived,
    TextMessage,
)

S = ConnectionState

#: Our close frame with code 1000: 0x88 FIN, close; 0x02 length 2; 03 e8.
CLOSE_1000 = b"\x88\x02\x03\xe8"


def makeConnection(
    maxFrameSize: int = 1 << 16, maxMessageSize: int = 1 << 16
) -> WebSocketConnection:
    """
    A fresh connection in C{OPEN}.
    """
    return WebSocketConnection(maxFrameSize, maxMessageSize)


def clientClose(code: int | None = 1000, reason: bytes = b"") -> bytes:
    """
    A client's close frame, masked.
    """
    payload = b"" if code is None else closePayload(code, reason)
    return clientFrame(CLOSE, payload)


def inState(state: ConnectionState) -> WebSocketConnection:
    """
    A connection brought to C{state} by the ordinary route.
    """
    connection = makeConnection()
    if state is S.LOCAL_CLOSING:
        connection.frameClose(1000)
    elif state is S.REMOTE_CLOSING:
        connection.receiveData(clientClose(1001))
    elif state is S.FAILING:
        connection.receiveData(clientFrame(TEXT, b"", mask=None))
    elif state is S.CLOSED:
        connection.frameClose(1000)
        connection.receiveData(clientClose(1000))
    assert connection.state is state
    return connection


class TestOpen:
    """
    RFC 6455 section 5.6: data flows both ways while OPEN.
    """

    def test_wireKeyWithoutCompression(self) -> None:
        """
        Without compression every connection frames a message the same way,
        so they share one broadcast key.
        """
        assert makeConnection().wireKey == makeConnection().wireKey == "rfc6455"
        connection = makeConnection()
        assert connection.frameMessage(0x1, b"Hi") == b"\x81\x02Hi"
        assert connection.state is S.OPEN

    def test_initialState(self) -> None:
        """
        A new connection is OPEN, with no close code.
        """
        connection = makeConnection()
        assert connection.state is S.OPEN
        assert connection.closeCode is None
        assert connection.closeReason == ""

    def test_receiveMessages(self) -> None:
        """
        Messages and pings received leave the connection OPEN.
        """
        connection = makeConnection()
        data = (
            clientFrame(TEXT, b"hi")
            + clientFrame(PING, b"p")
            + clientFrame(BINARY, b"\x00")
        )
        assert connection.receiveData(data) == [
            TextMessage("hi"),
            PingReceived(b"p"),
            BinaryMessage(b"\x00"),
        ]
        assert connection.state is S.OPEN

    def test_sendText(self) -> None:
        """
        A text message is one unmasked frame.
        """
        # 0x81: FIN, text; 0x05: MASK 0, length 5.
        assert makeConnection().frameText("Hello") == b"\x81\x05Hello"

    def test_sendTextUtf8(self) -> None:
        """
        Text is sent as UTF-8; UTF-8 bytes are sent unchanged.
        """
        connection = makeConnection()
        # 0x81: FIN, text; 0x02: length 2; c3 a9 = U+00E9.
        assert connection.frameText("\u00e9") == b"\x81\x02\xc3\xa9"
        assert connection.frameText(b"\xc3\xa9") == b"\x81\x02\xc3\xa9"

    @pytest.mark.parametrize("data", [b"\xff", b"\xed\xa0\x80", b"\xc3"])
    def test_sendTextNotUtf8(self, data: bytes) -> None:
        """
        Text given as bytes that are not UTF-8 is a C{ValueError}, and the
        connection stays usable.
        """
        connection = makeConnection()
        with pytest.raises(ValueError, match="UTF-8"):
            connection.frameText(data)
        assert connection.frameText("ok") == b"\x81\x02ok"

    def test_sendTextLoneSurrogate(self) -> None:
        """
        A string holding a lone surrogate has no UTF-8 form: C{ValueError}
        (C{UnicodeEncodeError}), never invalid text on the wire.
        """
        with pytest.raises(ValueError):
            makeConnection().frameText("a\ud800b")

    def test_sendBinary(self) -> None:
        """
        A binary message is one unmasked frame.
        """
        # 0x82: FIN, binary; 0x03: length 3.
        assert makeConnection().frameBinary(b"\x00\x01\x02") == b"\x82\x03\x00\x01\x02"

    def test_sendFragmented(self) -> None:
        """
        C{frameSize} fragments the message (RFC 6455 section 5.4).
        """
        expected = (
            b"\x01\x02He"  # FIN 0, text
            b"\x00\x02ll"  # FIN 0, continuation
            b"\x80\x01o"  # FIN 1, continuation
        )
        assert makeConnection().frameText("Hello", frameSize=2) == expected
        assert makeConnection().frameBinary(b"abc", frameSize=2) == (
            b"\x02\x02ab\x80\x01c"  # binary FIN 0, continuation FIN 1
        )

    def test_sendPing(self) -> None:
        """
        A ping with a payload of up to 125 bytes.
        """
        connection = makeConnection()
        # 0x89: FIN, ping.
        assert connection.framePing() == b"\x89\x00"
        assert connection.framePing(b"x" * 125) == b"\x89\x7d" + b"x" * 125

    def test_sendPingTooLong(self) -> None:
        """
        A ping payload over 125 bytes is a C{ValueError} (RFC 6455 5.5).
        """
        with pytest.raises(ValueError, match="125"):
            makeConnection().framePing(b"x" * 126)

    def test_sendPong(self) -> None:
        """
        A pong echoes the ping's payload (RFC 6455 section 5.5.3).
        """
        # 0x8a: FIN, pong; 0x05: length 5.
        assert makeConnection().framePong(b"Hello") == b"\x8a\x05Hello"

    def test_sendPongTooLong(self) -> None:
        """
        A pong payload over 125 bytes is a C{ValueError}.
        """
        with pytest.raises(ValueError, match="125"):
            makeConnection().framePong(b"x" * 126)


class TestLocalClose:
    """
    RFC 6455 sections 5.5.1 and 7.1.2: we close first.
    """

    def test_sendCloseEntersLocalClosing(self) -> None:
        """
        C{sendClose} in OPEN gives our close frame and LOCAL_CLOSING.
        """
        connection = makeConnection()
        assert connection.frameClose(1000) == CLOSE_1000
        assert connection.state is S.LOCAL_CLOSING

    def test_peerCloseCompletes(self) -> None:
        """
        The peer's close in LOCAL_CLOSING completes the handshake: CLOSED,
        with the peer's code and reason.
        """
        connection = makeConnection()
        connection.frameClose(1001, "bye")
        events = connection.receiveData(clientClose(1000, b"ok"))
        assert events == [CloseReceived(1000, "ok")]
        assert connection.state is S.CLOSED
        assert (connection.closeCode, connection.closeReason) == (1000, "ok")

    def test_messagesStillReceived(self) -> None:
        """
        Messages the peer sent before its close are still delivered in
        LOCAL_CLOSING.
        """
        connection = inState(S.LOCAL_CLOSING)
        events = connection.receiveData(clientFrame(TEXT, b"late"))
        assert events == [TextMessage("late")]
        assert connection.state is S.LOCAL_CLOSING

    def test_failureWhileLocalClosing(self) -> None:
        """
        A failure in LOCAL_CLOSING goes straight to CLOSED: our close frame
        is already sent, so nothing more is owed.
        """
        connection = inState(S.LOCAL_CLOSING)
        events = connection.receiveData(clientFrame(CONT, b"x"))
        assert events == [ConnectionFailed(1002, events[0].reason)]  # type: ignore[union-attr]
        assert connection.state is S.CLOSED
        assert connection.closeCode == 1002
        assert connection.frameClose(1002) == b""

    def test_sendCloseWithReason(self) -> None:
        """
        Our close frame carries code and UTF-8 reason.
        """
        # 0x88: FIN, close; 0x05: length 5; 03 e9 = 1001; "bye".
        assert makeConnection().frameClose(1001, "bye") == b"\x88\x05\x03\xe9bye"

    def test_sendCloseOnce(self) -> None:
        """
        A second C{sendClose} gives nothing and changes nothing.
        """
        connection = makeConnection()
        assert connection.frameClose(1000) == CLOSE_1000
        assert connection.frameClose(1001, "again") == b""
        assert connection.state is S.LOCAL_CLOSING

    def test_sendCloseNoStatus(self) -> None:
        """
        C{sendClose(None)} sends a close frame with no payload.
        """
        connection = makeConnection()
        # 0x88: FIN, close; 0x00: length 0.
        assert connection.frameClose(None) == b"\x88\x00"
        assert connection.state is S.LOCAL_CLOSING


class TestRemoteClose:
    """
    RFC 6455 sections 5.5.1 and 7.1.3: the peer closes first and we answer.
    """

    def test_peerCloseEntersRemoteClosing(self) -> None:
        """
        The peer's close in OPEN gives REMOTE_CLOSING and records its code.
        """
        connection = makeConnection()
        events = connection.receiveData(clientClose(1001, b"gone"))
        assert events == [CloseReceived(1001, "gone")]
        assert connection.state is S.REMOTE_CLOSING
        assert (connection.closeCode, connection.closeReason) == (1001, "gone")

    def test_replyCloses(self) -> None:
        """
        Our reply in REMOTE_CLOSING echoes the code and completes: CLOSED.
        """
        connection = inState(S.REMOTE_CLOSING)
        # 0x88 0x02; 03 e9 = 1001.
        assert connection.frameClose(1001) == b"\x88\x02\x03\xe9"
        assert connection.state is S.CLOSED

    def test_echoCloseWithoutStatus(self) -> None:
        """
        A peer close without status is reported as 1005, and echoing 1005
        (or L{None}) sends an empty close payload: 1005 never travels.
        """
        for code in (1005, None):
            connection = makeConnection()
            assert connection.receiveData(clientClose(None)) == [
                CloseReceived(1005, "")
            ]
            assert connection.closeCode == 1005
            # 0x88: FIN, close; 0x00: no payload.
            assert connection.frameClose(code) == b"\x88\x00"
            assert connection.state is S.CLOSED

    def test_sendsAllowedInRemoteClosing(self) -> None:
        """
        Until we answer, we may finish sending messages and pings.
        """
        connection = inState(S.REMOTE_CLOSING)
        assert connection.frameText("last") == b"\x81\x04last"
        assert connection.frameBinary(b"b") == b"\x82\x01b"
        assert connection.framePing(b"") == b"\x89\x00"
        assert connection.framePong(b"") == b"\x8a\x00"

    def test_inputAfterPeerCloseIgnored(self) -> None:
        """
        Bytes after the peer's close give no events and keep the state.
        """
        connection = inState(S.REMOTE_CLOSING)
        assert connection.receiveData(clientFrame(TEXT, b"more")) == []
        assert connection.receiveData(b"\x00\x00") == []
        assert connection.state is S.REMOTE_CLOSING


class TestFail:
    """
    RFC 6455 section 7.1.7: failing the connection.
    """

    def test_failureEntersFailing(self) -> None:
        """
        A protocol error gives FAILING, with the failure's code recorded.
        """
        connection = makeConnection()
        events = connection.receiveData(clientFrame(TEXT, b"x", mask=None))
        assert len(events) == 1
        assert isinstance(events[0], ConnectionFailed)
        assert events[0].code == 1002
        assert connection.state is S.FAILING
        assert (connection.closeCode, connection.closeReason) == (
            1002,
            events[0].reason,
        )

    @pytest.mark.parametrize(
        ("data", "code", "frame"),
        [
            # Unmasked: 1002 -> 88 02 03 ea.
            (clientFrame(TEXT, b"x", mask=None), 1002, b"\x88\x02\x03\xea"),
            # Invalid UTF-8: 1007 -> 88 02 03 ef.
            (clientFrame(TEXT, b"\xff"), 1007, b"\x88\x02\x03\xef"),
            # Over maxFrameSize: 1009 -> 88 02 03 f1.
            (clientFrame(BINARY, bytes(70000)), 1009, b"\x88\x02\x03\xf1"),
        ],
    )
    def test_closeWithFailureCode(self, data: bytes, code: int, frame: bytes) -> None:
        """
        In FAILING, our close frame carries the failure's code and the
        connection becomes CLOSED.
        """
        connection = makeConnection()
        connection.receiveData(data)
        assert connection.closeCode == code
        assert connection.frameClose(code) == frame
        assert connection.state is S.CLOSED

    def test_sendsAllowedWhileFailing(self) -> None:
        """
        In FAILING our close frame is owed but not sent: what the owner sends
        for the events before the failure still goes out ahead of it.
        """
        connection = inState(S.FAILING)
        assert connection.frameText("reply") == b"\x81\x05reply"
        assert connection.frameBinary(b"b") == b"\x82\x01b"
        assert connection.framePing(b"") == b"\x89\x00"
        assert connection.framePong(b"p") == b"\x8a\x01p"
        assert connection.state is S.FAILING

    def test_inputAfterFailureIgnored(self) -> None:
        """
        After a failure, received bytes give no events, even a close.
        """
        connection = inState(S.FAILING)
        assert connection.receiveData(clientClose(1000)) == []
        assert connection.state is S.FAILING

    def test_eventsBeforeFailureKept(self) -> None:
        """
        Events completed before the failure, in the same bytes, are returned
        first.
        """
        connection = makeConnection()
        data = clientFrame(TEXT, b"ok") + clientFrame(3, b"")
        events = connection.receiveData(data)
        assert events[0] == TextMessage("ok")
        assert isinstance(events[1], ConnectionFailed)
        assert connection.state is S.FAILING


class TestWritesAfterClose:
    """
    Once our close frame is sent, no data frame may follow it (RFC 6455
    section 5.5.1).
    """

    @pytest.mark.parametrize("state", [S.LOCAL_CLOSING, S.CLOSED])
    def test_sendRaises(self, state: ConnectionState) -> None:
        """
        C{sendText}, C{sendBinary} and C{sendPing} raise L{ConnectionClosed}.
        """
        connection = inState(state)
        with pytest.raises(ConnectionClosed):
            connection.frameText("x")
        with pytest.raises(ConnectionClosed):
            connection.frameBinary(b"x")
        with pytest.raises(ConnectionClosed):
            connection.framePing(b"x")
        assert connection.state is state

    @pytest.mark.parametrize("state", [S.LOCAL_CLOSING, S.CLOSED])
    def test_pongIsDropped(self, state: ConnectionState) -> None:
        """
        A pong owed for a late ping is silently dropped: nothing to write.
        """
        assert inState(state).framePong(b"x") == b""

    def test_sendCloseInClosed(self) -> None:
        """
        C{sendClose} in CLOSED gives nothing and stays CLOSED.
        """
        connection = inState(S.CLOSED)
        assert connection.frameClose(1000) == b""
        assert connection.state is S.CLOSED

    def test_receiveInClosed(self) -> None:
        """
        Bytes received in CLOSED give no events.
        """
        assert inState(S.CLOSED).receiveData(clientFrame(TEXT, b"x")) == []


class TestSendCloseChecks:
    """
    RFC 6455 section 7.4: only codes valid on the wire may be sent; CLWS
    limits the reason to 122 bytes.
    """

    @pytest.mark.parametrize("code", [0, 999, 1004, 1006, 1012, 1015, 2999, 5000])
    def test_invalidCode(self, code: int) -> None:
        """
        An invalid code is a C{ValueError}; the state does not change and a
        valid close may still be sent.
        """
        connection = makeConnection()
        with pytest.raises(ValueError, match=str(code)):
            connection.frameClose(code)
        assert connection.state is S.OPEN
        assert connection.frameClose(1000) == CLOSE_1000

    @pytest.mark.parametrize("reason", ["a" * 123, "\u00e9" * 62])
    def test_reasonTooLong(self, reason: str) -> None:
        """
        A reason over 122 bytes of UTF-8 is a C{ValueError}; the state does
        not change.
        """
        connection = makeConnection()
        with pytest.raises(ValueError, match="reason"):
            connection.frameClose(1000, reason)
        assert connection.state is S.OPEN

    def test_reasonAtLimit(self) -> None:
        """
        A 122-byte reason makes a 124-byte close payload.
        """
        frame = makeConnection().frameClose(4000, "r" * 122)
        # 0x88: FIN, close; 0x7c: length 124; 0f a0 = 4000.
        assert frame == b"\x88\x7c\x0f\xa0" + b"r" * 122

    def test_invalidCodeInRemoteClosing(self) -> None:
        """
        The reply's code is checked too.
        """
        connection = inState(S.REMOTE_CLOSING)
        with pytest.raises(ValueError):
            connection.frameClose(1006)
        assert connection.state is S.REMOTE_CLOSING


@pytest.mark.parametrize(
    ("state", "maySend", "mayBroadcast"),
    [
        (S.OPEN, True, True),
        (S.REMOTE_CLOSING, True, True),
        (S.FAILING, True, False),
        (S.LOCAL_CLOSING, False, False),
        (S.CLOSED, False, False),
    ],
)
def test_maySendMayBroadcast(
    state: ConnectionState, maySend: bool, mayBroadcast: bool
) -> None:
    """
    The one rule for sending, owned by the connection: answers (direct
    writes) may go out until our close frame is sent, FAILING included (the
    events before the failure are answered first); unsolicited messages
    (broadcasts, keepalive pings) not to a peer that is FAILING.
    """
    connection = inState(state)
    assert connection.mayBroadcast is mayBroadcast
    frames: dict[object, bytes | None] = {}
    framed = connection.broadcastFrame(0x1, b"hi", None, frames)
    assert framed == (b"\x81\x02hi" if mayBroadcast else None)
    if maySend:
        assert connection.frameText("hi") == b"\x81\x02hi"
    else:
        with pytest.raises(ConnectionClosed):
            connection.frameText("hi")
