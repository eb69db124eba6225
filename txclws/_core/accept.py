# -*- test-case-name: tests.test_accept -*-
"""
Acceptance of an opening handshake: one decision, for every entry point.

L{acceptHandshake} takes a checked request (and, for hixie-76, the bytes
after its head), the server's L{ServerSettings}, a route lookup, the client
count and whether the transport is TLS, and returns either L{Accepted} (the
101 response and the ready sans-I/O connection) or L{Refused} (the HTTP
refusal).  Routing, origins, C{maxClients}, versions, subprotocols and
extensions are decided here and nowhere else, as websockets decides them in
its sans-I/O C{ServerProtocol.accept}; the transports write the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from txclws._core.connection import WebSocketConnection
from txclws._core.deflate import DeflateCodec, PerMessageDeflate
from txclws._core.errors import HandshakeError
from txclws._core.handshake import ClientHandshake, checkUpgrade
from txclws._core.hixie76 import BODY_SIZE, hixie76Location, startHixie76
from txclws._core.origin import OriginCheck
from txclws._core.request import HandshakeRequest
from txclws._core.responses import acceptResponse, rejectResponse

__all__ = [
    "DRAINING_RETRY_AFTER",
    "MAX_HEADERS",
    "Accepted",
    "AcceptedStream",
    "Refused",
    "ServerSettings",
    "acceptExtendedConnect",
    "acceptHandshake",
    "bodySize",
    "checkHeadSize",
    "checkRequest",
    "checkResourcePath",
]

#: The most header lines a request head may have (431 over it).
MAX_HEADERS = 100

#: The C{Retry-After} (seconds) of the 503 a draining server answers
#: (RFC 9110 10.2.3): its replacement, or another server behind the same
#: address, is expected to take the retry.
DRAINING_RETRY_AFTER = 1

_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """
    What a server's acceptance depends on.

    @ivar maxFrameSize: the largest frame payload accepted (1009 over it).
    @ivar maxMessageSize: the largest message accepted (1009 over it).
    @ivar deflate: the permessage-deflate policy, or C{None}.
    @ivar protocol76Support: whether hixie-76 / hybi-00 clients are served.
    @ivar maxClients: the most clients at once (503 over it), or C{None}.
    @ivar draining: whether the server is draining (a restart): every
        handshake is refused with 503 and C{Retry-After}.
    """

    maxFrameSize: int = 1 << 20
    maxMessageSize: int = 1 << 20
    deflate: PerMessageDeflate | None = None
    protocol76Support: bool = False
    maxClients: int | None = None
    draining: bool = False


@dataclass(frozen=True, slots=True)
class Accepted(Generic[_R]):
    """
    The handshake is accepted.

    @ivar response: the bytes of the 101 answer, to write first.
    @ivar connection: the sans-I/O connection, ready for the client's bytes.
    @ivar resource: the resource routed to.
    @ivar subprotocol: the subprotocol agreed on, or C{None}.
    @ivar version: the protocol version (13, 8, 7, or 0 for hixie-76).
    @ivar leftover: bytes the client sent after the handshake: its first
        frames, to feed to C{connection}.
    """

    response: bytes
    connection: WebSocketConnection
    resource: _R
    subprotocol: str | None
    version: int
    leftover: bytes


@dataclass(frozen=True, slots=True)
class AcceptedStream(Generic[_R]):
    """
    An extended CONNECT is accepted (RFC 8441 section 5): the stream's
    C{200} and the connection to run over its DATA frames.

    @ivar accepted: the L{Accepted}, whose C{response} is empty (an HTTP/2
        answer is header fields, not bytes on the stream).
    @ivar headers: the C{200}'s header fields after C{:status}, lower case
        (RFC 9113 8.2.1): the subprotocol and extensions agreed on.
    """

    accepted: Accepted[_R]
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """
    The handshake is refused with an HTTP status.

    @ivar status: the HTTP status.
    @ivar reason: the plain-text body's explanation.
    @ivar headers: extra response headers, as C{(name, value)} pairs.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def fromError(cls, error: HandshakeError) -> Refused:
        """
        The refusal a L{HandshakeError} carries.
        """
        return cls(error.status, error.reason, error.headers)

    def error(self) -> HandshakeError:
        """
        This refusal as a L{HandshakeError}.
        """
        return HandshakeError(self.status, self.reason, self.headers)

    def response(self) -> bytes:
        """
        The bytes of the HTTP answer; the connection is closed after it.
        """
        return rejectResponse(self.error())


