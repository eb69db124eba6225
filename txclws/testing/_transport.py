# -*- test-case-name: tests.test_testing -*-
"""
The server's side of an in-memory connection: L{InMemoryTransport}, a
transport with the buffering and flow control of Twisted's TCP transport,
over L{SocketModel}, the socket between it and the client.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IHalfCloseableProtocol,
    IProducer,
    IProtocol,
    IPullProducer,
    IPushProducer,
    ITransport,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from txclws._session.stream import IBufferedTransport


class SocketModel:
    """
    The socket under an L{InMemoryTransport}: the bytes buffered each way,
    the client's side of it (its reads, sends, half-close and reset), and
    one turn of the reactor for the connection (L{_serve}).

    @ivar bufferSize: the high-water mark of the write buffer, in bytes.
    """

    bufferSize = 65536

    def __init__(
        self, protocol: IProtocol, hostAddress: IAddress, peerAddress: IAddress
    ) -> None:
        """
        @param protocol: the protocol to deliver the client's bytes to.
        @param hostAddress: what L{getHost} answers.
        @param peerAddress: what L{getPeer} answers.
        """
        self.protocol = protocol
        self.producer: IProducer | None = None
        self.streamingProducer = False
        self.reading = True
        self.connected = True
        self.disconnecting = False
        self.disconnected = False
        self._host = hostAddress
        self._peer = peerAddress
        self._outgoing = bytearray()
        self._incoming = bytearray()
        self._producerPaused = False
        #: Like FileDescriptor.startWriting: the buffer needs attention.
        self._writing = False
        self._writeClosing = False
        self._writeShut = False
        self._aborting = False
        self._peerEOF = False

    # -- ITransport, as the server sees it -----------------------------
    # -- the client's side ----------------------------------------------

    def _peerRead(self, size: int) -> bytes:
        """
        The client reads up to C{size} of the buffered bytes.
        """
        if size <= 0 or not self.connected or self._aborting:
            return b""
        data = bytes(self._outgoing[:size])
        del self._outgoing[:size]
        return data

    @property
    def _eofToPeer(self) -> bool:
        """
        Whether the client has read the end of the server's stream.
        """
        return self._writeShut and not self._outgoing

    def _peerSend(self, data: bytes) -> None:
        """
        The client sends C{data}: it waits until the server reads.
        """
        if self.connected and not self._peerEOF and not self.disconnecting:
            self._incoming += data

    def _peerShutdownWrite(self) -> None:
        """
        The client half-closes: the server reads the end of the stream
        after what came before it.
        """
        self._peerEOF = True

    def _peerReset(self) -> None:
        """
        The connection is reset by the client: lost at once, whether the
        server is reading or not.
        """
        if not self.disconnected:
            self._lose(ConnectionLost("the client vanished"))

    def _serve(self) -> bool:
        """
        One turn of the reactor for this connection, the client's reading
        apart: a drained buffer, an abort, bytes or an end of stream from
        the client.

        @return: whether anything happened.
        """
        if self.disconnected:
            return False
        if self._aborting:
            self._lose(ConnectionAborted("aborted by the server"))
        elif self._writing and not self._outgoing:
            self._writing = False
            self._bufferEmptied()
        elif self.reading and self._incoming:
            data = bytes(self._incoming)
            self._incoming.clear()
            self.protocol.dataReceived(data)
        elif self.reading and self._peerEOF:
            self._endOfStream()
        else:
            return False
        return True

    def _bufferEmptied(self) -> None:
        """
        What Twisted's C{FileDescriptor.doWrite} does once its buffer is
        empty: resume a paused producer, or else finish a pending close.
        """
        producer = self.producer
        if producer is not None and (
            not self.streamingProducer or self._producerPaused
        ):
            self._producerPaused = False
            # Push and pull producers alike are resumed when it drains.
            cast(IPushProducer, producer).resumeProducing()
        elif self.disconnecting:
            self._lose(ConnectionDone("the server closed the connection"))
        elif self._writeClosing and not self._writeShut:
            self._writeShut = True
            halfCloseable = IHalfCloseableProtocol(self.protocol, None)
            if halfCloseable is not None:
                halfCloseable.writeConnectionLost()

    def _endOfStream(self) -> None:
        """
        The server reads the client's end of stream: a half-closeable
        protocol is told so; any other loses the connection, as Twisted's
        TCP transport does.
        """
        self._peerEOF = False
        self.reading = False
        halfCloseable = IHalfCloseableProtocol(self.protocol, None)
        if halfCloseable is not None:
            halfCloseable.readConnectionLost()
        else:
            self._lose(ConnectionDone("the client closed the connection"))

    def _lose(self, reason: Exception) -> None:
        self.disconnected = True
        self.connected = False
        self.reading = False
        self._writing = False
        self._outgoing.clear()
        self._incoming.clear()
        producer, self.producer = self.producer, None
        if producer is not None:
            producer.stopProducing()
        self.protocol.connectionLost(Failure(reason))


@implementer(ITransport, IConsumer, IPushProducer, IBufferedTransport)
class InMemoryTransport(SocketModel):
    """
    The server's side of one in-memory connection: a transport that keeps
    what the server writes until the client reads it, with the flow control
    of Twisted's TCP transport (C{FileDescriptor}).

    Its producer, registered with C{registerProducer(producer, True)}, is
    paused whenever a write leaves more than L{bufferSize} bytes buffered,
    and resumed once the client has read them all.  C{loseConnection} waits
    for the buffer to drain (and, if the producer is paused then, resumes
    it instead, as Twisted does: unregister it first);
    C{loseWriteConnection} half-closes once it has drained;
    C{abortConnection} drops the connection, buffer and all.  The server's
    C{pauseProducing}/C{resumeProducing} stop and start reading: bytes the
    client sends meanwhile wait, in order, behind any end of stream.

    Like a reactor, it calls its protocol only from the client's side
    (L{InMemoryClient}'s reads, sends and steps), never from inside the
    protocol's own calls: a resumed read, a drained buffer or an abort
    takes effect at the client's next step.

    @ivar protocol: the protocol this transport delivers to.
    @ivar producer: the registered producer, or C{None}.
    @ivar streamingProducer: whether it is a push producer.
    @ivar reading: whether the server reads: False once it paused reading
        (C{pauseProducing}), or lost or is closing the connection.
    @ivar connected: whether the connection is up (also while closing).
    @ivar disconnecting: C{loseConnection} was called.
    @ivar disconnected: the connection is gone; the protocol was told.
    @ivar bufferSize: the high-water mark of the write buffer, in bytes.

    @since: 0.2.0
    """

    def write(self, data: bytes) -> None:
        """
        Buffer C{data} for the client; past L{bufferSize}, pause the
        streaming producer (every such write, as Twisted does).

        @raise TypeError: C{data} is not C{bytes}.
        """
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if not self.connected or self._writeShut or self._aborting or not data:
            return
        self._outgoing += data
        self._writing = True
        producer = self.producer
        if producer is not None and self.streamingProducer:
            if len(self._outgoing) > self.bufferSize:
                self._producerPaused = True
                cast(IPushProducer, producer).pauseProducing()

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """
        Write each of C{data}, in order.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close once the client has read everything buffered; stop reading.
        """
        if self.connected and not self.disconnecting:
            self.disconnecting = True
            self.reading = False
            self._writing = True

    def loseWriteConnection(self) -> None:
        """
        Half-close: once the buffer has drained, the client reads the end
        of the stream; reading goes on.
        """
        if self.connected:
            self._writeClosing = True
            self._writing = True

    def abortConnection(self) -> None:
        """
        Drop the connection now, discarding the buffer; the protocol gets
        C{connectionLost} with C{ConnectionAborted} at the client's next
        step, as Twisted's C{callLater(0, ...)} does.
        """
        if self.disconnected or self._aborting:
            return
        self._aborting = True
        self.reading = False
        self._writing = False
        self._outgoing.clear()

    def getPeer(self) -> IAddress:
        """
        The client's address.
        """
        return self._peer

    def getHost(self) -> IAddress:
        """
        The server's address.
        """
        return self._host

    def bufferedAmount(self) -> int:
        """
        Bytes written and not yet read by the client
        (L{IBufferedTransport}).
        """
        return len(self._outgoing)

    def value(self) -> bytes:
        """
        The bytes written and not yet read by the client, without reading
        them.
        """
        return bytes(self._outgoing)

    # -- IConsumer -------------------------------------------------------

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """
        Register C{producer} to be paused and resumed as the buffer fills
        and drains.

        @raise RuntimeError: another producer is registered.
        """
        if self.producer is not None:
            raise RuntimeError(f"{self.producer!r} was never unregistered")
        if self.disconnected:
            producer.stopProducing()
            return
        self.producer = producer
        self.streamingProducer = streaming
        if not streaming:
            cast(IPullProducer, producer).resumeProducing()

    def unregisterProducer(self) -> None:
        """
        Forget the producer; a pending C{loseConnection} may now complete.
        """
        self.producer = None
        self._producerPaused = False
        if self.connected and self.disconnecting:
            self._writing = True

    # -- IPushProducer: the server stops and starts reading ------------

    def pauseProducing(self) -> None:
        """
        Stop reading the client: what it sends waits.
        """
        self.reading = False

    def resumeProducing(self) -> None:
        """
        Read the client again, unless the connection is closing.
        """
        if self.connected and not self.disconnecting and not self._aborting:
            self.reading = True

    def stopProducing(self) -> None:
        """
        As Twisted's transports: close the connection.
        """
        self.loseConnection()
