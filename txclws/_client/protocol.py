# -*- test-case-name: tests.test_client -*-
"""
L{WebSocketClientProtocol}: one client connection over TCP or TLS, from the
C{CONNECT} through an HTTP proxy (if any) to the opening handshake, and
then the same L{WebSocketSession} a server runs per client, over a
L{TransportStream}, in the client role.

The client role differs from the server's in the core (masked frames out,
unmasked frames in: L{txclws._core.clientconnection}) and in one rule of
the session: after the close handshake the server closes the TCP
connection first (RFC 6455 7.1.1), so the client waits for it, for at most
C{closeTimeout}, rather than closing itself (L{_closeHandshakeDone}).
"""

from __future__ import annotations

from enum import Enum

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, ITLSTransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from txclws._client.owner import ClientOwner
from txclws._core.accept import Accepted
from txclws._core.clienthandshake import ClientOpening, Opened
from txclws._core.clientproxy import ProxyTunnel
from txclws._core.errors import HandshakeFailed
from txclws._core.request import RequestHeaders
from txclws._readsize import LARGE_READ, resizeReads
from txclws._resource import IWebSocketResource
from txclws._session.session import WebSocketSession
from txclws._session.stream import TransportStream, abortTransport, peerOf

__all__ = ["ClientState", "WebSocketClientProtocol"]

_log = Logger()


class ClientState(Enum):
    """
    Where a client connection is.

    @cvar TUNNELLING: the C{CONNECT} is sent to the proxy; reading its
        answer.
    @cvar HANDSHAKING: the opening handshake is sent; reading the answer.
    @cvar OPEN: the session serves the connection; bytes go to it.
    @cvar DONE: the handshake failed or the connection is lost: input is
        ignored.
    """

    TUNNELLING = "TUNNELLING"
    HANDSHAKING = "HANDSHAKING"
    OPEN = "OPEN"
    DONE = "DONE"


_S = ClientState


