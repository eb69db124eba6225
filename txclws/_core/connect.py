# -*- test-case-name: tests.test_connect -*-
"""
The opening handshake of a WebSocket over HTTP/2 (RFC 8441): an extended
CONNECT request's header fields, checked into the same L{ClientHandshake}
as an HTTP/1.1 upgrade, so that L{txclws._core.accept} decides both alike.

RFC 8441 section 4: the request is a C{CONNECT} with a C{:protocol}
pseudo-header of C{websocket}, and C{:scheme}, C{:path} and C{:authority};
section 5: C{Sec-WebSocket-Version}, C{Origin}, C{Sec-WebSocket-Protocol}
and C{Sec-WebSocket-Extensions} mean what they mean in RFC 6455, and there
is no C{Sec-WebSocket-Key} (nor C{Sec-WebSocket-Accept} in the answer).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from txclws._core.errors import HandshakeError
from txclws._core.handshake import ClientHandshake
from txclws._core.request import HandshakeRequest, RequestHeaders

__all__ = ["checkExtendedConnect", "isExtendedConnect"]

# RFC 9113 8.3.1 / RFC 3986: a :path is visible US-ASCII, in origin form.
_PATH = re.compile(r"/[\x21-\x7e]*\Z")
_SCHEMES = frozenset({"http", "https"})
_REQUIRED = (":scheme", ":path", ":authority")


def isExtendedConnect(headers: Sequence[tuple[str, str]]) -> bool:
    """
    Whether a request's header fields ask for a tunnel of a protocol:
    C{:method} C{CONNECT} with a C{:protocol} (RFC 8441 section 4).
    """
    method = protocol = None
    for name, value in headers:
        if name == ":method":
            method = value
        elif name == ":protocol":
            protocol = value
        elif not name.startswith(":"):
            break  # RFC 9113 8.3: pseudo-header fields come first.
    return method == "CONNECT" and protocol is not None


def checkExtendedConnect(
    headers: Sequence[tuple[str, str]], maxHeaders: int = 100
) -> ClientHandshake:
    """
    Check an extended CONNECT (RFC 8441 sections 4 and 5) and return the
    handshake it asks for: version 13, no key.

    The request's headers are the regular fields, with C{Host} from
    C{:authority} when the client sent none (RFC 9113 8.3.1), so that a
    resource reads them as it would over HTTP/1.1.

    @param headers: the header fields in order, pseudo-header fields first,
        names in lower case (RFC 9113 8.2.1), decoded as Latin-1.
    @raise HandshakeError: 405 for a CONNECT without C{:protocol}, 501 for
        a C{:protocol} other than C{websocket}, 426 for a missing or other
        C{Sec-WebSocket-Version}, 431 for more than C{maxHeaders} fields,
        400 for a missing or malformed pseudo-header field.
    """
    pseudo = {name: value for name, value in headers if name.startswith(":")}
    regular = tuple((n, v) for n, v in headers if not n.startswith(":"))
    if len(regular) > maxHeaders:
        raise HandshakeError(431, "too many header fields")
    if pseudo.get(":method") != "CONNECT" or ":protocol" not in pseudo:
        raise HandshakeError(405, "only extended CONNECT (RFC 8441) is served")
    if pseudo[":protocol"].lower() != "websocket":
        raise HandshakeError(501, "the only :protocol served is websocket")
    for name in _REQUIRED:
        if not pseudo.get(name):
            raise HandshakeError(400, f"{name} is required")
    if pseudo[":scheme"] not in _SCHEMES:
        raise HandshakeError(400, ":scheme must be http or https")
    target = pseudo[":path"]
    if not _PATH.match(target) or "#" in target:
        raise HandshakeError(400, ":path must be an absolute path")
    requestHeaders = RequestHeaders(_withHost(regular, pseudo[":authority"]))
    _checkVersion(requestHeaders)
    path, sep, query = target.partition("?")
    request = HandshakeRequest(
        method="CONNECT",
        target=target,
        path=path,
        query=query if sep else None,
        httpVersion=(2, 0),
        headers=requestHeaders,
        authority=pseudo[":authority"],
    )
    return ClientHandshake(
        request=request,
        key="",
        version=13,
        origin=requestHeaders.get("Origin"),
        subprotocols=tuple(requestHeaders.tokens("Sec-WebSocket-Protocol")),
    )


def _withHost(
    regular: tuple[tuple[str, str], ...], authority: str
) -> tuple[tuple[str, str], ...]:
    if any(name == "host" for name, _ in regular):
        return regular
    return (("host", authority), *regular)


def _checkVersion(headers: RequestHeaders) -> None:
    # RFC 8441 5: the version is RFC 6455's; the drafts never ran on HTTP/2.
    if headers.get("Sec-WebSocket-Version", "").strip() != "13":
        raise HandshakeError(
            426,
            "Sec-WebSocket-Version 13 is required",
            (("sec-websocket-version", "13"),),
        )
