"""
The client's opening handshake (RFC 6455 section 4.1), byte for byte: the
request, the checks of the server's answer, a refusal's status, headers
and body, and the HTTP CONNECT tunnel.  RFC 6455 1.3's worked key
(C{dGhlIHNhbXBsZSBub25jZQ==}, accepted as C{s3pPLMBiTxaQ9kYGzzhZRbK+xOo=})
is injected so the bytes are fixed.
"""

from __future__ import annotations

import base64

import pytest

from txclws._core.clientconnection import ClientConnection
from txclws._core.clientdeflate import DeflateOffer
from txclws._core.clienthandshake import (
    ClientOpening,
    ClientSettings,
    Opened,
    WebSocketURL,
    newHandshakeKey,
)
from txclws._core.clientproxy import ProxyTunnel
from txclws._core.errors import HandshakeFailed
from txclws._core.events import TextMessage

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def opening(url: str = "ws://example.com/chat", **settings: object) -> ClientOpening:
    """
    An opening handshake with RFC 6455's worked key.
    """
    return ClientOpening(
        WebSocketURL.parse(url),
        ClientSettings(**settings),  # type: ignore[arg-type]
        key=KEY,
        newMask=lambda: bytes(4),
    )


def response(*headers: str, status: str = "101 Switching Protocols") -> bytes:
    """
    A response head with C{headers}, each C{"Name: value"}.
    """
    return ("\r\n".join([f"HTTP/1.1 {status}", *headers]) + "\r\n\r\n").encode()


ACCEPTING = (
    "Upgrade: websocket",
    "Connection: Upgrade",
    f"Sec-WebSocket-Accept: {ACCEPT}",
)


class TestURL:
    """
    RFC 6455 section 3: ws and wss URIs.
    """

    @pytest.mark.parametrize(
        "url, expected",
        [
            ("ws://h/", WebSocketURL(False, "h", 80, "/")),
            ("ws://h", WebSocketURL(False, "h", 80, "/")),
            ("WSS://h:8443/a/b?x=1&y", WebSocketURL(True, "h", 8443, "/a/b?x=1&y")),
            ("ws://[::1]:9/p", WebSocketURL(False, "::1", 9, "/p")),
        ],
    )
    def test_parse(self, url: str, expected: WebSocketURL) -> None:
        """
        Scheme, host, port (80 and 443 by default) and resource name (the
        path and query; "/" when empty).
        """
        assert WebSocketURL.parse(url) == expected

    @pytest.mark.parametrize(
        "url", ["http://h/", "ws://h/#frag", "ws:///path", "ws://user@h/", "h/p"]
    )
    def test_refused(self, url: str) -> None:
        """
        Not ws/wss, a fragment (RFC 6455 3: MUST NOT), no host, userinfo.
        """
        with pytest.raises(ValueError):
            WebSocketURL.parse(url)

    def test_hostHeader(self) -> None:
        """
        The port appears in Host only when it is not the scheme's default.
        """
        assert WebSocketURL.parse("ws://h:80/").hostHeader == "h"
        assert WebSocketURL.parse("wss://h:443/").hostHeader == "h"
        assert WebSocketURL.parse("ws://h:443/").hostHeader == "h:443"
        assert WebSocketURL.parse("ws://[::1]/").hostHeader == "[::1]"
        assert WebSocketURL.parse("ws://[::1]:81/").authority == "[::1]:81"