class WebSocketClientProtocol(Protocol, WebSocketSession):
    """
    One WebSocket client connection; once open, also the
    L{txclws.IWebSocketClient} its resource is given and the result of
    L{txclws.connectWebSocket}.

    @ivar responseHeaders: the headers of the server's 101, once open (also
        as C{connectionHeaders}: the headers the peer sent).
    @ivar url: the URL connected to.
    """

    owner: ClientOwner
    responseHeaders: RequestHeaders = RequestHeaders(())
    _state = _S.HANDSHAKING
    #: The transport's own read size while we raised it for a large frame
    #: (L{txclws._readsize.resizeReads}), else 0.
    _defaultReadSize = 0

    def __init__(
        self,
        opening: ClientOpening,
        resource: IWebSocketResource,
        owner: ClientOwner,
        opened: Deferred[WebSocketClientProtocol],
        tunnel: ProxyTunnel | None = None,
        tunnelTLS: IOpenSSLClientConnectionCreator | None = None,
    ) -> None:
        """
        @param opening: the handshake to run.
        @param opened: fired with this protocol once open, or failed with
            L{HandshakeFailed}.
        @param tunnel: the C{CONNECT} to send first, through a proxy.
        @param tunnelTLS: the TLS to start inside the tunnel (C{wss://}
            through a proxy).
        """
        self.owner = owner
        self.url = opening.url
        self._opening = opening
        self._resource = resource
        self._opened: Deferred[WebSocketClientProtocol] | None = opened
        self._tunnel = tunnel
        self._tunnelTLS = tunnelTLS
        path, _, query = opening.url.resource.partition("?")
        self.resourceName = path
        self.queryString = query if "?" in opening.url.resource else None
        self.websocketVersion = 13

    def connectionMade(self) -> None:
        """
        Send the C{CONNECT} or the opening handshake.
        """
        assert self.transport is not None
        self.host, self.port = peerOf(self.transport)
        setNoDelay = getattr(self.transport, "setTcpNoDelay", None)
        if setNoDelay is not None:
            setNoDelay(True)
        if self._tunnel is not None:
            self._state = _S.TUNNELLING
            self.transport.write(self._tunnel.request())
        else:
            self._sendHandshake()

    def dataReceived(self, data: bytes) -> None:
        """
        Feed whichever reads now: the session, the handshake or the tunnel.
        """
        try:
            state = self._state
            if state is _S.OPEN:
                if self._inputOpen:
                    self._receive(data)
                    if self._defaultReadSize or len(data) >= LARGE_READ:
                        # Read the rest of a large frame at once, as the
                        # server's front door does.
                        self._defaultReadSize = resizeReads(
                            self.transport, self._connection, self._defaultReadSize
                        )
            elif state is _S.HANDSHAKING:
                self._receiveHandshake(data)
            elif state is _S.TUNNELLING:
                self._receiveTunnel(data)
        except HandshakeFailed as failure:
            self._failHandshake(failure)
        except Exception:
            self._serverError(Failure())

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Tell the session, or fail the handshake.
        """
        state, self._state = self._state, _S.DONE
        self._cancelTimer()
        if state is _S.OPEN:
            self.streamLost()
            return
        if self._opened is None:
            return
        try:
            if state is _S.HANDSHAKING:
                self._opening.receiveEOF()
            raise HandshakeFailed("the connection was lost during the handshake")
        except HandshakeFailed as failure:
            self._failHandshake(failure, drop=False)

    def handshakeTimedOut(self) -> None:
        """
        The handshake took longer than allowed: give up.
        """
        if self._state is not _S.OPEN and self._opened is not None:
            self._failHandshake(HandshakeFailed("the opening handshake timed out"))

    def abandonHandshake(self) -> None:
        """
        The attempt was cancelled: drop the connection, fire nothing.
        """
        if self._state is not _S.OPEN:
            self._opened = None
            self._state = _S.DONE
            if self.transport is not None:
                self._dropTransport()

    # -- before the session ----------------------------------------------

    def _receiveTunnel(self, data: bytes) -> None:
        assert self._tunnel is not None and self.transport is not None
        if self._tunnel.receiveData(data) is None:
            return
        # A server speaks only after our handshake: nothing followed.
        if self._tunnelTLS is not None:
            ITLSTransport(self.transport).startTLS(self._tunnelTLS)
        self._sendHandshake()

    def _sendHandshake(self) -> None:
        assert self.transport is not None
        self._state = _S.HANDSHAKING
        self.transport.write(self._opening.request())

    def _receiveHandshake(self, data: bytes) -> None:
        opened = self._opening.receiveData(data)
        if opened is not None:
            self._open(opened)

    def _open(self, opened: Opened) -> None:
        assert self.transport is not None and self._resource is not None
        self._state = _S.OPEN
        self.responseHeaders = self.connectionHeaders = opened.headers
        accepted = Accepted(
            b"", opened.connection, self._resource, opened.subprotocol, 13, b""
        )
        self.openSession(self.owner, TransportStream(self.transport), accepted)
        done, self._opened = self._opened, None
        if done is not None:
            done.callback(self)
        if opened.leftover:
            self.receiveData(opened.leftover)

    def _failHandshake(self, failure: HandshakeFailed, drop: bool = True) -> None:
        _log.info(
            "handshake with {url} failed: {failure}",
            url=self._opening.url.authority,
            failure=str(failure),
        )
        self._state = _S.DONE
        done, self._opened = self._opened, None
        if drop and self.transport is not None:
            self._dropTransport()
        if done is not None:
            done.errback(failure)

    def _dropTransport(self) -> None:
        assert self.transport is not None
        abortTransport(self.transport)

    # -- the session's client rule ---------------------------------------

    def _closeHandshakeDone(self) -> None:
        """
        Both close frames are sent: RFC 6455 7.1.1 has the server close the
        TCP connection first, so wait for it, for at most C{closeTimeout}
        (7.1.1: the client "MAY close the connection at any time after
        sending and receiving a Close message").
        """
        self._unwatchWrites()
        # The close timer bounds the whole close, from its first frame.
        self._armCloseTimer()

    def _abort(self) -> None:
        if self._state is _S.OPEN:
            super()._abort()
            return
        self._state = _S.DONE
        if self.transport is not None:
            self._dropTransport()

    def __repr__(self) -> str:
        where = self._opening.url.authority + self.resourceName
        return f"<WebSocketClientProtocol {where}>"
