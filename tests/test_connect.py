"""
The RFC 8441 opening handshake in the core (L{txclws._core.connect}) and
its acceptance (L{txclws._core.accept.acceptExtendedConnect}), without a
reactor: the same decisions as an HTTP/1.1 upgrade, answered as header
fields.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from txclws._core.accept import (
    AcceptedStream,
    Refused,
    ServerSettings,
    acceptExtendedConnect,
)
from txclws._core.connect import checkExtendedConnect, isExtendedConnect
from txclws._core.deflate import PerMessageDeflate
from txclws._core.errors import HandshakeError

BASE = [
    (":method", "CONNECT"),
    (":protocol", "websocket"),
    (":scheme", "https"),
    (":path", "/chat?room=1"),
    (":authority", "example.com"),
    ("sec-websocket-version", "13"),
    ("origin", "https://example.com"),
    ("sec-websocket-protocol", "a, b"),
]


def replaced(name: str, value: str | None) -> list[tuple[str, str]]:
    """
    L{BASE} with C{name} set to C{value}, or dropped for C{None}.
    """
    fields = [(n, v) for n, v in BASE if n != name]
    return fields if value is None else [*fields, (name, value)]


def test_isExtendedConnect() -> None:
    """
    Only a CONNECT with C{:protocol} is an extended CONNECT (RFC 8441 4).
    """
    assert isExtendedConnect(BASE)
    assert not isExtendedConnect(replaced(":protocol", None))
    assert not isExtendedConnect([(":method", "GET"), (":path", "/")])


def test_checked() -> None:
    """
    A well-formed request becomes a version-13 handshake without a key,
    whose request has the path, query, origin, subprotocols and a Host
    taken from C{:authority}.
    """
    handshake = checkExtendedConnect(BASE)
    request = handshake.request
    assert (handshake.version, handshake.key) == (13, "")
    assert (request.method, request.path, request.query) == (
        "CONNECT",
        "/chat",
        "room=1",
    )
    assert request.httpVersion == (2, 0)
    assert request.headers["Host"] == "example.com"
    assert handshake.origin == "https://example.com"
    assert handshake.subprotocols == ("a", "b")


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        (replaced(":protocol", "mqtt"), 501),
        (replaced(":protocol", None), 405),
        (replaced(":scheme", "ftp"), 400),
        (replaced(":path", "chat"), 400),
        (replaced(":path", "/a#b"), 400),
        (replaced(":authority", None), 400),
        (replaced("sec-websocket-version", "8"), 426),
        (replaced("sec-websocket-version", None), 426),
        ([*BASE, *[("x-many", "1")] * 100], 431),
    ],
)
def test_refused(fields: Sequence[tuple[str, str]], status: int) -> None:
    """
    Each broken rule is refused with its status.
    """
    with pytest.raises(HandshakeError) as caught:
        checkExtendedConnect(fields)
    assert caught.value.status == status


def decide(
    fields: Sequence[tuple[str, str]], settings: ServerSettings, clients: int = 0
) -> AcceptedStream[str] | Refused:
    """
    Accept C{fields} against one resource at C{/chat} that allows
    C{https://example.com} and picks the last subprotocol offered.
    """

    def route(path: str) -> tuple[str, object] | None:
        if path != "/chat":
            return None
        return "chat", lambda origin: origin == "https://example.com"

    return acceptExtendedConnect(
        checkExtendedConnect(fields),
        settings,
        route,  # type: ignore[arg-type]
        clients,
        lambda resource, offered: offered[-1],
    )


def test_accepted() -> None:
    """
    An accepted stream's answer is header fields (no bytes, no
    C{Sec-WebSocket-Accept}): the subprotocol, and permessage-deflate when
    asked and configured.
    """
    fields = [*BASE, ("sec-websocket-extensions", "permessage-deflate")]
    verdict = decide(fields, ServerSettings(deflate=PerMessageDeflate()))
    assert isinstance(verdict, AcceptedStream)
    assert verdict.accepted.response == b""
    assert verdict.accepted.resource == "chat"
    assert verdict.headers[0] == ("sec-websocket-protocol", "b")
    assert verdict.headers[1][0] == "sec-websocket-extensions"
    assert verdict.headers[1][1].startswith("permessage-deflate")
    assert verdict.accepted.connection.version == 13


@pytest.mark.parametrize(
    ("fields", "clients", "status"),
    [
        (replaced(":path", "/other"), 0, 404),
        (replaced("origin", "https://evil"), 0, 403),
        (BASE, 5, 503),
    ],
)
def test_acceptanceRefusals(
    fields: Sequence[tuple[str, str]], clients: int, status: int
) -> None:
    """
    Routing, origin and C{maxClients} refuse as they do over HTTP/1.1.
    """
    verdict = decide(fields, ServerSettings(maxClients=5), clients)
    assert isinstance(verdict, Refused) and verdict.status == status
