# -*- test-case-name: tests.test_clienthandshake -*-
"""
The client's side of the opening handshake (RFC 6455 section 4.1), over
bytes.

L{WebSocketURL} reads a C{ws://} or C{wss://} URL; L{ClientOpening} makes
the request (L{ClientOpening.request}), reads the server's answer
(L{ClientOpening.receiveData}, L{ClientOpening.receiveEOF}) and either
returns L{Opened} (the ready L{ClientConnection}, the agreed subprotocol,
the response's headers, the bytes after it) or raises L{HandshakeFailed}
saying what the server answered.  No I/O and no clock: the client protocol
moves the bytes and owns the timeout.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from txclws._core.clientconnection import ClientConnection, newMaskKey
from txclws._core.clientdeflate import DeflateOffer, DeflateRefused
from txclws._core.deflate import DeflateCodec
from txclws._core.errors import HandshakeError, HandshakeFailed
from txclws._core.handshake import acceptKey
from txclws._core.request import RequestHeaders, RequestHeadReader, parseHeaderFields

__all__ = [
    "ClientOpening",
    "ClientSettings",
    "Opened",
    "WebSocketURL",
    "newHandshakeKey",
    "readResponseHead",
]

#: The most bytes of a response head, and of a refusal's body, we read.
MAX_RESPONSE_HEAD = 65536
MAX_REFUSAL_BODY = 65536

_STATUS_LINE = re.compile(rb"HTTP/1\.(\d) (\d{3})(?: (.*))?\Z", re.DOTALL)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*\Z")
#: Headers the handshake sets itself, which extra headers may not repeat.
_OWN_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "origin",
    }
)


def newHandshakeKey(random: Callable[[int], bytes] = os.urandom) -> str:
    """
    A C{Sec-WebSocket-Key}: 16 random bytes in base64 (RFC 6455 4.1).
    """
    return base64.b64encode(random(16)).decode("ascii")


@dataclass(frozen=True, slots=True)
class WebSocketURL:
    """
    Where a client connects (RFC 6455 section 3).

    @ivar secure: C{wss://}: over TLS.
    @ivar host: the host name or IP address (IPv6 without brackets).
    @ivar port: the port, 80 or 443 by default.
    @ivar resource: the resource name: the path and any query, never empty.
    """

    secure: bool
    host: str
    port: int
    resource: str

    @classmethod
    def parse(cls, url: str) -> WebSocketURL:
        """
        @raise ValueError: not an absolute C{ws://} or C{wss://} URL, or
            one with a fragment (RFC 6455 3: "MUST NOT be used on these
            URIs").
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("ws", "wss"):
            raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
        if parts.fragment or url.endswith("#"):
            raise ValueError(f"a WebSocket URL has no fragment: {url!r}")
        if not parts.hostname or parts.username is not None:
            raise ValueError(f"a WebSocket URL needs a host and no userinfo: {url!r}")
        secure = scheme == "wss"
        port = parts.port or (443 if secure else 80)
        resource = parts.path or "/"
        if parts.query:
            resource += "?" + parts.query
        return cls(secure, parts.hostname, port, resource)

    @property
    def authority(self) -> str:
        """
        C{host:port}, IPv6 addresses in brackets: a CONNECT's target.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def hostHeader(self) -> str:
        """
        The C{Host} header: the port only when it is not the scheme's.
        """
        if self.port == (443 if self.secure else 80):
            return f"[{self.host}]" if ":" in self.host else self.host
        return self.authority


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """
    What a client's opening handshake offers, and its limits.

    @ivar origin: the C{Origin} header, or C{None}.
    @ivar subprotocols: the subprotocols offered, in order of preference.
    @ivar headers: extra request headers, as C{(name, value)} pairs.
    @ivar deflate: the permessage-deflate offer, or C{None}.
    @ivar maxFrameSize: the largest frame payload accepted (1009 over it).
    @ivar maxMessageSize: the largest message accepted (1009 over it).
    """

    origin: str | None = None
    subprotocols: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    deflate: DeflateOffer | None = None
    maxFrameSize: int = 1 << 24
    maxMessageSize: int = 1 << 24

    def __post_init__(self) -> None:
        for name in self.subprotocols:
            if not _TOKEN.match(name):
                raise ValueError(f"a subprotocol is a token: {name!r}")
        for name, value in self.headers:
            if not _TOKEN.match(name) or not _VALUE.match(value):
                raise ValueError(f"invalid header {name!r}: {value!r}")
            if name.lower() in _OWN_HEADERS:
                raise ValueError(f"the handshake sets {name} itself")


@dataclass(frozen=True, slots=True)
class Opened:
    """
    The server accepted the handshake.

    @ivar connection: the sans-I/O connection, ready for the server's bytes.
    @ivar subprotocol: the subprotocol the server chose, or C{None}.
    @ivar headers: the response's headers.
    @ivar leftover: bytes the server sent after its head: its first frames.
    """

    connection: ClientConnection
    subprotocol: str | None
    headers: RequestHeaders
    leftover: bytes


class _State(Enum):
    """
    @cvar HEAD: reading the response head.
    @cvar BODY: a refusal's head is read; reading its body, to report it.
    @cvar DONE: opened or failed: nothing more to read.
    """

    HEAD = "HEAD"
    BODY = "BODY"
    DONE = "DONE"


def readResponseHead(head: bytes) -> tuple[int, str, RequestHeaders]:
    """
    The status, the reason phrase and the headers of an HTTP/1.1 response
    head (without its final empty line).

    @raise HandshakeFailed: it is not one.
    """
    lines = head.split(b"\r\n")
    match = _STATUS_LINE.match(lines[0])
    if match is None:
        raise HandshakeFailed("the answer is not an HTTP/1.1 response")
    status = int(match.group(2))
    phrase = (match.group(3) or b"").decode("latin-1")
    try:
        headers = parseHeaderFields(lines[1:])
    except HandshakeError as error:
        reason = f"malformed response head: {error.reason}"
        raise HandshakeFailed(reason, status) from error
    return status, phrase, headers


class ClientOpening:
    """
    One client's opening handshake, as a state machine over bytes.
    """

    def __init__(
        self,
        url: WebSocketURL,
        settings: ClientSettings,
        key: str | None = None,
        newMask: Callable[[], bytes] = newMaskKey,
    ) -> None:
        """
        @param key: the C{Sec-WebSocket-Key}; a fresh random one by default
            (tests give a fixed one).
        @param newMask: for the connection's frames; see L{ClientConnection}.
        """
        self.url = url
        self.settings = settings
        self.key = newHandshakeKey() if key is None else key
        self._newMask = newMask
        self._reader = RequestHeadReader(MAX_RESPONSE_HEAD)
        self._state = _State.HEAD
        self._refusal: HandshakeFailed | None = None
        self._body = b""
        self._bodyLength: int | None = None

    def request(self) -> bytes:
        """
        The bytes of the opening handshake's request (RFC 6455 4.1).
        """
        settings = self.settings
        lines = [
            f"GET {self.url.resource} HTTP/1.1",
            f"Host: {self.url.hostHeader}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self.key}",
            "Sec-WebSocket-Version: 13",
        ]
        if settings.origin is not None:
            lines.append(f"Origin: {settings.origin}")
        if settings.subprotocols:
            lines.append(f"Sec-WebSocket-Protocol: {', '.join(settings.subprotocols)}")
        if settings.deflate is not None:
            lines.append(f"Sec-WebSocket-Extensions: {settings.deflate.header()}")
        lines.extend(f"{name}: {value}" for name, value in settings.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def receiveData(self, data: bytes) -> Opened | None:
        """
        Take the server's next bytes.

        @return: L{Opened} once the server accepted, C{None} while more is
            needed.
        @raise HandshakeFailed: the server refused (once the refusal's body
            is read) or answered something that is no acceptance.
        """
        if self._state is _State.BODY:
            self._readBody(data)
            return None
        if self._state is _State.DONE:
            return None
        try:
            head = self._reader.feed(data)
        except HandshakeError:
            self._state = _State.DONE
            raise HandshakeFailed("the response head is too large") from None
        if head is None:
            return None
        leftover = self._reader.leftover
        self._state = _State.DONE
        status, phrase, headers = readResponseHead(head)
        if status != 101:
            self._startRefusal(status, phrase, headers, leftover)
            return None
        return Opened(*self._accept(headers), headers, leftover)

    def receiveEOF(self) -> None:
        """
        The server closed the connection.

        @raise HandshakeFailed: always: it refused, or never answered.
        """
        state, self._state = self._state, _State.DONE
        if state is _State.BODY:
            raise self._failure()
        if state is _State.HEAD:
            raise HandshakeFailed("the server closed the connection before answering")

    def _startRefusal(
        self, status: int, phrase: str, headers: RequestHeaders, rest: bytes
    ) -> None:
        reason = f"the server refused the handshake: {status} {phrase}".rstrip()
        self._refusal = HandshakeFailed(reason, status, headers)
        length = headers.get("Content-Length", "")
        self._bodyLength = int(length) if length.isdigit() else None
        self._state = _State.BODY
        self._readBody(rest)

    def _readBody(self, data: bytes) -> None:
        """
        Read a refusal's body up to its C{Content-Length}, the connection's
        end, or L{MAX_REFUSAL_BODY}; then raise the refusal.
        """
        self._body += data
        wanted = MAX_REFUSAL_BODY if self._bodyLength is None else self._bodyLength
        if len(self._body) >= min(wanted, MAX_REFUSAL_BODY):
            self._state = _State.DONE
            raise self._failure()

    def _failure(self) -> HandshakeFailed:
        refusal = self._refusal
        assert refusal is not None
        refusal.body = self._body[:MAX_REFUSAL_BODY]
        return refusal

    def _accept(self, headers: RequestHeaders) -> tuple[ClientConnection, str | None]:
        """
        Check a 101 (RFC 6455 4.1, the client's checks 1-6 of the
        server's response) and build the connection.
        """

        def fail(reason: str) -> HandshakeFailed:
            return HandshakeFailed(reason, 101, headers)

        if "websocket" not in (t.lower() for t in headers.tokens("Upgrade")):
            raise fail("the response's Upgrade is not websocket")
        if "upgrade" not in (t.lower() for t in headers.tokens("Connection")):
            raise fail("the response's Connection has no upgrade")
        if headers.get("Sec-WebSocket-Accept") != acceptKey(self.key):
            raise fail("Sec-WebSocket-Accept does not match our key")
        subprotocol = self._subprotocol(headers, fail)
        try:
            codec = self._extensions(headers.get("Sec-WebSocket-Extensions"))
        except DeflateRefused as error:
            raise fail(str(error)) from error
        connection = ClientConnection(
            self.settings.maxFrameSize,
            self.settings.maxMessageSize,
            codec,
            self._newMask,
        )
        return connection, subprotocol

    def _subprotocol(
        self, headers: RequestHeaders, fail: Callable[[str], HandshakeFailed]
    ) -> str | None:
        if headers.count("Sec-WebSocket-Protocol") > 1:
            raise fail("more than one Sec-WebSocket-Protocol")
        chosen = headers.get("Sec-WebSocket-Protocol")
        if chosen is None:
            return None
        if chosen not in self.settings.subprotocols:
            raise fail(f"the server chose subprotocol {chosen!r}, not offered")
        return chosen

    def _extensions(self, header: str | None) -> DeflateCodec | None:
        offer = self.settings.deflate
        if offer is None:
            if header and header.strip():
                raise DeflateRefused("the server agreed to an extension not offered")
            return None
        return offer.accept(header)
