# -*- test-case-name: tests.test_stdlibtls,tests.test_stdlibtls_reads -*-
"""
TLS on the standard library's C{ssl.SSLObject} over memory BIOs
(C{ssl.MemoryBIO}), as a Twisted protocol wrapper: L{StdlibTLSProtocol}
sits between a TCP transport and the application's protocol, which sees
it as its transport (C{ISSLTransport}, C{INegotiated}).

Why not Twisted's own C{TLSMemoryBIOProtocol}: it goes through pyOpenSSL,
copies each write before slicing it, reads each 16 KiB record back from
the BIO as a write to TCP of its own, and hands the application 32 KiB
per call; a 1 MiB message costs several whole copies more than here,
where a write's pieces are encrypted where they are, in full records
(L{txclws._tls.slices.seal}), and given to TCP together, and what one
TCP read decrypts to is delivered at once, a large read as the one
buffer it was decrypted into (L{txclws._tls.plaintext.decrypt}).

The TLS rules kept (RFC 8446): application data only once the handshake
has completed (writes before then wait); C{close_notify} (6.1) sent by
C{loseConnection}, which closes TCP once the peer's arrives; the peer's
C{close_notify} answered with ours, then TCP closed; a TLS error ends the
connection (with the alert OpenSSL queued, if any).
"""

from __future__ import annotations

import ssl
import typing
from collections.abc import Iterable
from typing import Any, cast

from twisted.internet.interfaces import (
    IHandshakeListener,
    INegotiated,
    ISSLTransport,
    ITransport,
)
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure
from zope.interface import directlyProvides, implementer, providedBy

from txclws._tls.clienthello import NO_APPLICATION_PROTOCOL_ALERT, ALPNCheck
from txclws._tls.facade import TransportFacade
from txclws._tls.plaintext import decrypt
from txclws._tls.slices import adaptReads, seal


class TLSSettings(typing.Protocol):
    """
    What a L{StdlibTLSProtocol} needs from its factory
    (L{txclws._tls.factory.StdlibTLSFactory}).
    """

    context: ssl.SSLContext
    serverSide: bool
    alpn: list[bytes]

    def registerProtocol(self, p: Any) -> None: ...

    def unregisterProtocol(self, p: Any) -> None: ...


__all__ = ["StdlibTLSProtocol"]

_log = Logger()


