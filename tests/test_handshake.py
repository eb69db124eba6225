"""
Tests for L{txclws._core.handshake}: the server side of the opening handshake
(RFC 6455 section 4), over bytes.
"""

from __future__ import annotations

import pytest

from txclws._core.errors import HandshakeError
from txclws._core.handshake import (
    SUPPORTED_VERSIONS,
    ClientHandshake,
    acceptKey,
    checkUpgrade,
)
from txclws._core.request import (
    HandshakeRequest,
    RequestHeaders,
    RequestHeadReader,
    parseRequestHead,
)
from txclws._core.responses import acceptResponse, rejectResponse

#: The RFC 6455 section 1.3 client key and the server's answer to it.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#: The header lines of the RFC 6455 section 1.3 example request.
RFC_HEADERS = (
    "Host: server.example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    f"Sec-WebSocket-Key: {RFC_KEY}",
    "Origin: http://example.com",
    "Sec-WebSocket-Protocol: chat, superchat",
    "Sec-WebSocket-Version: 13",
)


def head(*lines: str, requestLine: str = "GET /chat HTTP/1.1") -> bytes:
    """
    A request head (no final empty line) from a request line and headers.
    """
    return "\r\n".join((requestLine, *lines)).encode("latin-1")


def replaced(name: str, *new: str) -> tuple[str, ...]:
    """
    The RFC example's header lines without the C{name} header, plus C{new}.
    """
    kept = tuple(h for h in RFC_HEADERS if not h.lower().startswith(name.lower() + ":"))
    return kept + new


def handshake(*lines: str, requestLine: str = "GET /chat HTTP/1.1") -> ClientHandshake:
    """
    Parse and check a request head.
    """
    return checkUpgrade(parseRequestHead(head(*lines, requestLine=requestLine)))


def refusal(*lines: str, requestLine: str = "GET /chat HTTP/1.1") -> HandshakeError:
    """
    The error that refuses a request head, from parsing or checking.
    """
    with pytest.raises(HandshakeError) as info:
        handshake(*lines, requestLine=requestLine)
    return info.value


class TestAcceptKey:
    """
    RFC 6455 sections 1.3 and 4.2.2: the Sec-WebSocket-Accept value.
    """

    def test_rfcExample(self) -> None:
        """
        The RFC's sample nonce gives the RFC's accept value.
        """
        assert acceptKey(RFC_KEY) == RFC_ACCEPT

    def test_rfcExampleHandshake(self) -> None:
        """
        The RFC's whole example request is accepted with what it asks.
        """
        client = handshake(*RFC_HEADERS)
        assert client.key == RFC_KEY
        assert client.version == 13
        assert client.origin == "http://example.com"
        assert client.subprotocols == ("chat", "superchat")
        assert client.request.path == "/chat"
        assert client.request.method == "GET"
        assert client.request.httpVersion == (1, 1)


class TestAcceptResponse:
    """
    RFC 6455 section 4.2.2: the 101 answer, byte for byte.
    """

    def test_minimal(self) -> None:
        """
        Status line, Upgrade, Connection and Accept, then the empty line.
        """
        assert acceptResponse(RFC_KEY) == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"\r\n"
        )

    def test_allHeaders(self) -> None:
        """
        The chosen subprotocol, extensions and extra headers follow, in that
        order.
        """
        response = acceptResponse(
            RFC_KEY,
            subprotocol="chat",
            extensions="permessage-deflate",
            extraHeaders=(("Set-Cookie", "a=b"), ("X-Served-By", "txclws")),
        )
        assert response == (
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"Sec-WebSocket-Protocol: chat\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
            b"Set-Cookie: a=b\r\n"
            b"X-Served-By: txclws\r\n"
            b"\r\n"
        )

    def test_emptyExtensionsOmitted(self) -> None:
        """
        An empty extensions value sends no Sec-WebSocket-Extensions header.
        """
        assert b"Extensions" not in acceptResponse(RFC_KEY, extensions="")


