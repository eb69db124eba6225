# -*- test-case-name: tests.test_connection -*-
"""
Every rule of the connection's state machine (RFC 6455 section 7), in one
place as h11 keeps its own: the states, the transitions when the input
ends and when our close frame goes out, and which states may send.
L{txclws._core.connection.WebSocketConnection} applies them.
"""

from __future__ import annotations

from enum import Enum

from txclws._core.events import CloseReceived, ConnectionFailed

__all__ = [
    "AFTER_CLOSE_SENT",
    "AFTER_INPUT_ENDS",
    "CAN_SEND",
    "MAY_BROADCAST",
    "ConnectionState",
]


class ConnectionState(Enum):
    """
    Where a connection is in its life (RFC 6455 section 7).

    @cvar OPEN: messages flow both ways.
    @cvar LOCAL_CLOSING: we sent a close frame and await the peer's.
    @cvar REMOTE_CLOSING: the peer sent a close frame; we owe one back, and
        may first finish sending messages (RFC 6455 section 5.5.1).
    @cvar FAILING: the peer broke the protocol; we owe a close frame with
        the failure's code, may first finish sending, and discard the
        peer's bytes.
    @cvar CLOSED: both close frames are sent, or ours is sent after a
        failure: the owner closes the transport.
    """

    OPEN = "OPEN"
    LOCAL_CLOSING = "LOCAL_CLOSING"
    REMOTE_CLOSING = "REMOTE_CLOSING"
    FAILING = "FAILING"
    CLOSED = "CLOSED"


_S = ConnectionState

#: State after the peer's close frame, or a failure of the peer's, ends the
#: input, by the event and the state before.  Either event is the last the
#: reader ever gives, so no other state can meet it.
AFTER_INPUT_ENDS = {
    CloseReceived: {_S.OPEN: _S.REMOTE_CLOSING, _S.LOCAL_CLOSING: _S.CLOSED},
    ConnectionFailed: {_S.OPEN: _S.FAILING, _S.LOCAL_CLOSING: _S.CLOSED},
}

#: State after we send a close frame, by the state before.
AFTER_CLOSE_SENT = {
    _S.OPEN: _S.LOCAL_CLOSING,
    _S.REMOTE_CLOSING: _S.CLOSED,
    _S.FAILING: _S.CLOSED,
}


#: States in which we may still send data frames and pings.  In
#: REMOTE_CLOSING and FAILING our close frame is owed but not sent yet: the
#: owner handles the events that came before the close or the failure
#: first, and whatever it sends for them goes out ahead of our close frame.
CAN_SEND = (_S.OPEN, _S.REMOTE_CLOSING, _S.FAILING)

#: States in which we may send what the peer did not ask for (a broadcast,
#: a keepalive ping): L{CAN_SEND} but FAILING.  A peer that broke the
#: protocol is owed answers to the events it sent before the failure, and
#: then our close frame; nothing unsolicited (RFC 6455 7.1.7: fail it, do
#: not go on talking).  A peer in REMOTE_CLOSING closed cleanly and still
#: reads until our close frame goes out (RFC 6455 5.5.1).
#: Tuples, not sets: membership in a tuple compares by identity first, while
#: a set hashes the member, and an Enum's hash is Python code (a broadcast to
#: 1,000 clients paid 1,000 calls of it).
MAY_BROADCAST = (_S.OPEN, _S.REMOTE_CLOSING)
