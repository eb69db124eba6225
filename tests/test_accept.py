"""
Tests for L{txclws._core.accept}: the one acceptance decision, without a
reactor or a transport.  Answers are byte-exact where the RFC fixes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests._rawsocket import SAMPLE_ACCEPT, upgradeRequest
from tests.test_hixie76 import BODY, DRAFT_REQUEST, DRAFT_RESPONSE
from txclws._core.accept import (
    Accepted,
    Refused,
    ServerSettings,
    acceptHandshake,
    bodySize,
    checkHeadSize,
    checkRequest,
    checkResourcePath,
)
from txclws._core.connection import WebSocketConnection
from txclws._core.deflate import PerMessageDeflate
from txclws._core.errors import HandshakeError
from txclws._core.handshake import ClientHandshake
from txclws._core.hixie76 import Hixie76Connection
from txclws._core.origin import anyOrigin, originExact
from txclws._core.request import parseRequestHead

RESOURCE = object()


DEFAULTS = ServerSettings()


def handshake(data: bytes, settings: ServerSettings = DEFAULTS) -> ClientHandshake:
    """
    The checked handshake of a raw request head (with its empty line).
    """
    checked = checkRequest(parseRequestHead(data.split(b"\r\n\r\n")[0]), settings)
    assert isinstance(checked, ClientHandshake)
    return checked


def route(path: str) -> tuple[object, object] | None:
    """
    One resource, at C{/r} exactly, for any origin.
    """
    return (RESOURCE, anyOrigin) if path == "/r" else None


def noSubprotocol(resource: object, offered: Sequence[str]) -> str | None:
    """
    Agree on none.
    """
    return None


def accept(
    data: bytes,
    settings: ServerSettings = DEFAULTS,
    clients: int = 0,
    choose: object = noSubprotocol,
    body: bytes = b"",
    lookup: object = route,
) -> Accepted[object] | Refused:
    """
    Decide the raw request C{data}.
    """
    return acceptHandshake(
        handshake(data, settings),
        settings,
        lookup,  # type: ignore[arg-type]
        clients,
        False,
        choose,  # type: ignore[arg-type]
        body,
    )


def test_accepted() -> None:
    """
    A good RFC 6455 request is accepted: the 101 of RFC 6455 4.2.2 (the
    section 1.3 key and answer), an open RFC 6455 connection, the resource
    routed to, and the bytes after the head kept for the connection.
    """
    verdict = accept(upgradeRequest("/r"), body=b"\x81")
    assert isinstance(verdict, Accepted)
    assert verdict.response == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + SAMPLE_ACCEPT.encode() + b"\r\n\r\n"
    )
    assert type(verdict.connection) is WebSocketConnection
    assert (verdict.resource, verdict.version, verdict.subprotocol) == (
        RESOURCE,
        13,
        None,
    )
    assert verdict.leftover == b"\x81"


def test_routingIsExact() -> None:
    """
    Routing is by exact path: neither a path below a resource nor one with
    a trailing slash reaches it; both are 404.
    """
    for path in ("/r/x", "/r/", "/"):
        verdict = accept(upgradeRequest(path))
        assert isinstance(verdict, Refused)
        assert verdict.status == 404


def test_origin() -> None:
    """
    An origin the route's policy refuses is 403.
    """

    def strict(path: str) -> tuple[object, object]:
        return RESOURCE, originExact("https://good")

    verdict = accept(upgradeRequest("/r", origin="https://evil"), lookup=strict)
    assert isinstance(verdict, Refused) and verdict.status == 403


def test_maxClients() -> None:
    """
    At C{maxClients}, 503; below it, accepted.
    """
    settings = ServerSettings(maxClients=2)
    full = accept(upgradeRequest("/r"), settings, clients=2)
    assert isinstance(full, Refused) and full.status == 503
    assert full.response().startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert isinstance(accept(upgradeRequest("/r"), settings, clients=1), Accepted)


def test_subprotocol() -> None:
    """
    The chooser sees the resource and the offers in order; its choice is
    sent back.  A choice not offered is 500, as is a chooser's
    L{HandshakeError}.
    """
    seen: list[object] = []

    def choose(resource: object, offered: Sequence[str]) -> str:
        seen.append((resource, tuple(offered)))
        return "b"

    request = upgradeRequest("/r", extra=(("Sec-WebSocket-Protocol", "a, b"),))
    verdict = accept(request, choose=choose)
    assert isinstance(verdict, Accepted) and verdict.subprotocol == "b"
    assert b"Sec-WebSocket-Protocol: b\r\n" in verdict.response
    assert seen == [(RESOURCE, ("a", "b"))]
    other = accept(request, choose=lambda r, o: "c")
    assert isinstance(other, Refused) and other.status == 500

    def broken(resource: object, offered: Sequence[str]) -> str:
        raise HandshakeError(500, "internal error")

    failed = accept(request, choose=broken)
    assert isinstance(failed, Refused) and failed.status == 500


def test_deflateOnlyFor13() -> None:
    """
    permessage-deflate is agreed with an RFC 6455 client that offers it,
    never with a hybi-08 one (RFC 7692 extends RFC 6455 only).
    """
    settings = ServerSettings(deflate=PerMessageDeflate())
    offer = (("Sec-WebSocket-Extensions", "permessage-deflate"),)
    verdict = accept(upgradeRequest("/r", extra=offer), settings)
    assert isinstance(verdict, Accepted)
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in verdict.response
    draft = accept(upgradeRequest("/r", version="8", extra=offer), settings)
    assert isinstance(draft, Accepted) and draft.version == 8
    assert b"Extensions" not in draft.response


def test_versionRefused() -> None:
    """
    An unsupported version is refused by L{checkRequest} with 426 and the
    versions spoken.
    """
    checked = checkRequest(
        parseRequestHead(upgradeRequest("/r", version="9").split(b"\r\n\r\n")[0]),
        ServerSettings(),
    )
    assert isinstance(checked, Refused) and checked.status == 426
    assert ("Sec-WebSocket-Version", "13, 8, 7") in checked.headers


def test_hixie76() -> None:
    """
    hixie-76 needs 8 bytes after the head (L{bodySize}); with them, the
    draft's section 1.3 answer, byte for byte, and a hixie-76 connection
    fed whatever followed them.
    """
    settings = ServerSettings(protocol76Support=True)
    checked = handshake(DRAFT_REQUEST, settings)
    assert bodySize(checked) == 8
    assert bodySize(handshake(upgradeRequest("/r"))) == 0
    verdict = acceptHandshake(
        checked,
        settings,
        lambda path: (RESOURCE, anyOrigin) if path == "/demo" else None,
        0,
        False,
        lambda resource, offered: "sample",
        BODY + b"\x00hi\xff",
    )
    assert isinstance(verdict, Accepted)
    assert verdict.response == DRAFT_RESPONSE
    assert type(verdict.connection) is Hixie76Connection
    assert (verdict.version, verdict.leftover) == (0, b"\x00hi\xff")


def test_hixie76Off() -> None:
    """
    Without C{protocol76Support}, a hixie-76 head is refused with 426 at
    once, before its body.
    """
    checked = checkRequest(
        parseRequestHead(DRAFT_REQUEST.split(b"\r\n\r\n")[0]), ServerSettings()
    )
    assert isinstance(checked, Refused) and checked.status == 426


def test_headLimits() -> None:
    """
    L{checkHeadSize} gives the reader's verdicts after the fact: 431 over
    the size or over 100 header lines.
    """
    checkHeadSize(100, 100, 100)
    for size, count in ((101, 1), (10, 101)):
        with pytest.raises(HandshakeError) as raised:
            checkHeadSize(size, count, 100)
        assert raised.value.status == 431


def test_resourcePath() -> None:
    """
    A resource path is absolute, with no query and no fragment.
    """
    assert checkResourcePath("/a/b") == "/a/b"
    for bad in ("a", "/a?b", "/a#b", ""):
        with pytest.raises(ValueError):
            checkResourcePath(bad)