@implementer(ISSLTransport, INegotiated)
class StdlibTLSProtocol(TransportFacade, ProtocolWrapper):
    """
    One TLS connection, server or client side (its factory's context says
    which), over the TCP transport below.

    @ivar _tls: the connection's C{ssl.SSLObject}.
    @ivar _pending: application writes made before the handshake completed.
    @ivar _reason: why the connection fails (a TLS error), given to the
        application's C{connectionLost} instead of TCP's reason.
    """

    factory: TLSSettings
    _handshakeDone = False
    _shutdownSent = False
    _aborted = False
    _reason: Failure | None = None
    _defaultRead = 0
    #: The writes made while the application handles received data.
    _batch: list[bytes | memoryview] | None = None

    def makeConnection(self, transport: ITransport) -> None:
        """
        Wrap C{transport}, tell the application, and start the handshake.
        """
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = self.factory.context.wrap_bio(
            self._incoming, self._outgoing, server_side=self.factory.serverSide
        )
        self._pending: list[bytes | memoryview] = []
        alpn = self.factory.alpn
        self._alpnCheck = ALPNCheck(alpn) if alpn else None
        self._takesBytearray = (
            getattr(self.wrappedProtocol, "takesBytearray", False) is True
        )
        # What the transport below provides (ITCPTransport, IPushProducer,
        # ...), and TLS.
        directlyProvides(self, *providedBy(transport))
        #: The transport below, as it is (TCP: a producer, a consumer).
        self._lower: Any = transport
        ProtocolWrapper.makeConnection(self, transport)
        self._handshake()

    # -- TLS -------------------------------------------------------------

    def _handshake(self) -> None:
        """
        Go on with the handshake; once done, tell the application
        (C{IHandshakeListener}) and send what it wrote meanwhile.
        """
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except ssl.SSLError:
            self._fail(Failure())
            return
        self._handshakeDone = True
        self._flush()
        if IHandshakeListener.providedBy(self.wrappedProtocol):
            self.wrappedProtocol.handshakeCompleted()
        pending, self._pending = self._pending, []
        if pending:
            self._encryptAll(pending)
        if self.disconnecting and not self._pending:
            self._shutdown()

    def _flush(self) -> None:
        """
        Write what TLS has produced to the transport below, as one piece.
        """
        if self._outgoing.pending:
            self._lower.write(self._outgoing.read())

    def _fail(self, reason: Failure) -> None:
        """
        A TLS error: send the alert OpenSSL queued, if any, and close; the
        application's C{connectionLost} gets C{reason}.
        """
        _log.debug("TLS failed: {error}", error=reason.value)
        self._reason = reason
        self._flush()
        self._aborted = True
        self._lower.loseConnection()

    def _shutdown(self) -> None:
        """
        Send C{close_notify} (RFC 8446 6.1), once; close TCP once the
        peer's has arrived (or at once, if it already has).
        """
        if self._aborted:
            return
        batch = self._batch
        if batch:
            # Written while handling this read, before closing: send first
            # (emptied in place: the read's own flush then has nothing).
            pending = batch[:]
            batch.clear()
            self._encryptAll(pending)
            if self._aborted:
                return
        try:
            self._tls.unwrap()
        except ssl.SSLWantReadError:
            # Ours is sent; the peer's is still to come: read on.
            self._shutdownSent = True
            self._flush()
            self._lower.resumeProducing()
            return
        except ssl.SSLError:
            # Mid-handshake, or the peer went away: nothing more to say.
            pass
        self._shutdownSent = True
        self._flush()
        self._aborted = True
        self._lower.loseConnection()

    # -- from TCP -------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """
        Decrypt what arrived and deliver it to the application at once.
        """
        if self._aborted:
            return
        incoming = self._incoming
        if not self._handshakeDone:
            incoming.write(data)
            if self._alpnCheck is not None and not self._checkALPN(data):
                return
            self._handshake()
            if not self._handshakeDone:
                return
            data = b""  # in the BIO already
        self._defaultRead = adaptReads(self._lower, len(data), self._defaultRead)
        decrypted = decrypt(self._tls, incoming, data, self._takesBytearray)
        self._deliver(decrypted.plaintext)
        if decrypted.error is not None:
            self._fail(Failure(decrypted.error))
        elif decrypted.closed:
            # The peer's close_notify: answer with ours, then close TCP.
            self._shutdown()
        else:
            # Reading can make TLS answer (a key update, RFC 8446 4.6.3).
            self._flush()

    def _deliver(self, data: bytes | bytearray) -> None:
        """
        Give the application what was decrypted; what it writes meanwhile
        is encrypted and sent together afterwards (small replies share
        records and a single write to TCP).
        """
        if not data:
            return
        batch: list[bytes | memoryview] = []
        self._batch = batch
        try:
            # A bytearray only to a protocol that takes one (takesBytearray).
            self.wrappedProtocol.dataReceived(cast(bytes, data))
        finally:
            self._batch = None
            if batch and not self._aborted:
                self._encryptAll(batch)

    def _encryptAll(self, batch: list[bytes | memoryview]) -> None:
        """
        Encrypt C{batch}'s writes (small ones share records) and send the
        records together.
        """
        try:
            out = seal(self._tls, self._outgoing, batch)
        except ssl.SSLError:
            self._fail(Failure())
            return
        if len(out) == 1:
            self._lower.write(out[0])
        elif out:
            # Joined once, by TCP (with what it still holds unsent).
            self._lower.writeSequence(out)

    def _checkALPN(self, data: bytes) -> bool:
        """
        Whether the handshake may go on: not while the ClientHello is not
        all in, nor if it offers only protocols we do not serve (then a
        fatal C{no_application_protocol} alert, RFC 7301 3.2, and close).
        """
        assert self._alpnCheck is not None
        refuse = self._alpnCheck.feed(data)
        if refuse is None:
            return False
        self._alpnCheck = None
        if refuse:
            self._lower.write(NO_APPLICATION_PROTOCOL_ALERT)
            self._reason = Failure(ssl.SSLError("no_application_protocol"))
            self._aborted = True
            self._lower.loseConnection()
        return not refuse

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        TCP is gone: tell the application, with the TLS error if one
        ended the connection.
        """
        self._aborted = True
        self.connected = False
        ProtocolWrapper.connectionLost(self, self._reason or reason)

    # -- the application's transport -------------------------------------

    def write(self, data: bytes) -> None:
        """
        Encrypt and send C{data}; before the handshake has completed, keep
        it until then.  Nothing is written once the connection is closing
        or has failed.
        """
        if self._aborted or self._shutdownSent:
            return
        if self._batch is not None:
            self._batch.append(data)
        elif self._handshakeDone:
            self._encryptAll([data])
        else:
            self._pending.append(data)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """
        Write C{data}'s pieces, in order, as L{write} does, without
        joining them first: a large one is encrypted where it is.
        """
        if self._aborted or self._shutdownSent:
            return
        if self._batch is not None:
            self._batch.extend(data)
        elif self._handshakeDone:
            self._encryptAll(list(data))
        else:
            self._pending.extend(data)

    def loseConnection(self) -> None:
        """
        Close TLS (C{close_notify}) once what was written is encrypted, and
        TCP once the peer's C{close_notify} has arrived (RFC 8446 6.1).
        While a producer is registered, wait for it to unregister, as
        Twisted's transports do.
        """
        if self.disconnecting:
            return
        self.disconnecting = True
        if self.producer is None and self._handshakeDone:
            self._shutdown()
        elif not self._handshakeDone:
            self._aborted = True
            self._lower.loseConnection()