class TestRequest:
    """
    RFC 6455 4.1: the request's bytes.
    """

    def test_minimal(self) -> None:
        """
        GET, Host, Upgrade, Connection, the key and version 13.
        """
        assert opening("ws://example.com/chat?x=1").request() == (
            b"GET /chat?x=1 HTTP/1.1\r\n"
            b"Host: example.com\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"\r\n"
        )

    def test_everything(self) -> None:
        """
        Origin, the subprotocols in order, the deflate offer with every
        RFC 7692 parameter, and extra headers after them.
        """
        offer = DeflateOffer(
            serverNoContextTakeover=True,
            clientNoContextTakeover=True,
            serverMaxWindowBits=10,
            clientMaxWindowBits=12,
        )
        request = opening(
            "ws://example.com:8080/",
            origin="http://example.com",
            subprotocols=("chat", "superchat"),
            deflate=offer,
            headers=(("Authorization", "Bearer x"),),
        ).request()
        assert request == (
            b"GET / HTTP/1.1\r\n"
            b"Host: example.com:8080\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"Origin: http://example.com\r\n"
            b"Sec-WebSocket-Protocol: chat, superchat\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate;"
            b" server_no_context_takeover; client_no_context_takeover;"
            b" server_max_window_bits=10; client_max_window_bits=12\r\n"
            b"Authorization: Bearer x\r\n"
            b"\r\n"
        )

    def test_randomKey(self) -> None:
        """
        RFC 6455 4.1: the key is 16 random bytes, base64: fresh each time.
        """
        assert len(base64.b64decode(newHandshakeKey())) == 16
        assert newHandshakeKey(lambda n: bytes(range(n))) == (
            "AAECAwQFBgcICQoLDA0ODw=="
        )
        first = ClientOpening(WebSocketURL.parse("ws://h/"), ClientSettings())
        second = ClientOpening(WebSocketURL.parse("ws://h/"), ClientSettings())
        assert first.key != second.key

    @pytest.mark.parametrize(
        "headers",
        [
            (("Sec-WebSocket-Key", "x"),),
            (("host", "other"),),
            (("Bad Name", "x"),),
            (("X", "a\r\nInjected: yes"),),
        ],
    )
    def test_badHeaders(self, headers: tuple[tuple[str, str], ...]) -> None:
        """
        Extra headers may not replace the handshake's own, nor carry a bad
        name or a line break.
        """
        with pytest.raises(ValueError):
            ClientSettings(headers=headers)

    def test_badSubprotocol(self) -> None:
        """
        A subprotocol is an HTTP token (RFC 6455 4.1).
        """
        with pytest.raises(ValueError):
            ClientSettings(subprotocols=("a b",))