class TestRejectResponse:
    """
    A refusal is a complete HTTP response with a plain-text reason, after
    which the connection is closed.
    """

    def test_byteExact426(self) -> None:
        """
        A 426 carries Upgrade and the versions we speak (RFC 6455 4.4).
        """
        error = HandshakeError(
            426,
            "use a WebSocket client",
            (("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13, 8, 7")),
        )
        body = b"use a WebSocket client\n"
        assert rejectResponse(error) == (
            b"HTTP/1.1 426 Upgrade Required\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 23\r\n"
            b"Connection: close\r\n"
            b"Upgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13, 8, 7\r\n"
            b"\r\n" + body
        )
        assert len(body) == 23

    def test_contentLengthCountsUtf8Bytes(self) -> None:
        """
        The body is UTF-8 and Content-Length counts its bytes.
        """
        response = rejectResponse(HandshakeError(400, "caf\u00e9"))
        assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert b"Content-Length: 6\r\n" in response
        assert response.endswith(b"\r\n\r\ncaf\xc3\xa9\n")

    def test_unknownStatus(self) -> None:
        """
        A status without a known phrase still gives a well-formed line.
        """
        response = rejectResponse(HandshakeError(418, "teapot"))
        assert response.startswith(b"HTTP/1.1 418 Error\r\n")

    def test_fromRefusal(self) -> None:
        """
        The 426 for a missing Upgrade header renders with both its headers.
        """
        response = rejectResponse(refusal(*replaced("Upgrade")))
        assert response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
        assert b"\r\nUpgrade: websocket\r\n" in response
        assert b"\r\nSec-WebSocket-Version: 13, 8, 7\r\n" in response
        assert b"\r\nConnection: close\r\n" in response


class TestRequestLine:
    """
    RFC 6455 section 4.2.1 items 1 and 2: an HTTP/1.1 GET with an absolute
    path.
    """

    @pytest.mark.parametrize("method", ["POST", "PUT", "HEAD", "get"])
    def test_notGet(self, method: str) -> None:
        """
        Any method but GET (case-sensitive) is refused with 405 and Allow.
        """
        error = refusal(*RFC_HEADERS, requestLine=f"{method} /chat HTTP/1.1")
        assert error.status == 405
        assert ("Allow", "GET") in error.headers

    def test_http10(self) -> None:
        """
        HTTP/1.0 cannot upgrade: 400.
        """
        assert refusal(*RFC_HEADERS, requestLine="GET /chat HTTP/1.0").status == 400

    @pytest.mark.parametrize("version", ["2.0", "3.0", "0.9"])
    def test_otherMajorVersion(self, version: str) -> None:
        """
        A major version other than 1 is 505.
        """
        requestLine = f"GET /chat HTTP/{version}"
        assert refusal(*RFC_HEADERS, requestLine=requestLine).status == 505

    @pytest.mark.parametrize(
        "requestLine",
        [
            "",
            "garbage",
            "GET /chat",
            "GET /chat HTTP/1.1 extra",
            "GET  /chat HTTP/1.1",
            "GET /chat  HTTP/1.1",
            "GET /chat HTTP/11",
            "GET /chat HTTP/1.10",
            "GET /chat http/1.1",
            "G@T /chat HTTP/1.1",
            "\x00GET /chat HTTP/1.1",
        ],
    )
    def test_garbageRequestLine(self, requestLine: str) -> None:
        """
        A request line that is not C{method SP target SP HTTP/d.d} is 400.
        """
        assert refusal(*RFC_HEADERS, requestLine=requestLine).status == 400

    @pytest.mark.parametrize(
        "target",
        [
            "chat",
            "*",
            "server.example.com:80",
            "/chat#frag",
            "http://server.example.com/chat#frag",
            "ftp://server.example.com/chat",
            "http:/chat",
            "http:///chat",
            "http://user@server.example.com/chat",
            "http://server.example.com:8x/chat",
            "http://server.example.com chat",
            "urn:chat",
        ],
    )
    def test_targetNotAbsolutePath(self, target: str) -> None:
        """
        RFC 6455 section 3: the resource name is an absolute path and has no
        fragment; a target that is neither that (origin form) nor an
        http, https, ws or wss URI (absolute form) is 400: the asterisk and
        authority forms, other schemes, no authority, userinfo (RFC 9110
        4.2.4), a bad port.
        """
        error = refusal(*RFC_HEADERS, requestLine=f"GET {target} HTTP/1.1")
        assert error.status == 400

    @pytest.mark.parametrize(
        ("target", "path", "query"),
        [
            ("/chat", "/chat", None),
            ("/chat?room=1&x=2", "/chat", "room=1&x=2"),
            ("/chat?", "/chat", ""),
            ("/a?b?c", "/a", "b?c"),
            ("/", "/", None),
        ],
    )
    def test_querySplit(self, target: str, path: str, query: str | None) -> None:
        """
        The target splits at its first C{?}; no C{?} means no query at all
        (L{None}), unlike an empty one.
        """
        request = parseRequestHead(head(requestLine=f"GET {target} HTTP/1.1"))
        assert (request.target, request.path, request.query) == (target, path, query)


