# -*- test-case-name: tests.test_handshake -*-
"""
The server's side of the opening handshake (RFC 6455 section 4.2), over bytes.

L{RequestHeadReader} collects a request head within a size bound;
L{parseRequestHead} turns it into a L{HandshakeRequest}; L{checkUpgrade}
applies the WebSocket rules and returns a L{ClientHandshake}.  Every refusal
is a L{HandshakeError} carrying its HTTP status; L{txclws._core.responses}
builds the bytes of the answer.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from hashlib import sha1

from txclws._core.errors import HandshakeError
from txclws._core.hixie76 import hixie76Keys

__all__ = [
    "SUPPORTED_VERSIONS",
    "ClientHandshake",
    "HandshakeRequest",
    "RequestHeadReader",
    "RequestHeaders",
    "acceptKey",
    "checkUpgrade",
    "parseRequestHead",
]

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

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP/(\d)\.(\d)\Z")
# RFC 9112 3.2 / RFC 3986 2: a request target is visible US-ASCII (other
# octets arrive percent-encoded).
_TARGET = re.compile(r"[\x21-\x7e]+\Z")
# RFC 9112 3.2.2 absolute-form, for the schemes that can name a WebSocket
# resource (RFC 6455 3 and 4.2.1; http and https for proxies' forms): the
# scheme (case-insensitive, RFC 3986 3.1), then an authority (RFC 3986
# 3.2.2 and 3.2.3: an IP literal or a reg-name, an optional port; no
# userinfo, which RFC 9110 4.2.4 says to treat as an error), then the
# path and query.
_ABSOLUTE_FORM = re.compile(
    r"(?i:https?|wss?)://"
    r"((?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~!$&'()*+,;=%]+)(?::[0-9]*)?)"
    r"([/?].*)?\Z",
    re.DOTALL,
)


class RequestHeaders(Mapping[str, str]):
    """
    A request's headers: a read-only mapping from case-insensitive name to
    value, repeated headers joined with C{", "} (RFC 9110 section 5.3).

    @ivar raw: every header as received, as C{(name, value)} pairs in order.
    """

    __slots__ = ("_values", "raw")

    def __init__(self, raw: tuple[tuple[str, str], ...]) -> None:
        self.raw = raw
        values: dict[str, str] = {}
        for name, value in raw:
            key = name.lower()
            values[key] = f"{values[key]}, {value}" if key in values else value
        self._values = values

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def count(self, name: str) -> int:
        """
        How many times the header C{name} was sent.
        """
        key = name.lower()
        return sum(1 for n, _ in self.raw if n.lower() == key)

    def tokens(self, name: str) -> list[str]:
        """
        The comma-separated elements of a list header, stripped, in order.
        """
        value = self._values.get(name.lower(), "")
        return [part.strip() for part in value.split(",") if part.strip()]

    def __repr__(self) -> str:
        return f"RequestHeaders({self.raw!r})"


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """
    An HTTP request head.

    @ivar method: the method, e.g. C{"GET"}.
    @ivar target: the request target in origin form, e.g.
        C{"/chat?room=1"}: as sent, or the path and query of an
        absolute-form target.
    @ivar path: the target before any C{?}: the resource name.
    @ivar query: the target after the first C{?}, or C{None} when there is
        no C{?}.
    @ivar httpVersion: C{(major, minor)}.
    @ivar headers: the L{RequestHeaders}.
    @ivar authority: the C{host[:port]} of an absolute-form target, which
        RFC 9112 section 3.2.2 says to use instead of the C{Host} header;
        C{None} for an origin-form target.
    """

    method: str
    target: str
    path: str
    query: str | None
    httpVersion: tuple[int, int]
    headers: RequestHeaders
    authority: str | None = None


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


class RequestHeadReader:
    """
    Collects bytes until a whole request head is here, within a size bound.

    @ivar leftover: after the head is complete, the bytes that followed it.
    """

    __slots__ = ("_buffer", "_maxSize", "_searched", "leftover")

    def __init__(self, maxSize: int) -> None:
        """
        @param maxSize: the largest head accepted, in bytes.
        """
        self._maxSize = maxSize
        self._buffer = bytearray()
        self._searched = 0
        self.leftover = b""

    def feed(self, data: bytes) -> bytes | None:
        """
        Take more bytes.

        @return: the head, terminator excluded, once complete, else C{None}.
        @raise HandshakeError: 431 when the head outgrows the bound.
        """
        buffer = self._buffer
        buffer += data
        # Search only the new bytes (and the 3 before, for a split "\r\n\r\n").
        end = buffer.find(b"\r\n\r\n", max(0, self._searched - 3))
        if end < 0:
            self._searched = len(buffer)
            # The last 3 bytes may begin a terminator split across calls
            # after a head of exactly maxSize bytes: refusing at maxSize
            # would make the verdict depend on how the bytes were chunked.
            if len(buffer) > self._maxSize + 3:
                raise HandshakeError(431, "request head is too large")
            return None
        if end > self._maxSize:
            raise HandshakeError(431, "request head is too large")
        self.leftover = bytes(buffer[end + 4 :])
        head = bytes(buffer[:end])
        self._buffer = bytearray()
        return head


def parseRequestHead(head: bytes, maxHeaders: int = 100) -> HandshakeRequest:
    """
    Parse a request head (without its final empty line).

    The request target may be in origin form (C{/chat?room=1}) or in
    absolute form (C{http://host:port/chat?room=1}, also C{https}, C{ws}
    and C{wss}: RFC 9112 section 3.2.2, RFC 6455 section 4.2.1), which is
    reduced to the same path and query; every other form is refused.

    @raise HandshakeError: 400 for anything that is not an HTTP/1.x request
        head (a target that is not visible ASCII included, whatever the
        protocol version asked for), 505 for another HTTP major version,
        431 for more than C{maxHeaders} header lines.
    """
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.match(lines[0])
    if match is None:
        raise HandshakeError(400, "malformed request line")
    method, target, major, minor = match.groups()
    if int(major) != 1:
        raise HandshakeError(505, "only HTTP/1.1 is supported")
    if len(lines) - 1 > maxHeaders:
        raise HandshakeError(431, "too many header lines")
    raw = tuple(_parseHeaderLine(line) for line in lines[1:])
    authority, originForm = _parseTarget(target)
    path, sep, query = originForm.partition("?")
    return HandshakeRequest(
        method=method.decode("ascii"),
        target=originForm,
        path=path,
        query=query if sep else None,
        httpVersion=(int(major), int(minor)),
        headers=RequestHeaders(raw),
        authority=authority,
    )


def _parseTarget(target: bytes) -> tuple[str | None, str]:
    """
    The authority (C{None} in origin form) and the origin-form target
    (path, then any query) of a request target.

    @raise HandshakeError: 400 for a target that is not ASCII, has a
        fragment, or is neither in origin nor in absolute form.
    """
    # Decoded strictly: with "replace", two different targets (/?\xe9 and
    # /?\xea) read the same, and a location built from one cannot be
    # written back in ASCII.
    text = target.decode("latin-1")
    if not _TARGET.match(text):
        raise HandshakeError(400, "request target is not visible ASCII")
    if "#" in text:
        # RFC 6455 3: the resource name has no fragment.
        raise HandshakeError(400, "request target has a fragment")
    if text.startswith("/"):
        return None, text
    absolute = _ABSOLUTE_FORM.match(text)
    if absolute is None:
        raise HandshakeError(400, "request target must be an absolute path or URI")
    authority, rest = absolute.groups()
    # RFC 6455 3: an empty path is the resource "/".
    if not rest:
        return authority, "/"
    return authority, rest if rest.startswith("/") else "/" + rest


def _parseHeaderLine(line: bytes) -> tuple[str, str]:
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN.match(name):
        # Also refuses obsolete line folding (RFC 9112 section 5.2).
        raise HandshakeError(400, "malformed header line")
    value = value.strip(b" \t")
    if _BAD_VALUE.search(value):
        raise HandshakeError(400, "control character in a header value")
    return name.decode("ascii"), value.decode("latin-1")


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