class TestResponse:
    """
    RFC 6455 4.1: the client's checks of the server's response.
    """

    def test_accepted(self) -> None:
        """
        A valid 101 opens; the frames after it are left over, for the
        connection.
        """
        handshake = opening()
        opened = handshake.receiveData(response(*ACCEPTING) + b"\x81\x02hi")
        assert isinstance(opened, Opened)
        assert isinstance(opened.connection, ClientConnection)
        assert opened.subprotocol is None
        assert opened.headers["sec-websocket-accept"] == ACCEPT
        assert opened.connection.receiveData(opened.leftover) == [TextMessage("hi")]

    def test_byteByByte(self) -> None:
        """
        However the head is chunked, it opens once it is all there.
        """
        handshake = opening()
        data = response(*ACCEPTING)
        results = [handshake.receiveData(data[i : i + 1]) for i in range(len(data))]
        assert results[:-1] == [None] * (len(data) - 1)
        assert isinstance(results[-1], Opened)

    def test_caseInsensitive(self) -> None:
        """
        Upgrade and Connection compare case-insensitively, Connection as a
        token list (RFC 6455 4.1 items 2, 3).
        """
        opened = opening().receiveData(
            response(
                "upgrade: WebSocket",
                "connection: keep-alive, UPGRADE",
                f"sec-websocket-accept: {ACCEPT}",
            )
        )
        assert isinstance(opened, Opened)

    @pytest.mark.parametrize(
        "headers, reason",
        [
            (ACCEPTING[1:], "Upgrade is not websocket"),
            ((ACCEPTING[0], ACCEPTING[2]), "Connection has no upgrade"),
            (ACCEPTING[:2], "Sec-WebSocket-Accept does not match"),
            (
                (*ACCEPTING[:2], "Sec-WebSocket-Accept: x3JJHMbDL1EzLkh9GBhXDw=="),
                "Sec-WebSocket-Accept does not match",
            ),
            (
                (*ACCEPTING, "Sec-WebSocket-Protocol: chat"),
                "subprotocol 'chat', not offered",
            ),
            (
                (*ACCEPTING, "Sec-WebSocket-Extensions: permessage-deflate"),
                "extension not offered",
            ),
        ],
        ids=["upgrade", "connection", "no-accept", "wrong-accept", "proto", "ext"],
    )
    def test_invalid(self, headers: tuple[str, ...], reason: str) -> None:
        """
        RFC 6455 4.1: "If the status code received from the server is not
        101 ... the client MUST _Fail the WebSocket Connection_", and so for
        each header check.  The failure carries the status and headers.
        """
        with pytest.raises(HandshakeFailed) as caught:
            opening().receiveData(response(*headers))
        assert reason in caught.value.reason
        assert caught.value.status == 101

    def test_subprotocolChosen(self) -> None:
        """
        The server picks one of those offered.
        """
        handshake = opening(subprotocols=("a", "b"))
        opened = handshake.receiveData(
            response(*ACCEPTING, "Sec-WebSocket-Protocol: b")
        )
        assert isinstance(opened, Opened) and opened.subprotocol == "b"

    def test_twoSubprotocols(self) -> None:
        """
        More than one Sec-WebSocket-Protocol is no choice.
        """
        with pytest.raises(HandshakeFailed):
            opening(subprotocols=("a", "b")).receiveData(
                response(
                    *ACCEPTING,
                    "Sec-WebSocket-Protocol: a",
                    "Sec-WebSocket-Protocol: b",
                )
            )

    def test_refusalWithBody(self) -> None:
        """
        A refusal is reported with its status, headers and body, read up to
        its Content-Length.
        """
        handshake = opening()
        head = response(
            "Content-Type: text/plain",
            "Content-Length: 9",
            status="403 Forbidden",
        )
        assert handshake.receiveData(head + b"forb") is None
        with pytest.raises(HandshakeFailed) as caught:
            handshake.receiveData(b"idden")
        failure = caught.value
        assert failure.status == 403
        assert failure.headers["content-type"] == "text/plain"
        assert failure.body == b"forbidden"
        assert str(failure) == "the server refused the handshake: 403 Forbidden"

    def test_refusalUntilEOF(self) -> None:
        """
        A refusal with no Content-Length is read until the connection ends.
        """
        handshake = opening()
        assert handshake.receiveData(response(status="400 Bad") + b"why") is None
        with pytest.raises(HandshakeFailed) as caught:
            handshake.receiveEOF()
        assert (caught.value.status, caught.value.body) == (400, b"why")

    def test_eofBeforeAnswer(self) -> None:
        """
        A server that closes without answering fails the handshake, with no
        status.
        """
        handshake = opening()
        handshake.receiveData(b"HTTP/1.1 10")
        with pytest.raises(HandshakeFailed) as caught:
            handshake.receiveEOF()
        assert caught.value.status is None

    @pytest.mark.parametrize(
        "head", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 101 OK\r\nbad line\r\n\r\n"]
    )
    def test_notHTTP(self, head: bytes) -> None:
        """
        An answer that is not an HTTP/1.1 response head fails.
        """
        with pytest.raises(HandshakeFailed):
            opening().receiveData(head)

    def test_headTooLarge(self) -> None:
        """
        A response head is bounded (64 KiB).
        """
        handshake = opening()
        handshake.receiveData(b"HTTP/1.1 101 OK\r\n")
        with pytest.raises(HandshakeFailed):
            for _ in range(100):
                handshake.receiveData(b"X-Filler: " + b"a" * 1000 + b"\r\n")


class TestProxyTunnel:
    """
    HTTP CONNECT (RFC 9110 9.3.6).
    """

    def test_request(self) -> None:
        """
        CONNECT names the authority, in the request line and Host.
        """
        tunnel = ProxyTunnel("example.com:443", (("Proxy-Authorization", "Basic x"),))
        assert tunnel.request() == (
            b"CONNECT example.com:443 HTTP/1.1\r\n"
            b"Host: example.com:443\r\n"
            b"Proxy-Authorization: Basic x\r\n"
            b"\r\n"
        )

    def test_open(self) -> None:
        """
        A 2xx opens the tunnel, in pieces.
        """
        tunnel = ProxyTunnel("h:80")
        assert tunnel.receiveData(b"HTTP/1.1 200 Connection") is None
        assert tunnel.receiveData(b" established\r\n\r\n") == b""

    def test_refused(self) -> None:
        """
        Any other status fails, with the proxy's status and headers.
        """
        with pytest.raises(HandshakeFailed) as caught:
            ProxyTunnel("h:80").receiveData(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b"Proxy-Authenticate: Basic\r\n\r\n"
            )
        assert caught.value.status == 407
        assert caught.value.headers["proxy-authenticate"] == "Basic"