class TestAbsoluteForm:
    """
    Issue 11, defect 7: RFC 9112 section 3.2.2 (and RFC 6455 4.2.1): a
    server accepts a target in absolute form; its path and query are the
    resource, as they would be in origin form.
    """

    @pytest.mark.parametrize(
        ("target", "authority", "origin", "path", "query"),
        [
            ("http://127.0.0.1/echo", "127.0.0.1", "/echo", "/echo", None),
            (
                "http://127.0.0.1:8080/echo?a=1",
                "127.0.0.1:8080",
                "/echo?a=1",
                "/echo",
                "a=1",
            ),
            ("HTTP://Example.COM/echo", "Example.COM", "/echo", "/echo", None),
            ("https://example.com/a/b?", "example.com", "/a/b?", "/a/b", ""),
            ("ws://example.com/chat", "example.com", "/chat", "/chat", None),
            ("wss://[::1]:443/chat?x", "[::1]:443", "/chat?x", "/chat", "x"),
            ("ws://example.com", "example.com", "/", "/", None),
            ("ws://example.com?q=1", "example.com", "/?q=1", "/", "q=1"),
            ("http://example.com:/echo", "example.com:", "/echo", "/echo", None),
        ],
    )
    def test_accepted(
        self, target: str, authority: str, origin: str, path: str, query: str | None
    ) -> None:
        """
        The authority is kept apart; the target, path and query are those
        of the origin form (an empty path is C{/}, RFC 6455 section 3).
        """
        request = parseRequestHead(head(requestLine=f"GET {target} HTTP/1.1"))
        assert (request.authority, request.target, request.path, request.query) == (
            authority,
            origin,
            path,
            query,
        )

    def test_sameUpgradeAsOriginForm(self) -> None:
        """
        The RFC 6455 section 1.3 request with an absolute-form target is
        the same upgrade as with its origin form.
        """
        absolute = handshake(
            *RFC_HEADERS, requestLine="GET http://server.example.com/chat HTTP/1.1"
        )
        origin = handshake(*RFC_HEADERS)
        assert absolute.request.authority == "server.example.com"
        assert origin.request.authority is None
        assert (absolute.key, absolute.version, absolute.request.path) == (
            origin.key,
            origin.version,
            origin.request.path,
        )

    def test_originFormHasNoAuthority(self) -> None:
        """
        A target that starts with C{//} is an origin-form path, not an
        authority.
        """
        request = parseRequestHead(head(requestLine="GET //echo HTTP/1.1"))
        assert (request.authority, request.path) == (None, "//echo")


#: The header lines of a hixie-76 request (draft section 1.3's keys).
HIXIE_HEADERS = (
    "Host: example.com",
    "Upgrade: WebSocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5",
    "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00",
)


class TestNonAsciiTarget:
    """
    Issue 11, defect 6: a request target with an octet that is not visible
    US-ASCII (RFC 9112 section 3.2, RFC 3986 section 2: such octets are
    percent-encoded) is 400, the same for every protocol version, before
    anything is built from it.
    """

    @pytest.mark.parametrize(
        "lines",
        [
            RFC_HEADERS,
            replaced("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8"),
            HIXIE_HEADERS,
        ],
        ids=["13", "8", "hixie-76"],
    )
    @pytest.mark.parametrize(
        "target",
        [b"/echo?\xe9", b"/\xc3\xa9", b"/echo\x7f", b"/e\x01cho", b"http://h/\xe9"],
    )
    def test_refused(self, lines: tuple[str, ...], target: bytes) -> None:
        """
        Whatever the version asked for, the head is refused with 400.
        """
        data = b"GET " + target + b" HTTP/1.1\r\n" + "\r\n".join(lines).encode()
        with pytest.raises(HandshakeError) as info:
            checkUpgrade(parseRequestHead(data), allowHixie76=True)
        assert info.value.status == 400

    def test_percentEncodedAccepted(self) -> None:
        """
        The same target percent-encoded is fine, and kept as sent.
        """
        request = parseRequestHead(head(requestLine="GET /echo?%E9 HTTP/1.1"))
        assert (request.path, request.query) == ("/echo", "%E9")