def checkResourcePath(path: str) -> str:
    """
    Check that C{path} can name a resource: an absolute path, without a
    query or a fragment (RFC 6455 section 3).

    @return: C{path}.
    @raise ValueError: it cannot.
    """
    if not path.startswith("/") or "?" in path or "#" in path:
        raise ValueError(f"resource path must be an absolute path: {path!r}")
    return path


def checkHeadSize(headSize: int, headerCount: int, maxHeadSize: int) -> None:
    """
    The head limits, for a head read by someone else (C{twisted.web}), after
    the fact: the same verdicts as L{txclws._core.request.RequestHeadReader}
    and L{txclws._core.request.parseRequestHead} give while reading.

    @raise HandshakeError: 431 for a head over C{maxHeadSize} bytes or more
        than L{MAX_HEADERS} header lines.
    """
    if headSize > maxHeadSize:
        raise HandshakeError(431, "request head is too large")
    if headerCount > MAX_HEADERS:
        raise HandshakeError(431, "too many header lines")


def checkRequest(
    request: HandshakeRequest, settings: ServerSettings
) -> ClientHandshake | Refused:
    """
    Whether C{request} is a WebSocket upgrade this server speaks.
    """
    try:
        return checkUpgrade(request, settings.protocol76Support)
    except HandshakeError as error:
        return Refused.fromError(error)


def bodySize(handshake: ClientHandshake) -> int:
    """
    How many bytes after the head the handshake needs before it can be
    answered: the hixie-76 challenge's last 8 (hixie-76 5.1), else none.
    """
    return BODY_SIZE if handshake.hixieKeys is not None else 0


def acceptHandshake(
    handshake: ClientHandshake,
    settings: ServerSettings,
    route: Callable[[str], tuple[_R, OriginCheck] | None],
    clientCount: int,
    isTLS: bool,
    chooseSubprotocol: Callable[[_R, Sequence[str]], str | None],
    body: bytes = b"",
) -> Accepted[_R] | Refused:
    """
    Decide an opening handshake.

    @param handshake: the checked request (see L{checkRequest}).
    @param route: the route lookup, by exact path.
    @param clientCount: the clients the server has now (for C{maxClients}).
    @param isTLS: whether the transport is TLS (hixie-76's location).
    @param chooseSubprotocol: called with the resource and the offered
        subprotocols, only when some were offered.
    @param body: the bytes that followed the head (at least L{bodySize}).
    """
    try:
        return _accept(
            handshake, settings, route, clientCount, isTLS, chooseSubprotocol, body
        )
    except HandshakeError as error:
        return Refused.fromError(error)


def _accept(
    handshake: ClientHandshake,
    settings: ServerSettings,
    route: Callable[[str], tuple[_R, OriginCheck] | None],
    clientCount: int,
    isTLS: bool,
    chooseSubprotocol: Callable[[_R, Sequence[str]], str | None],
    body: bytes,
) -> Accepted[_R]:
    request = handshake.request
    resource, subprotocol = _admit(
        handshake, settings, route, clientCount, chooseSubprotocol
    )
    if handshake.hixieKeys is not None:
        location = hixie76Location(request.headers["Host"], request.target, isTLS)
        response, connection, leftover = startHixie76(
            handshake.hixieKeys,
            body,
            location,
            handshake.origin,
            subprotocol,
            settings.maxFrameSize,
            settings.maxMessageSize,
        )
        return Accepted(response, connection, resource, subprotocol, 0, leftover)
    response, rfcConnection = _startRFC6455(handshake, settings, subprotocol)
    return Accepted(
        response, rfcConnection, resource, subprotocol, handshake.version, body
    )


