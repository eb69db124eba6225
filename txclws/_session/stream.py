# -*- test-case-name: tests.test_stream,tests.test_closing -*-
"""
The byte stream under a session: L{IByteStream}, and L{TransportStream},
which adapts a Twisted stream transport (TCP, TLS, UNIX) to it.

A session (L{txclws._session.session.WebSocketSession}) knows nothing else of
the transport it runs on: an HTTP/2 stream or a client connection can be put
under it by providing this interface.
"""

from __future__ import annotations

import socket
from typing import Any, cast

from twisted.internet.interfaces import (
    IConsumer,
    IPushProducer,
    ISSLTransport,
    ITransport,
)
from zope.interface import Attribute, Interface, implementer

__all__ = [
    "IBufferedTransport",
    "IByteStream",
    "TransportStream",
    "bufferedBytes",
    "socketPeerGone",
]

#: Linux's TCP states (C{include/net/tcp_states.h}) in which the peer has
#: left: its RST was received (C{TCP_CLOSE}), or its FIN (C{TCP_CLOSE_WAIT},
#: and C{TCP_LAST_ACK} once ours followed).
_TCP_CLOSE = 7
_TCP_CLOSE_WAIT = 8
_TCP_LAST_ACK = 9
_PEER_LEFT = frozenset({_TCP_CLOSE, _TCP_CLOSE_WAIT, _TCP_LAST_ACK})


class IByteStream(Interface):
    """
    A reliable, ordered, bidirectional byte stream with flow control.
    """

    host = Attribute(
        "The peer's address as a str: an IP address, or a UNIX socket's "
        "path ('' when it has none)."
    )
    port = Attribute("The peer's port, or 0 when the stream has none.")
    isTLS = Attribute("Whether the stream is encrypted with TLS.")
    sink = Attribute(
        "What writes to the stream: an object with write(data: bytes).  For "
        "a Twisted transport, the transport itself, so that the hot path "
        "writes without a call of ours."
    )

    def pauseReading() -> None:
        """
        Stop delivering the peer's bytes until L{resumeReading}.
        """

    def resumeReading() -> None:
        """
        Deliver the peer's bytes again.
        """

    def bufferedAmount() -> int:
        """
        Bytes written and not yet handed to the network.
        """

    def watchWrites(producer: IPushProducer) -> None:
        """
        Tell C{producer} when the write buffer fills (C{pauseProducing})
        and when it has emptied (C{resumeProducing}), until L{unwatchWrites}.
        """

    def unwatchWrites() -> None:
        """
        Stop watching the write buffer: needed before closing, since a
        stream with a watcher may wait for it instead of closing.
        """

    def loseConnection() -> None:
        """
        Close once everything written is sent.
        """

    def loseWriteConnection() -> bool:
        """
        Close the writing half once everything written is sent, and go on
        reading.  Over TLS, that is the TLS close (C{close_notify}, RFC 8446
        6.1), after which the peer's own C{close_notify} ends the stream.

        @return: False if the stream cannot half-close (it closed whole).
        """

    def peerGone() -> bool:
        """
        Whether the peer is known to have left (closed or reset its end),
        found without reading: while reading is paused its end cannot be
        read.  False when the stream cannot tell.
        """

    def abort() -> None:
        """
        Close at once, discarding what is unsent.
        """


class IBufferedTransport(Interface):
    """
    A transport that can tell how much written data it has not yet sent.

    Twisted publishes no such count: L{bufferedBytes} reads the private
    buffers of Twisted's own transports.  A transport of ours (the
    in-memory transport of L{txclws.testing}, and any other that buffers)
    provides this instead, and is asked first.

    @since: 0.2.0
    """

    def bufferedAmount() -> int:
        """
        @return: the bytes written to this transport and not yet handed on
            to the peer (or to the kernel), C{0} when its buffer is empty.
        """


def bufferedBytes(transport: Any) -> int:
    """
    Bytes written to C{transport} and not yet handed to the kernel.

    Reads the buffer of Twisted's C{FileDescriptor} (TCP, UNIX), through any
    protocol wrappers on the way (C{TLSMemoryBIOProtocol} keeps what it
    encrypted in the TCP transport below it, and cleartext written before
    the TLS handshake completes in C{_appSendBuffer}).  These attributes
    are private to Twisted but have kept their names since Twisted 8;
    a transport that has none of them counts as empty.  A transport that
    provides L{IBufferedTransport} is asked instead.
    """
    if IBufferedTransport.providedBy(transport):
        return int(transport.bufferedAmount())
    total = 0
    for _ in range(4):  # a transport wrapped a few times at most
        # Each object's own attributes only: a protocol wrapper (TLS, those
        # of twisted.protocols.policies) forwards the attributes it lacks
        # to the transport below, whose buffer would then count twice.
        attributes = getattr(transport, "__dict__", None)
        if attributes is None:
            break
        pending = attributes.get("_appSendBuffer")
        if pending:
            total += sum(map(len, pending))
        data = attributes.get("dataBuffer")
        if isinstance(data, bytes):
            total += len(data) - attributes.get("offset", 0)
        total += attributes.get("_tempDataLen", 0)
        transport = attributes.get("transport")
    return total