class TestHeaderLines:
    """
    RFC 9112 section 5: header field syntax.
    """

    def test_obsFold(self) -> None:
        """
        An obsolete folded continuation line is refused with 400.
        """
        lines = (*RFC_HEADERS, "X-Long: first", " second part")
        assert refusal(*lines).status == 400

    def test_obsFoldWithColon(self) -> None:
        """
        A folded line that happens to hold a colon is refused too.
        """
        lines = (*RFC_HEADERS, "X-Long: first", "\tsecond: part")
        assert refusal(*lines).status == 400

    @pytest.mark.parametrize(
        "line", ["NoColon", ": empty-name", "Bad Name: x", "Host : x", "H(st: x"]
    )
    def test_malformedLine(self, line: str) -> None:
        """
        A line without a colon or with a name that is not a token is 400.
        """
        assert refusal(*RFC_HEADERS, line).status == 400

    @pytest.mark.parametrize("char", ["\x00", "\x01", "\x1f", "\x7f", "\n"])
    def test_controlCharInValue(self, char: str) -> None:
        """
        A control character (other than tab) in a value is 400.
        """
        assert refusal(*RFC_HEADERS, f"X-Bad: a{char}b").status == 400

    def test_tabAndHighBytesInValue(self) -> None:
        """
        Tabs and bytes 0x80-0xFF are allowed in a value; surrounding spaces
        and tabs are stripped; values are read as Latin-1.
        """
        request = parseRequestHead(head("X-Ok: \t a\tb \xe9 \t"))
        assert request.headers["X-Ok"] == "a\tb \xe9"

    def test_tooManyHeaders(self) -> None:
        """
        More than C{maxHeaders} header lines are refused with 431; exactly
        C{maxHeaders} are fine.
        """
        lines = [f"X-H{i}: v" for i in range(4)]
        assert len(parseRequestHead(head(*lines[:3]), maxHeaders=3).headers) == 3
        with pytest.raises(HandshakeError) as info:
            parseRequestHead(head(*lines), maxHeaders=3)
        assert info.value.status == 431


