# -*- test-case-name: tests.test_stdlibtls,tests.test_stdsslworkers -*-
"""
The transport methods of L{txclws._tls.protocol.StdlibTLSProtocol} that
only relay or report: producers, abort, the peer's certificate, ALPN.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from OpenSSL.crypto import X509

__all__ = ["TransportFacade"]


class TransportFacade:
    """
    Mixed into L{txclws._tls.protocol.StdlibTLSProtocol}, before
    C{ProtocolWrapper}.

    @ivar _lower: the transport below (TCP).
    @ivar _tls: the connection's C{ssl.SSLObject}.
    """

    _lower: Any
    _tls: ssl.SSLObject
    _aborted: bool
    _handshakeDone: bool
    disconnecting: int

    def write(self, data: bytes) -> None:
        raise NotImplementedError()

    def _shutdown(self) -> None:
        raise NotImplementedError()

    def abortConnection(self) -> None:
        """
        Close TCP at once, with no C{close_notify}.
        """
        self._aborted = True
        self._lower.abortConnection()

    producer: Any = None

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Register C{producer} with the transport below: what is written is
        encrypted at once, so TCP's buffer is the only one to watch.
        """
        self.producer = producer
        self._lower.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        """
        Unregister the producer; a C{loseConnection} that waited for it
        goes on.
        """
        if self.producer is None:
            return
        self.producer = None
        self._lower.unregisterProducer()
        if self.disconnecting and self._handshakeDone:
            self._shutdown()

    def getPeerCertificate(self) -> X509 | None:
        """
        The peer's certificate as C{ssl:} gives it (C{ISSLTransport}): a
        pyOpenSSL C{X509} (pyOpenSSL, the extra C{txclws[tls]}, is imported
        only here), or C{None} if the peer sent none (a server's context
        asks a client for one only if its C{verify_mode} says so).
        """
        der = self._tls.getpeercert(binary_form=True)
        if der is None:
            return None
        from OpenSSL.crypto import FILETYPE_ASN1, load_certificate

        return load_certificate(FILETYPE_ASN1, der)

    @property
    def negotiatedProtocol(self) -> bytes | None:
        """
        The protocol ALPN agreed on (RFC 7301), or C{None}.
        """
        selected = self._tls.selected_alpn_protocol()
        return selected.encode("ascii") if selected else None
