# -*- test-case-name: tests.test_closing,tests.test_closeburst,tests.test_close -*-
"""
The close handshake of a session (RFC 6455 sections 5.5.1 and 7), and its
timer.

Every way a session ends goes through here: our close (L{_sendClose}), the
peer's (L{_closeReceived}), a failure of the peer's (L{_failed}), and the
close timeout or a drop (L{_abort}).

Every closing path arms the one session timer (L{_armCloseTimer}) before it
closes the stream or its writing half, whichever side started the close:
C{closeTimeout} after the close began, and one more reactor turn for I/O
(L{_startCloseTimer}), a connection that is still there is aborted, and
its stream's real end (C{streamLost}, see
L{txclws._session.session.WebSocketSession.streamLost}) cancels the
timer.  A close waits for the write buffer to drain, and a peer that does
not read would otherwise hold its connection, and its slot, for ever.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from twisted.logger import Logger

from txclws._core.close import echoCloseCode
from txclws._core.connection import ConnectionState
from txclws._core.events import CloseReceived, ConnectionFailed
from txclws._session.base import SessionBase

__all__ = ["ClosingSession"]

_log = Logger()


class ClosingSession(SessionBase):
    """
    The close handshake, over the declared session state.
    """

    def _closeReceived(self, event: CloseReceived) -> None:
        connection = self._connection
        assert connection is not None and self._stream is not None
        # Echo the peer's code (RFC 6455 5.5.1); a no-op if ours was sent.
        self._sink.write(connection.frameClose(echoCloseCode(event.code)))
        self._inputOpen = False
        self._closeHandshakeDone()

    def _failed(self, event: ConnectionFailed) -> None:
        connection = self._connection
        assert connection is not None
        _log.info(
            "failed {peer}: {code} {reason}",
            peer=self._peer(),
            code=event.code,
            reason=event.reason,
        )
        self._sink.write(connection.frameClose(event.code, event.reason))
        self._inputOpen = False
        self._closeWhenPeerDoes()

    def _sendClose(self, code: int | None, reason: str) -> None:
        if self._lost:
            # E.g. a REJECT fired after the client left: nothing to close,
            # and a close timer would only keep a dead connection alive.
            return
        connection = self._connection
        assert connection is not None and self._stream is not None
        self._writeOurClose(connection.frameClose(code, reason))

    def closeForRestart(self) -> None:
        """
        Start the close handshake with 1012 "service restart" (1001 to
        hybi-07/08, the closing frame to hixie-76): what a draining server
        (L{txclws.WebSocketFactory.drain}) sends each client, a code that
        C{close()} does not send.  Nothing once the session is closing or
        gone.

        @since: 0.2.0
        """
        connection = self._connection
        if connection is None or self._lost:
            return
        self._writeOurClose(connection.frameServiceRestart())

    def _writeOurClose(self, data: bytes) -> None:
        """
        Write our close frame C{data} (nothing if ours went already), then
        close the stream if the peer's came first, else wait for it.
        """
        connection = self._connection
        assert connection is not None
        if not data:
            return
        self._sink.write(data)
        if connection.state is ConnectionState.CLOSED:
            self._inputOpen = False
            self._closeHandshakeDone()
        else:
            self._armCloseTimer()

    def _loseStream(self) -> None:
        """
        Close the stream once what was written is sent, and abort it if
        that has not happened within C{closeTimeout} of the close's start.
        """
        assert self._stream is not None
        # Armed first: the stream's end, which cancels it, may come within.
        self._armCloseTimer()
        self._unwatchWrites()
        self._stream.loseConnection()

    def _armCloseTimer(self) -> None:
        """
        Start the close timer, unless it runs already: C{closeTimeout}
        (plus one reactor turn, see L{_startCloseTimer}) bounds the whole
        close, from the first frame of it.
        """
        if self._timer is None and not self._lost:
            self._startCloseTimer(self._closeTimedOut)

    def _startCloseTimer(self, action: Callable[[], None]) -> None:
        """
        Make the session's one timer C{closeTimeout}, then one more reactor
        turn for I/O, then C{action} (an abort), unless the stream's end
        cancels it first.

        What the close wrote is queued in the transport and goes out on a
        later turn, once the poller says the socket is writable.  Twisted's
        reactor runs expired timers before it polls, so after a turn longer
        than C{closeTimeout} (say, thousands of close frames read at once)
        the timers armed early in it would expire before their replies had
        a chance to leave, and abort peers that read.  The timer bounds a
        peer that does not read, not the server's own slowness: on expiry it
        waits one turn (C{callLater(0)} from a timer runs after the next
        poll), in which the queued writes go out and a drained close ends.
        """
        self._startTimer(self.owner.closeTimeout, partial(self._lastTurn, action))

    def _lastTurn(self, action: Callable[[], None]) -> None:
        """
        C{closeTimeout} is over: C{action} after one more reactor turn.
        """
        self._startTimer(0, action)

    def _closeHandshakeDone(self) -> None:
        """
        Both close frames are sent: close the stream.  RFC 6455 7.1.1: the
        server closes the TCP connection first; a client's session
        (L{txclws._client.protocol.WebSocketClientProtocol}) waits for it
        instead.
        """
        self._loseStream()

    def _closeWhenPeerDoes(self) -> None:
        """
        After failing the connection: stop writing, let the peer read our
        close frame and close its side, and drop it if it does not.

        Closing at once could reset the connection while the peer's bytes
        are still arriving, and a reset can destroy our close frame before
        the peer reads it.
        """
        assert self._stream is not None
        self._armCloseTimer()
        self._unwatchWrites()
        if self._stream.loseWriteConnection():
            # Read on (and discard), whatever our writes did, to see its EOF.
            self._updateReading()

    def _unwatchWrites(self) -> None:
        """
        Stop watching the write buffer before closing the stream or its
        writing half (see L{IByteStream.unwatchWrites}).
        """
        if self._watchingWrites:
            assert self._stream is not None
            self._watchingWrites = False
            self._pausedForWrites = False
            self._stream.unwatchWrites()

    def _closeTimedOut(self) -> None:
        self._timer = None
        _log.info(
            "dropped {peer}: close handshake timed out",
            peer=self._peer(),
            cause="close-timeout",
        )
        self._abort()

    def _abort(self) -> None:
        """
        Drop the connection at once.
        """
        self._inputOpen = False
        if self._stream is not None:
            self._stream.abort()