def peerOf(transport: ITransport) -> tuple[str, int]:
    """
    The peer's host and port: an IP address and port, or for a UNIX socket
    its path as a str (C{""} for an unnamed one) and 0.
    """
    peer = transport.getPeer()
    host = getattr(peer, "host", None)
    if host is None:
        name = getattr(peer, "name", None)
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        host = name or ""
    return str(host), int(getattr(peer, "port", 0) or 0)


@implementer(IByteStream)
class TransportStream:
    """
    An L{IByteStream} over a Twisted stream transport.

    @ivar sink: the transport itself: writing costs no call of ours on the
        hot path.
    """

    __slots__ = ("_transport", "_watching", "host", "isTLS", "port", "sink")

    def __init__(self, transport: ITransport) -> None:
        self._transport = transport
        self.sink = transport
        self.host, self.port = peerOf(transport)
        self.isTLS = ISSLTransport.providedBy(transport)
        self._watching = False

    def pauseReading(self) -> None:
        """
        See L{IByteStream.pauseReading}.
        """
        # ITransport leaves it out, but the stream transports served on (TCP,
        # TLS, UNIX) are push producers too.
        cast(IPushProducer, self._transport).pauseProducing()

    def resumeReading(self) -> None:
        """
        See L{IByteStream.resumeReading}; not once C{loseConnection} was
        called (say, for a close frame that was queued): a transport may
        refuse to resume then.
        """
        if not getattr(self._transport, "disconnecting", False):
            cast(IPushProducer, self._transport).resumeProducing()

    def bufferedAmount(self) -> int:
        """
        See L{IByteStream.bufferedAmount}.
        """
        return bufferedBytes(self._transport)

    def watchWrites(self, producer: IPushProducer) -> None:
        """
        Register C{producer} as the transport's streaming producer: Twisted's
        transports pause it past C{bufferSize} (64 KiB) and resume it once
        their buffer is empty.
        """
        self._watching = True
        cast(IConsumer, self._transport).registerProducer(producer, True)

    def unwatchWrites(self) -> None:
        """
        See L{IByteStream.unwatchWrites}: a transport with a producer
        registered does not close (TLS waits for it to unregister) or, if
        it paused that producer, resumes it instead of closing once its
        buffer is empty (TCP).
        """
        if self._watching:
            self._watching = False
            cast(IConsumer, self._transport).unregisterProducer()

    def loseConnection(self) -> None:
        """
        See L{IByteStream.loseConnection}.
        """
        self._transport.loseConnection()

    def loseWriteConnection(self) -> bool:
        """
        See L{IByteStream.loseWriteConnection}.  Over TLS, C{loseConnection}:
        Twisted's TLS wrapper sends C{close_notify}, reads on until the
        peer's, and only then closes TCP; the C{loseWriteConnection} it
        would forward to the TCP transport below shuts TCP's writing half
        with no C{close_notify}, which the peer sees as a truncation.
        """
        if self.isTLS:
            # Read on, to see the peer's close_notify: the TLS wrapper will
            # not resume reading once it is disconnecting.
            cast(IPushProducer, self._transport).resumeProducing()
            self._transport.loseConnection()
            return True
        halfClose = getattr(self._transport, "loseWriteConnection", None)
        if halfClose is None:
            self._transport.loseConnection()
            return False
        halfClose()
        return True

    def abort(self) -> None:
        """
        See L{IByteStream.abort}; a transport that cannot abort is closed.
        """
        abortTransport(self._transport)

    def peerGone(self) -> bool:
        """
        See L{IByteStream.peerGone}: asks the socket under the transport
        (through a TLS wrapper), see L{socketPeerGone}.
        """
        sock = _socketUnder(self._transport)
        return sock is not None and socketPeerGone(sock)


def _socketUnder(transport: Any) -> socket.socket | None:
    """
    The socket of a Twisted stream transport, through the protocol
    wrappers over it (TLS: C{TLSMemoryBIOProtocol.getHandle} is its OpenSSL
    connection, and its C{transport} the TCP one), or C{None}.
    """
    for _ in range(4):  # a transport wrapped a few times at most
        # Each object's own attributes: a wrapper forwards what it lacks.
        attributes = getattr(transport, "__dict__", None)
        if attributes is None:
            return None
        handle = attributes.get("socket")
        if isinstance(handle, socket.socket):
            return handle
        transport = attributes.get("transport")
    return None


def socketPeerGone(sock: socket.socket) -> bool:
    """
    Whether the peer of the connected stream socket C{sock} has left, found
    without reading what it sent: for TCP on Linux, the connection's state
    (C{TCP_INFO}'s first byte, C{tcpi_state}) is C{CLOSE} after its RST and
    C{CLOSE_WAIT} after its FIN, even with unread data queued; elsewhere
    (UNIX sockets) a peek that finds the end of the stream or a reset, which
    it can only when nothing unread is queued.
    """
    tcpInfo = getattr(socket, "TCP_INFO", None)
    if tcpInfo is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            state = sock.getsockopt(socket.IPPROTO_TCP, tcpInfo, 1)
        except OSError:
            return False
        return bool(state) and state[0] in _PEER_LEFT
    try:
        peeked = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True  # ECONNRESET and the like: it is gone
    return peeked == b""


def abortTransport(transport: Any) -> None:
    """
    Drop C{transport} at once (C{abortConnection}), or close it if it
    cannot abort.
    """
    abort = getattr(transport, "abortConnection", None)
    if abort is not None:
        abort()
    else:
        transport.loseConnection()
