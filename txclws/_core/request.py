# -*- test-case-name: tests.test_handshake -*-
"""
An HTTP/1.1 request head, over bytes (RFC 9112 sections 2-5): what the
opening handshake (L{txclws._core.handshake}) is checked on.

L{RequestHeadReader} collects a head within a size bound;
L{parseRequestHead} turns it into a L{HandshakeRequest} with its
L{RequestHeaders}.  Every refusal is a L{HandshakeError} with its status.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from txclws._core.errors import HandshakeError

__all__ = [
    "HandshakeRequest",
    "RequestHeadReader",
    "RequestHeaders",
    "parseHeaderFields",
    "parseRequestHead",
]

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


#: The header names of a handshake, as clients spell them and in lower
#: case, each one string for every request: an open client keeps its
#: headers, and the same names would otherwise be copied into each (about
#: 0.7 KiB per idle connection).  A fixed table, not C{sys.intern}: on
#: Python 3.12 interned strings are never freed, and a peer's made-up names
#: must not pile up.
_SHARED_NAMES = {
    spelling: spelling
    for name in (
        "Host",
        "Upgrade",
        "Connection",
        "Origin",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Protocol",
        "User-Agent",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Cache-Control",
        "Pragma",
        "Cookie",
        "Authorization",
        "Forwarded",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Real-IP",
    )
    for spelling in (name, name.lower())
}


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
            key = _SHARED_NAMES.get(key, key)
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


def parseHeaderFields(lines: list[bytes]) -> RequestHeaders:
    """
    The header fields of a head (a request's, or a response's read by a
    client), one line each, with the same rules as L{parseRequestHead}.

    @raise HandshakeError: 400 for a malformed line.
    """
    return RequestHeaders(tuple(_parseHeaderLine(line) for line in lines))


def _parseHeaderLine(line: bytes) -> tuple[str, str]:
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN.match(name):
        # Also refuses obsolete line folding (RFC 9112 section 5.2).
        raise HandshakeError(400, "malformed header line")
    value = value.strip(b" \t")
    if _BAD_VALUE.search(value):
        raise HandshakeError(400, "control character in a header value")
    text = name.decode("ascii")
    return _SHARED_NAMES.get(text, text), value.decode("latin-1")
