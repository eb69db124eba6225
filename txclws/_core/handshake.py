# -*- test-case-name: tests.test_handshake -*-
"""
The server's side of the opening handshake (RFC 6455 section 4.2), over bytes.

L{txclws._core.request} reads and parses the request head into a
L{HandshakeRequest}; L{checkUpgrade} applies the WebSocket rules and returns
a L{ClientHandshake}.  Every refusal
is a L{HandshakeError} carrying its HTTP status; L{txclws._core.responses}
builds the bytes of the answer.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from hashlib import sha1

from txclws._core.errors import HandshakeError
from txclws._core.hixie76 import hixie76Keys
from txclws._core.request import HandshakeRequest, RequestHeaders

__all__ = ["SUPPORTED_VERSIONS", "ClientHandshake", "acceptKey", "checkUpgrade"]

#: The GUID of RFC 6455 section 1.3, the same in hybi-07 and -08.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# 13 is RFC 6455.  7 and 8 are draft-ietf-hybi-thewebsocketprotocol-07 and
# -08 (drafts 09 to 12 also send 8), whose opening handshake is RFC 6455's
# but for the name of one header:
# - the key: 16 random bytes in base64 (hybi-07/08 section 5.1; RFC 6455
#   4.1), checked as by RFC 6455 4.2.1;
# - the answer: 101, Upgrade, Connection and Sec-WebSocket-Accept, the
#   base64 of the SHA-1 of the key and the same GUID (hybi-07/08 sections
#   1.3 and 5.2.2; RFC 6455 1.3 and 4.2.2), so acceptResponse serves all
#   three, with the same worked example (dGhlIHNhbXBsZSBub25jZQ== gives
#   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=);
# - the version: Sec-WebSocket-Version 7 or 8 (hybi-07/08 section 5.1)
#   where RFC 6455 4.1 sends 13;
# - the origin: a browser sends Sec-WebSocket-Origin (hybi-07/08 sections
#   5.1 and 5.2.1), renamed Origin in draft 11 and RFC 6455 4.1.
# Version 0 is draft-hixie-76 / hybi-00, off by default; see _checkHixie76.

#: Protocol versions we speak, newest first, as sent in a 426 refusal.
SUPPORTED_VERSIONS = (13, 8, 7)
_VERSIONS = ", ".join(map(str, SUPPORTED_VERSIONS))


@dataclass(frozen=True, slots=True)
class ClientHandshake:
    """
    A request that is a well-formed WebSocket upgrade.

    @ivar request: the L{HandshakeRequest}.
    @ivar key: the C{Sec-WebSocket-Key}.
    @ivar version: the protocol version, 13, 8 or 7.
    @ivar origin: the origin the client declared, or C{None}.
    @ivar subprotocols: the subprotocols offered, in order of preference.
    @ivar hixieKeys: for hixie-76 (version 0), C{Sec-WebSocket-Key1} and
        C{Key2}; the 8 bytes after the head complete the challenge.
    """

    request: HandshakeRequest
    key: str
    version: int
    origin: str | None
    subprotocols: tuple[str, ...]
    hixieKeys: tuple[str, str] | None = None


def checkUpgrade(
    request: HandshakeRequest, allowHixie76: bool = False
) -> ClientHandshake:
    """
    Check that a request is a WebSocket opening handshake we can accept
    (RFC 6455 section 4.2.1; hybi-07/08 section 5.2.1 differ only in the
    origin header's name).  A hixie-76 / hybi-00 request (no version, two
    keys) is version 0, accepted only when C{allowHixie76} is set.

    @raise HandshakeError: 405 for a method other than GET, 505/400 for
        another HTTP version, 426 when the client did not ask to upgrade to
        WebSocket or asks for a version we do not speak, 400 for any other
        broken rule.
    """
    headers = request.headers
    if request.method != "GET":
        raise HandshakeError(
            405, "the opening handshake must be a GET", (("Allow", "GET"),)
        )
    if request.httpVersion != (1, 1):
        raise HandshakeError(400, "the opening handshake needs HTTP/1.1")
    if headers.count("Host") != 1:
        raise HandshakeError(400, "exactly one Host header is required")
    if "websocket" not in [t.lower() for t in headers.tokens("Upgrade")]:
        raise HandshakeError(
            426,
            "this is a WebSocket resource: use a WebSocket client",
            (("Upgrade", "websocket"), ("Sec-WebSocket-Version", _VERSIONS)),
        )
    if "upgrade" not in [t.lower() for t in headers.tokens("Connection")]:
        raise HandshakeError(400, "Connection header must contain 'upgrade'")
    if "Sec-WebSocket-Version" not in headers and "Sec-WebSocket-Key1" in headers:
        return _checkHixie76(request, allowHixie76)
    version = _checkVersion(headers)
    key = _checkKey(headers)
    originHeader = "Origin" if version == 13 else "Sec-WebSocket-Origin"
    origin = headers.get(originHeader)
    if origin is None and version != 13:
        origin = headers.get("Origin")
    return ClientHandshake(
        request=request,
        key=key,
        version=version,
        origin=origin,
        subprotocols=tuple(headers.tokens("Sec-WebSocket-Protocol")),
    )


def _checkHixie76(request: HandshakeRequest, allowed: bool) -> ClientHandshake:
    headers = request.headers
    if not allowed:
        # Refused from the head alone: no waiting for the 8-byte body.
        raise HandshakeError(
            426,
            "draft-hixie-76 / hybi-00 is not enabled on this server",
            (("Sec-WebSocket-Version", _VERSIONS),),
        )
    return ClientHandshake(
        request=request,
        key="",
        version=0,
        origin=headers.get("Origin"),
        subprotocols=tuple(headers.tokens("Sec-WebSocket-Protocol")),
        hixieKeys=hixie76Keys(headers),
    )


def _checkVersion(headers: RequestHeaders) -> int:
    value = headers.get("Sec-WebSocket-Version")
    if value is None:
        raise HandshakeError(
            426,
            "Sec-WebSocket-Version is missing",
            (("Sec-WebSocket-Version", _VERSIONS),),
        )
    value = value.strip()
    # isascii(): str.isdigit() also accepts Latin-1 superscripts, which
    # int() refuses with a ValueError instead of our 426.
    if (
        not (value.isascii() and value.isdigit())
        or int(value) not in SUPPORTED_VERSIONS
    ):
        # RFC 6455 4.4: refuse with the versions we do speak.
        raise HandshakeError(
            426,
            "unsupported WebSocket version",
            (("Sec-WebSocket-Version", _VERSIONS),),
        )
    return int(value)


def _checkKey(headers: RequestHeaders) -> str:
    if headers.count("Sec-WebSocket-Key") != 1:
        raise HandshakeError(400, "exactly one Sec-WebSocket-Key is required")
    key = headers["Sec-WebSocket-Key"]
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise HandshakeError(400, "Sec-WebSocket-Key is not base64") from None
    if len(raw) != 16:
        raise HandshakeError(400, "Sec-WebSocket-Key must encode 16 bytes")
    return key


def acceptKey(key: str) -> str:
    """
    The C{Sec-WebSocket-Accept} value for a C{Sec-WebSocket-Key}
    (RFC 6455 section 4.2.2, item 5.4).
    """
    return base64.b64encode(sha1(key.encode("ascii") + _GUID).digest()).decode()