def acceptExtendedConnect(
    handshake: ClientHandshake,
    settings: ServerSettings,
    route: Callable[[str], tuple[_R, OriginCheck] | None],
    clientCount: int,
    chooseSubprotocol: Callable[[_R, Sequence[str]], str | None],
) -> AcceptedStream[_R] | Refused:
    """
    Decide a WebSocket opening handshake over HTTP/2 (RFC 8441 section 5):
    the same routing, origin, C{maxClients}, subprotocol and
    permessage-deflate decisions as L{acceptHandshake}, answered by a
    C{200} instead of a C{101}.

    @param handshake: the checked request (see
        L{txclws._core.connect.checkExtendedConnect}).
    """
    try:
        resource, subprotocol = _admit(
            handshake, settings, route, clientCount, chooseSubprotocol
        )
    except HandshakeError as error:
        return Refused.fromError(error)
    extensions, codec = _negotiateDeflate(handshake, settings)
    connection = WebSocketConnection(
        settings.maxFrameSize, settings.maxMessageSize, codec, handshake.version
    )
    headers: list[tuple[str, str]] = []
    if subprotocol is not None:
        headers.append(("sec-websocket-protocol", subprotocol))
    if extensions:
        headers.append(("sec-websocket-extensions", extensions))
    accepted = Accepted(b"", connection, resource, subprotocol, 13, b"")
    return AcceptedStream(accepted, tuple(headers))


def _admit(
    handshake: ClientHandshake,
    settings: ServerSettings,
    route: Callable[[str], tuple[_R, OriginCheck] | None],
    clientCount: int,
    chooseSubprotocol: Callable[[_R, Sequence[str]], str | None],
) -> tuple[_R, str | None]:
    """
    Draining, routing (exact path), origin, C{maxClients} and the
    subprotocol: what every entry point decides alike.

    @return: the resource and the subprotocol agreed on.
    @raise HandshakeError: 503 (draining, with C{Retry-After}), 404, 403,
        503 (C{maxClients}), or 500 for a resource that chose a subprotocol
        not offered.
    """
    if settings.draining:
        # RFC 9110 15.6.4: 503, temporarily unable; Retry-After says when.
        retry = (("Retry-After", str(DRAINING_RETRY_AFTER)),)
        raise HandshakeError(503, "the server is restarting; try again", retry)
    path = handshake.request.path
    entry = route(path)
    if entry is None:
        raise HandshakeError(404, f"no WebSocket resource at {path}")
    resource, originCheck = entry
    if not originCheck(handshake.origin):
        raise HandshakeError(403, "origin not allowed")
    limit = settings.maxClients
    if limit is not None and clientCount >= limit:
        raise HandshakeError(503, "too many clients; try again later")
    return resource, _subprotocol(resource, handshake.subprotocols, chooseSubprotocol)


def _subprotocol(
    resource: _R,
    offered: Sequence[str],
    choose: Callable[[_R, Sequence[str]], str | None],
) -> str | None:
    if not offered:
        return None
    chosen = choose(resource, offered)
    if chosen is not None and chosen not in offered:
        raise HandshakeError(500, "the resource chose a subprotocol not offered")
    return chosen


def _startRFC6455(
    handshake: ClientHandshake, settings: ServerSettings, subprotocol: str | None
) -> tuple[bytes, WebSocketConnection]:
    extensions, codec = _negotiateDeflate(handshake, settings)
    connection = WebSocketConnection(
        settings.maxFrameSize, settings.maxMessageSize, codec, handshake.version
    )
    return acceptResponse(handshake.key, subprotocol, extensions), connection


def _negotiateDeflate(
    handshake: ClientHandshake, settings: ServerSettings
) -> tuple[str | None, DeflateCodec | None]:
    """
    The C{Sec-WebSocket-Extensions} answer and the codec, if
    permessage-deflate is agreed on (RFC 7692 section 5).
    """
    deflate = settings.deflate
    if deflate is None or handshake.version != 13:
        # RFC 7692 is an extension of RFC 6455, not of the drafts.
        return None, None
    agreed = deflate.negotiate(
        handshake.request.headers.get("Sec-WebSocket-Extensions")
    )
    if agreed is None:
        return None, None
    extensions, params = agreed
    return extensions, DeflateCodec(params, deflate)