class TestUpgradeHeaders:
    """
    RFC 6455 section 4.2.1 items 2-6: Host, Upgrade, Connection, key and
    version.
    """

    def test_missingHost(self) -> None:
        """
        No Host header: 400.
        """
        assert refusal(*replaced("Host")).status == 400

    def test_twoHosts(self) -> None:
        """
        Two Host headers: 400.
        """
        assert refusal(*RFC_HEADERS, "Host: other.example.com").status == 400

    def test_noUpgrade(self) -> None:
        """
        No Upgrade header: 426 naming the protocol and the versions we speak,
        so a plain HTTP client learns what the resource is.
        """
        error = refusal(*replaced("Upgrade"))
        assert error.status == 426
        assert error.headers == (
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13, 8, 7"),
        )

    def test_upgradeToSomethingElse(self) -> None:
        """
        An Upgrade to another protocol: 426.
        """
        assert refusal(*replaced("Upgrade", "Upgrade: h2c")).status == 426

    @pytest.mark.parametrize("value", ["WebSocket", "WEBSOCKET", "foo, websocket"])
    def test_upgradeCaseInsensitive(self, value: str) -> None:
        """
        The Upgrade token is compared case-insensitively, within a list.
        """
        assert handshake(*replaced("Upgrade", f"Upgrade: {value}")).version == 13

    @pytest.mark.parametrize(
        "value", ["keep-alive, Upgrade", "upgrade", "UPGRADE", "Upgrade,keep-alive"]
    )
    def test_connectionTokenList(self, value: str) -> None:
        """
        Connection is a token list; "upgrade" in it, in any case, suffices.
        """
        lines = replaced("Connection", f"Connection: {value}")
        assert handshake(*lines).key == RFC_KEY

    def test_connectionSplitAcrossHeaders(self) -> None:
        """
        Connection tokens in repeated headers count too.
        """
        lines = replaced("Connection", "Connection: keep-alive", "Connection: Upgrade")
        assert handshake(*lines).key == RFC_KEY

    @pytest.mark.parametrize("value", ["keep-alive", "close", "upgrades", ""])
    def test_connectionWithoutUpgrade(self, value: str) -> None:
        """
        A Connection header without the "upgrade" token: 400.
        """
        lines = replaced("Connection", f"Connection: {value}")
        assert refusal(*lines).status == 400

    def test_noConnection(self) -> None:
        """
        No Connection header: 400.
        """
        assert refusal(*replaced("Connection")).status == 400

    def test_missingKey(self) -> None:
        """
        No Sec-WebSocket-Key: 400.
        """
        assert refusal(*replaced("Sec-WebSocket-Key")).status == 400

    def test_twoKeys(self) -> None:
        """
        Two Sec-WebSocket-Key headers: 400.
        """
        extra = "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="
        assert refusal(*RFC_HEADERS, extra).status == 400

    @pytest.mark.parametrize(
        "key",
        [
            "not base64 at all!",
            "dGhlIHNhbXBsZSBub25jZQ",  # 16 bytes, padding missing
            "dGhlIHNhbXBsZSBub25j",  # 15 bytes
            "dGhlIHNhbXBsZSBub25jZXM=",  # 17 bytes
            "",
            "dGhlIHNhbXBsZSBub25jZQ==\xe9",
        ],
    )
    def test_badKey(self, key: str) -> None:
        """
        A key that is not the base64 of exactly 16 bytes: 400.
        """
        error = refusal(*replaced("Sec-WebSocket-Key", f"Sec-WebSocket-Key: {key}"))
        assert error.status == 400

    @pytest.mark.parametrize(
        "value", ["12", "14", "0", "abc", "13, 8", "-13", "\xb9\xb3", "\xb2"]
    )
    def test_unsupportedVersion(self, value: str) -> None:
        """
        A version we do not speak: 426 listing ours (RFC 6455 section 4.4),
        including Latin-1 superscript digits, which C{str.isdigit} accepts
        but C{int} does not.
        """
        lines = replaced("Sec-WebSocket-Version", f"Sec-WebSocket-Version: {value}")
        error = refusal(*lines)
        assert error.status == 426
        assert error.headers == (("Sec-WebSocket-Version", "13, 8, 7"),)

    def test_missingVersion(self) -> None:
        """
        No version: 426 listing ours.
        """
        error = refusal(*replaced("Sec-WebSocket-Version"))
        assert error.status == 426
        assert ("Sec-WebSocket-Version", "13, 8, 7") in error.headers

    def test_supportedVersions(self) -> None:
        """
        We speak 13, 8 and 7, newest first.
        """
        assert SUPPORTED_VERSIONS == (13, 8, 7)


class TestOriginAndSubprotocols:
    """
    RFC 6455 section 4.2.1 items 7-8 (and hybi-07/08's Sec-WebSocket-Origin).
    """

    def test_originForVersion13(self) -> None:
        """
        Version 13 takes the origin from Origin and ignores
        Sec-WebSocket-Origin.
        """
        lines = (*RFC_HEADERS, "Sec-WebSocket-Origin: http://other.example")
        assert handshake(*lines).origin == "http://example.com"
        lines = (*replaced("Origin"), "Sec-WebSocket-Origin: http://other.example")
        assert handshake(*lines).origin is None

    @pytest.mark.parametrize("version", ["7", "8"])
    def test_originForHybi(self, version: str) -> None:
        """
        Versions 7 and 8 are accepted and take the origin from
        Sec-WebSocket-Origin.
        """
        lines = replaced(
            "Sec-WebSocket-Version",
            f"Sec-WebSocket-Version: {version}",
            "Sec-WebSocket-Origin: http://hybi.example",
        )
        client = handshake(*lines)
        assert client.version == int(version)
        assert client.origin == "http://hybi.example"

    def test_hybiFallsBackToOrigin(self) -> None:
        """
        A version 8 client that sends only Origin has that origin.
        """
        lines = replaced("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")
        assert handshake(*lines).origin == "http://example.com"

    def test_noOrigin(self) -> None:
        """
        A client that declares no origin has L{None}.
        """
        assert handshake(*replaced("Origin")).origin is None

    def test_subprotocolsInOrder(self) -> None:
        """
        Subprotocols keep the client's order of preference, across repeated
        headers, without empty elements.
        """
        lines = replaced(
            "Sec-WebSocket-Protocol",
            "Sec-WebSocket-Protocol: b, a",
            "Sec-WebSocket-Protocol: ,c ,, d",
        )
        assert handshake(*lines).subprotocols == ("b", "a", "c", "d")

    def test_noSubprotocols(self) -> None:
        """
        No Sec-WebSocket-Protocol gives an empty tuple.
        """
        assert handshake(*replaced("Sec-WebSocket-Protocol")).subprotocols == ()


