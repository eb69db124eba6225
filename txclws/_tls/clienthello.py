# -*- test-case-name: tests.test_stdlibtls -*-
"""
The protocols a TLS ClientHello offers by ALPN (RFC 7301 3.1), read from
the first bytes a client sends, with no I/O.

The standard library's C{ssl} lets a server name its ALPN protocols but,
when none is in the client's list, goes on with no protocol selected,
where RFC 7301 3.2 says the server "SHALL respond with a fatal
C{no_application_protocol} alert"; L{StdlibTLSProtocol} reads the offer
here to refuse as the RFC (and Twisted's C{ssl:}) does.
"""

from __future__ import annotations

__all__ = ["NO_APPLICATION_PROTOCOL_ALERT", "ALPNCheck", "offeredProtocols"]

#: A TLS record (RFC 8446 5.1: type 21, alert; legacy version 0x0303)
#: carrying the fatal (2) C{no_application_protocol} (120) alert.
NO_APPLICATION_PROTOCOL_ALERT = b"\x15\x03\x03\x00\x02\x02\x78"

_HANDSHAKE = 22
_CLIENT_HELLO = 1
_ALPN = 16


class _Incomplete(Exception):
    """
    The bytes end before the ClientHello does.
    """


def _handshakeBytes(data: bytes) -> bytes:
    """
    The handshake bytes of the records at the start of C{data} (RFC 8446
    5.1: type, legacy version, 2-byte length), up to the first record of
    another type or the end of C{data}.
    """
    out = bytearray()
    at = 0
    while at + 5 <= len(data) and data[at] == _HANDSHAKE:
        length = int.from_bytes(data[at + 3 : at + 5], "big")
        out += data[at + 5 : at + 5 + length]
        at += 5 + length
    return bytes(out)


class _Cursor:
    """
    Reads length-prefixed fields of a ClientHello body.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise _Incomplete()
        field = self.data[self.at : self.at + size]
        self.at += size
        return field

    def vector(self, prefix: int) -> bytes:
        return self.take(int.from_bytes(self.take(prefix), "big"))


def offeredProtocols(data: bytes) -> list[bytes] | None:
    """
    The protocol names the ClientHello at the start of C{data} offers by
    ALPN, in its order; C{[]} if it has no ALPN extension (or is not a
    ClientHello); C{None} while C{data} ends before the ClientHello does.
    """
    body = _handshakeBytes(data)
    if len(body) < 4:
        return None if not data or data[0] == _HANDSHAKE else []
    if body[0] != _CLIENT_HELLO:
        return []
    length = int.from_bytes(body[1:4], "big")
    if len(body) < 4 + length:
        return None
    hello = _Cursor(body[4 : 4 + length])
    try:
        hello.take(2 + 32)  # legacy_version, random
        hello.vector(1)  # legacy_session_id
        hello.vector(2)  # cipher_suites
        hello.vector(1)  # legacy_compression_methods
        extensions = _Cursor(hello.vector(2))
        while extensions.at < len(extensions.data):
            kind = int.from_bytes(extensions.take(2), "big")
            value = extensions.vector(2)
            if kind == _ALPN:
                names = _Cursor(_Cursor(value).vector(2))
                offered = []
                while names.at < len(names.data):
                    offered.append(names.vector(1))
                return offered
    except _Incomplete:
        return []  # malformed: OpenSSL will refuse it
    return []


#: The most of a client's first bytes kept to find its ClientHello in.
_MAX_HELLO = 1 << 16


class ALPNCheck:
    """
    Whether a client must be refused for offering no protocol the server
    serves (RFC 7301 3.2), from its first bytes.
    """

    def __init__(self, served: list[bytes]) -> None:
        self._served = set(served)
        self._seen = b""

    def feed(self, data: bytes) -> bool | None:
        """
        Look at the client's next bytes.

        @return: C{True}: refuse; C{False}: do not (it offered a protocol
            served, or none, or its hello could not be read in the first
            64 KiB); C{None}: the ClientHello is not all in yet.
        """
        self._seen += data
        offered = offeredProtocols(self._seen)
        if offered is None and len(self._seen) < _MAX_HELLO:
            return None
        self._seen = b""
        return bool(offered) and not self._served.intersection(offered or ())
