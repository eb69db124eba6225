# -*- test-case-name: tests.test_protocol,tests.test_client_api -*-
"""
L{WebSocketSession}: one WebSocket client over any L{IByteStream}, as its
resource sees it (L{IWebSocketClient}).

A transport (the TCP/TLS/UNIX front door, a C{twisted.web} takeover, later
an HTTP/2 stream) accepts the handshake through L{txclws._core.accept}, then
calls L{WebSocketSession.openSession} with the stream and the accepted
connection, and hands it the peer's bytes (L{receiveData}) and the stream's
end (L{streamLost}).

A client that leaves is noticed whatever its resource does (issue 11):
while a callback is pending the session reads on and queues events up to
the owner's C{maxQueuedBytes} (see L{txclws._session.dispatch}), so the
stream's end arrives at once; a session paused past that bound, or for a
full write buffer, asks its stream at each keepalive sweep whether the peer
is gone (L{IByteStream.peerGone}) and drops it if so.  Every close is
bounded by C{closeTimeout} (L{txclws._session.closing}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from txclws._core.arguments import (
    checkBinaryMessage,
    checkCloseArguments,
    checkFrameSize,
    checkPingPayload,
    checkTextMessage,
)
from txclws._core.connection import PLAIN_FRAMES, WebSocketConnection
from txclws._core.errors import ConnectionClosed
from txclws._core.frames import CloseCode, Opcode, frameHeader
from txclws._resource import IStreamingClient, IWebSocketClient
from txclws._session.base import SessionOwner
from txclws._session.dispatch import KEEPALIVE_PAYLOAD
from txclws._session.keepalive import (
    IKeepaliveClient,
    Keepalive,
    KeepalivePolicy,
    keepaliveDecision,
)
from txclws._session.writeflow import WriteFlowSession

if TYPE_CHECKING:
    from txclws._core.accept import Accepted
    from txclws._core.handshake import ClientHandshake
    from txclws._resource import IWebSocketResource
    from txclws._session.stream import IByteStream

__all__ = ["IFramedWriter", "WebSocketSession"]

_log = Logger()

#: A binary message at least this long is written apart from its header
#: where it can be (L{writeApart}).
LARGE_WRITE = 65536


def writeApart(
    sink: object, connection: WebSocketConnection, payload: bytes | memoryview
) -> bool:
    """
    Write a large binary message as one frame (RFC 6455 5.2) given as two
    pieces, its header and its payload as it is, to a sink that takes a
    sequence (a Twisted transport's C{writeSequence}), which joins them
    once: C{header + payload}, joined again with whatever the transport
    still holds unsent, would copy the payload twice.

    @return: whether it was written; if not (a sink without
        C{writeSequence}, a masked or compressed frame, a payload that is
        not C{bytes}, a close sent already) the caller frames it whole.
    """
    writeSequence = getattr(sink, "writeSequence", None)
    if (
        writeSequence is None
        or connection.wireKey != PLAIN_FRAMES
        or type(payload) is not bytes
        or not connection.canSend
    ):
        return False
    writeSequence((frameHeader(0x80 | Opcode.BINARY, len(payload)), payload))
    return True


class IFramedWriter(Interface):
    """
    A client that takes a broadcast message framed once per wire form (the
    fast path of L{txclws.writeToClientsText}); any other
    L{IWebSocketClient} is sent it through C{writeText}/C{writeBinary}.
    """

    def writeFramed(
        opcode: int,
        payload: bytes,
        frameSize: int | None,
        frames: dict[object, bytes | None],
    ) -> bool:
        """
        Write a broadcast message, reusing or adding to C{frames} (framed
        bytes by L{txclws._core.connection.WebSocketConnection.wireKey}).

        @return: whether the client got it: false when it is closing or
            gone, its protocol cannot carry it, or the slow-client policy
            refused it.
        """


@implementer(
    IWebSocketClient, IStreamingClient, IFramedWriter, IKeepaliveClient, IPushProducer
)
class WebSocketSession(WriteFlowSession):
    """
    One open WebSocket client over an L{IByteStream}.

    @ivar _disconnectWaiters: the Deferreds of L{whenDisconnected}, made on
        first need (most clients have one waiter, a hub, or none).
    @ivar _disconnectNotified: L{whenDisconnected}'s Deferreds have fired:
        the client is gone for good.
    """

    _disconnectWaiters: list[Deferred[None]] | None = None
    _disconnectNotified = False

    # -- opening and ending ------------------------------------------------

    def describeRequest(self, handshake: ClientHandshake) -> None:
        """
        Take the client's identity from its request, before acceptance asks
        the resource for a subprotocol (the resource may look at it).
        """
        request = handshake.request
        self.resourceName = request.path
        self.queryString = request.query
        self.websocketVersion = handshake.version
        self.connectionHeaders = request.headers

    def openSession(
        self,
        owner: SessionOwner,
        stream: IByteStream,
        accepted: Accepted[IWebSocketResource],
    ) -> None:
        """
        Start serving: write the 101, register with C{owner}, call
        C{clientConnected}, and feed whatever followed the handshake.
        """
        self.owner = owner
        self._stream = stream
        self._sink = stream.sink
        self._seconds = owner.reactor.seconds
        self.host, self.port = stream.host, stream.port
        connection = self._connection = accepted.connection
        self.websocketVersion = connection.version
        self.subprotocol = accepted.subprotocol
        self._resource = resource = accepted.resource
        # An instance attribute, not the class's default: the write paths
        # test it, and Python 3.11 specialises only an instance's own
        # attributes (a class default cost a broadcast ~300 instructions
        # per delivery).
        self._outgoing = None
        self._startStreaming(resource)
        self._inputOpen = True
        self._lastReceived = self._lastActive = self._seconds()
        owner.clientOpened(self)
        # The stream tells us when its write buffer fills and empties.
        stream.watchWrites(self)
        self._watchingWrites = True
        self._sink.write(accepted.response)
        self._openedAt = self._seconds()
        _log.info(
            "open {peer} {resource} version={version}",
            peer=self._peer(),
            resource=self.resourceName,
            version=self.websocketVersion,
        )
        metrics = getattr(owner, "metrics", None)
        if metrics is not None:  # issue 17: only metered sessions count
            # Set only when on: one more instance attribute would push the
            # session's past CPython's shared-key limit, and slow every
            # attribute read of an unmetered session (about 4% on echo32).
            self._metrics = metrics
            metrics.meter(self, accepted)
        limit = getattr(resource, "rateLimit", None) or getattr(
            owner, "rateLimit", None
        )
        if limit is not None:  # issue 17: only limited sessions count
            from txclws._ratelimit import limitSession

            limitSession(self, limit, owner.reactor)
        self._call(resource.clientConnected, self._connected, self)
        if accepted.leftover:
            self._receive(accepted.leftover)

    def receiveData(self, data: bytes) -> None:
        """
        The peer's next bytes.
        """
        if self._inputOpen:
            self._receive(data)

    def streamLost(self) -> None:
        """
        The stream is gone: forget the client, and tell its resource once
        its last callback is done.
        """
        self._lost = True
        self._inputOpen = False
        self._cancelTimer()
        self._cancelSlowTimer()
        self._queue = None
        if self._outgoing is not None:
            self._outgoing.stop(ConnectionClosed("connection lost"))
        if self._drainWaiters is not None:
            self._drainWaiters.fail(Failure(ConnectionClosed("connection lost")))
        if self._stream is not None:
            self.owner.clientClosed(self)
        if not self._busy:
            self._notifyDisconnected()

    def abort(self) -> None:
        """
        Drop the connection at once, without a close handshake (what a
        server does to clients left when it stops).
        """
        self._abort()

    # -- IWebSocketClient ------------------------------------------------

    def writeText(self, message: str | bytes, frameSize: int | None = None) -> None:
        """
        Send a text message.  See L{IWebSocketClient.writeText}.
        """
        # The arguments first, then the client's state: the same misuse
        # raises the same error on every client kind, open or closed.  A
        # str that encodes is checked by encoding it, inline: the common
        # case skips two calls (about 2,000 instructions per echo).
        if type(message) is str:
            try:
                payload = message.encode("utf-8")
            except UnicodeEncodeError:
                payload = checkTextMessage(message)
        else:
            payload = checkTextMessage(message)
        if frameSize is not None:
            frameSize = checkFrameSize(frameSize)
        connection = self._connection
        if connection is None or self._lost:
            raise ConnectionClosed("the client is not connected")
        if self._outgoing is not None:
            self._queueBehindStream(connection, Opcode.TEXT, payload, frameSize)
            return
        self._sink.write(connection.frameUtf8(payload, frameSize))

    def writeBinary(self, data: bytes, frameSize: int | None = None) -> None:
        """
        Send a binary message.  See L{IWebSocketClient.writeBinary}.
        """
        payload = data if type(data) is bytes else checkBinaryMessage(data)
        size = None if frameSize is None else checkFrameSize(frameSize)
        connection = self._sendingConnection(Opcode.BINARY)
        if self._outgoing is not None:
            self._queueBehindStream(connection, Opcode.BINARY, payload, size)
            return
        if size is None and len(payload) >= LARGE_WRITE:
            if writeApart(self._sink, connection, payload):
                return
        self._sink.write(connection.frameBinary(payload, size))

    def ping(self, payload: bytes = b"") -> None:
        """
        Send a ping.  See L{IWebSocketClient.ping}.
        """
        data = checkPingPayload(payload)
        connection = self._sendingConnection(Opcode.PING)
        self._sink.write(connection.framePing(data))

    def close(self, code: int | None = 1000, reason: str = "") -> None:
        """
        Start the close handshake.  See L{IWebSocketClient.close}.
        """
        # hixie-76 (version 0) has no codes, but is held to RFC 6455's
        # rules, so a resource's error handling does not depend on its peer.
        checkCloseArguments(code, reason, self.websocketVersion)
        if self._connection is None or self._lost:
            return
        self._sendClose(code, reason)

    def whenDisconnected(self) -> Deferred[None]:
        """
        See L{IWebSocketClient.whenDisconnected}.
        """
        if self._disconnectNotified:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        if self._disconnectWaiters is None:
            self._disconnectWaiters = []
        self._disconnectWaiters.append(waiter)
        return waiter

    def _notifyDisconnected(self) -> None:
        """
        The client is gone and its last callback done: C{clientDisconnected}
        (if it was accepted), then whoever waits in L{whenDisconnected}.
        """
        super()._notifyDisconnected()
        if self._disconnectNotified:
            return
        self._disconnectNotified = True
        waiters, self._disconnectWaiters = self._disconnectWaiters, None
        for waiter in waiters or ():
            waiter.callback(None)

    # -- keepalive ---------------------------------------------------------

    def _peerGone(self) -> bool:
        """
        While reading is paused, its FIN or RST cannot reach us: ask the
        stream whether the peer has left, and if it has, drop it (its slot
        comes back now; C{clientDisconnected} follows its last callback).
        """
        assert self._stream is not None
        if not self._stream.peerGone():
            return False
        _log.info("dropped {peer}: gone while paused", peer=self._peer(), cause="gone")
        self._countDrop("gone")
        self._abort()
        return True

    def keepaliveCheck(self, now: float, policy: KeepalivePolicy) -> None:
        """
        See L{IKeepaliveClient.keepaliveCheck}: close this client if it has
        been idle too long, drop it if it did not answer a ping in time,
        ping it if it has been quiet.
        """
        connection = self._connection
        if not self._inputOpen or connection is None:
            return
        if (self._pausedForCallback or self._pausedForWrites) and self._peerGone():
            return
        if self._pausedForCallback:
            # We stopped reading (a callback is pending, the client's queued
            # events are over the bound): its silence is ours, and it is not
            # idle.
            self._lastReceived = self._lastActive = now
            self._pingSentAt = None
            return
        if self._pausedForWrites:
            # Reading is paused while our writes wait, so the client's
            # pongs wait too: the sign of life is our buffer shrinking.
            buffered = self.bufferedAmount
            if 0 <= buffered < self._bufferedAtTick:
                self._lastReceived = self._lastActive = now
                self._pingSentAt = None
            self._bufferedAtTick = buffered
        decision = keepaliveDecision(
            now,
            self._lastReceived,
            self._lastActive,
            self._pingSentAt,
            policy,
            connection.canPing and connection.mayBroadcast,
        )
        if decision is Keepalive.CLOSE_IDLE:
            _log.info("closing idle client {peer}", peer=self._peer(), cause="idle")
            self._countDrop("idle")
            self._sendClose(CloseCode.GOING_AWAY, "idle timeout")
        elif decision is Keepalive.DROP:
            _log.info(
                "dropped {peer}: no answer to ping",
                peer=self._peer(),
                cause="keepalive",
            )
            self._countDrop("keepalive")
            self._abort()
        elif decision is Keepalive.PING:
            self._pingSentAt = now
            self._sink.write(connection.framePing(KEEPALIVE_PAYLOAD))