class TestRequestHeaders:
    """
    L{RequestHeaders}: case-insensitive, repeated headers joined with ", "
    (RFC 9110 section 5.3).
    """

    RAW = (("Host", "a"), ("X-Rep", "1"), ("x-rep", "2"), ("X-REP", "3, 4"))

    def test_caseInsensitive(self) -> None:
        """
        Any spelling of a name finds it.
        """
        headers = RequestHeaders(self.RAW)
        assert headers["host"] == headers["HOST"] == headers["Host"] == "a"
        assert "hOsT" in headers
        assert headers.get("HOST") == "a"

    def test_repeatsJoined(self) -> None:
        """
        Repeated headers are joined with ", " in order.
        """
        assert RequestHeaders(self.RAW)["X-Rep"] == "1, 2, 3, 4"

    def test_countAndTokens(self) -> None:
        """
        C{count} counts the lines, C{tokens} splits the joined list.
        """
        headers = RequestHeaders(self.RAW)
        assert headers.count("X-REP") == 3
        assert headers.count("Missing") == 0
        assert headers.tokens("x-rep") == ["1", "2", "3", "4"]
        assert headers.tokens("Missing") == []

    def test_mappingProtocol(self) -> None:
        """
        It is a mapping over lowercase names; C{raw} keeps the lines as sent.
        """
        headers = RequestHeaders(self.RAW)
        assert len(headers) == 2
        assert sorted(headers) == ["host", "x-rep"]
        assert headers.raw == self.RAW
        assert 42 not in headers
        with pytest.raises(KeyError):
            headers["Missing"]

    def test_parsedHeaders(self) -> None:
        """
        L{parseRequestHead} fills L{RequestHeaders} from the lines.
        """
        request = parseRequestHead(head("Host: h", "X-A: 1", "x-a: 2"))
        assert isinstance(request, HandshakeRequest)
        assert request.headers["X-A"] == "1, 2"
        assert request.headers.raw == (("Host", "h"), ("X-A", "1"), ("x-a", "2"))


class TestRequestHeadReader:
    """
    L{RequestHeadReader}: collecting a request head within a size bound,
    however it is chunked.
    """

    HEAD = head(*RFC_HEADERS)

    def test_oneChunk(self) -> None:
        """
        A head and its terminator in one chunk give the head.
        """
        reader = RequestHeadReader(4096)
        assert reader.feed(self.HEAD + b"\r\n\r\n") == self.HEAD
        assert reader.leftover == b""

    def test_byteByByte(self) -> None:
        """
        Fed one byte at a time, nothing is returned until the last byte of
        the terminator, which gives the head.
        """
        reader = RequestHeadReader(4096)
        data = self.HEAD + b"\r\n\r\n"
        for index in range(len(data) - 1):
            assert reader.feed(data[index : index + 1]) is None
        assert reader.feed(data[-1:]) == self.HEAD

    def test_leftoverKept(self) -> None:
        """
        Bytes after the terminator (a client's first frame) are kept.
        """
        frame = bytes.fromhex("818537fa213d7f9f4d5158")
        reader = RequestHeadReader(4096)
        assert reader.feed(self.HEAD + b"\r\n\r\n" + frame) == self.HEAD
        assert reader.leftover == frame

    def test_leftoverAfterSplitTerminator(self) -> None:
        """
        With the terminator split across feeds, the bytes after it are kept.
        """
        reader = RequestHeadReader(4096)
        assert reader.feed(self.HEAD + b"\r\n") is None
        assert reader.feed(b"\r\nrest") == self.HEAD
        assert reader.leftover == b"rest"

    @pytest.mark.parametrize("split", [1, 2, 3])
    def test_headAtLimitSplitTerminator(self, split: int) -> None:
        """
        A head of exactly C{maxSize} bytes is accepted with its terminator in
        one chunk or split at any point (the verdict must not depend on the
        chunking).
        """
        data = self.HEAD + b"\r\n\r\n"
        reader = RequestHeadReader(len(self.HEAD))
        assert reader.feed(data[: len(self.HEAD) + split]) is None
        assert reader.feed(data[len(self.HEAD) + split :]) == self.HEAD
        assert RequestHeadReader(len(self.HEAD)).feed(data) == self.HEAD

    @pytest.mark.parametrize("split", [0, 1, 2, 3, 4])
    def test_headOverLimit(self, split: int) -> None:
        """
        A head one byte over C{maxSize} is refused with 431 when its
        terminator arrives, whole or split.
        """
        data = self.HEAD + b"\r\n\r\n"
        reader = RequestHeadReader(len(self.HEAD) - 1)
        with pytest.raises(HandshakeError) as info:
            reader.feed(data[: len(self.HEAD) + split])
            reader.feed(data[len(self.HEAD) + split :])
        assert info.value.status == 431

    def test_overLimitWithoutTerminator(self) -> None:
        """
        Bytes with no terminator are refused with 431 as soon as no head
        within C{maxSize} can come of them, without waiting for the end.
        """
        reader = RequestHeadReader(100)
        assert reader.feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 84) is None  # 103 bytes
        with pytest.raises(HandshakeError) as info:
            reader.feed(b"a")
        assert info.value.status == 431
        assert rejectResponse(info.value).startswith(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        )

    def test_hugeChunkWithoutTerminator(self) -> None:
        """
        One huge chunk with no terminator is refused at once.
        """
        with pytest.raises(HandshakeError) as info:
            RequestHeadReader(8192).feed(b"A" * 100_000)
        assert info.value.status == 431


class TestHixie76Request:
    """
    A draft-hixie-76 request (two keys, no version) is version 0, accepted
    only when enabled, and otherwise refused from its head alone.
    """

    LINES = (
        "Host: server.example.com",
        "Upgrade: WebSocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5",
        "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00",
        "Origin: http://example.com",
    )

    def test_refusedByDefault(self) -> None:
        """
        Without C{allowHixie76} the request is 426, listing our versions.
        """
        with pytest.raises(HandshakeError) as info:
            checkUpgrade(parseRequestHead(head(*self.LINES)))
        assert info.value.status == 426
        assert ("Sec-WebSocket-Version", "13, 8, 7") in info.value.headers

    def test_acceptedWhenEnabled(self) -> None:
        """
        With C{allowHixie76} it is version 0 carrying both keys.
        """
        client = checkUpgrade(parseRequestHead(head(*self.LINES)), allowHixie76=True)
        assert client.version == 0
        assert client.origin == "http://example.com"
        assert client.hixieKeys == ("4 @1  46546xW%0l 1 5", "12998 5 Y3 1  .P00")

    def test_missingKey2(self) -> None:
        """
        Key1 without Key2 is 400.
        """
        lines = self.LINES[:4] + self.LINES[5:]
        with pytest.raises(HandshakeError) as info:
            checkUpgrade(parseRequestHead(head(*lines)), allowHixie76=True)
        assert info.value.status == 400


def test_headerNamesShared() -> None:
    """
    Two requests' parsed headers share the strings of their names, as
    sent and in lower case, rather than a copy each: every open client
    keeps its headers (C{connectionHeaders}), and the names were about
    0.7 KiB of each idle connection.  A name outside the table is its own
    string, and lookups are unchanged.
    """

    def parsed() -> RequestHeaders:
        head = (
            b"GET /r HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
            b"connection: Upgrade\r\nOrigin: http://a\r\nX-Custom: 1"
        )
        return parseRequestHead(head).headers

    first, second = parsed(), parsed()
    for (name, _), (again, _) in zip(first.raw, second.raw, strict=True):
        assert (name is again) == (name != "X-Custom"), name
    for key, again in zip(first, second, strict=True):
        assert (key is again) == (key != "x-custom"), key
    assert [name for name, _ in first.raw][:3] == ["Host", "Upgrade", "connection"]
    assert first["CONNECTION"] == "Upgrade" and first["x-custom"] == "1"
