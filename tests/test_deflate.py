"""
Tests for L{txclws._core.deflate}: permessage-deflate (RFC 7692) negotiation of
every parameter, the codec (compression with and without context takeover,
bounded inflate), and L{txclws._core.reader.MessageReader} fed compressed
messages.

Client data is compressed here with C{zlib} directly, as a client would
(RFC 7692 section 7.2.1: raw deflate, a sync flush, the final
C{00 00 ff ff} removed), so that the codec is never checked against itself.
"""

from __future__ import annotations

import itertools
import os
import random
import tracemalloc
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from tests._frames_helpers import (
    BINARY,
    CONT,
    PING,
    TEXT,
    clientFrame,
    parseServerFrames,
)
from tests._rawsocket import upgradeRequest
from tests.conftest import RecordingResource
from txclws import ResourceRegistry, WebSocketFactory, anyOrigin
from txclws._core.connection import WebSocketConnection
from txclws._core.deflate import (
    DeflateCodec,
    DeflateParameters,
    PerMessageDeflate,
    parseExtensions,
)
from txclws._core.errors import InvalidPayload, MessageTooBig
from txclws._core.events import BinaryMessage, ConnectionFailed, TextMessage
from txclws._core.reader import MessageReader

#: What a sync flush ends with, and a permessage-deflate sender removes.
TRAILER = b"\x00\x00\xff\xff"

MIB = 1 << 20

#: Repetitive text, the kind of message compression is for.
JSON = b'{"type": "update", "symbol": "TXC", "price": 101.25, "volume": 300}'


#: zlib's own maxima (15-bit windows both ways, memLevel 8), which the
#: negotiation tests start from; the defaults are tested on their own.
WIDEST: dict[str, Any] = {
    "serverMaxWindowBits": 15,
    "clientMaxWindowBits": 15,
    "memLevel": 8,
}


def negotiate(header: str | None, **policy: Any) -> tuple[str, DeflateParameters]:
    """
    Negotiate C{header} under a L{PerMessageDeflate}C{(**policy)}, which
    must accept it (policy defaults to L{WIDEST}).
    """
    result = PerMessageDeflate(**{**WIDEST, **policy}).negotiate(header)
    assert result is not None, header
    return result


def declined(header: str | None, **policy: Any) -> bool:
    """
    Whether a L{PerMessageDeflate}C{(**policy)} declines every offer in
    C{header}.
    """
    return PerMessageDeflate(**{**WIDEST, **policy}).negotiate(header) is None


def clientCompressor(bits: int = 15) -> Any:
    """
    A raw deflate compressor, as a permessage-deflate client keeps.
    """
    return zlib.compressobj(6, zlib.DEFLATED, -bits)


def clientCompress(compressor: Any, data: bytes) -> bytes:
    """
    One message compressed as RFC 7692 section 7.2.1 says: a sync flush,
    less its final C{00 00 ff ff}.
    """
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TRAILER)
    return out[:-4]


def inflate(payload: bytes, inflater: Any = None) -> bytes:
    """
    Inflate one server message as a client would (RFC 7692 section 7.2.2),
    with a fresh inflater unless one is given.
    """
    if inflater is None:
        inflater = zlib.decompressobj(-15)
    return bytes(inflater.decompress(payload + TRAILER))


def windowInflate(payload: bytes, bits: int, inflater: Any = None) -> bytes:
    """
    Inflate one server message with a C{bits}-bit window, 64 bytes of
    output at a time, so that every back-reference is resolved from the
    window (zlib resolves those that fall inside one call's output buffer
    from the buffer, whatever the window): a reference further back than
    the window fails with L{zlib.error}.
    """
    if inflater is None:
        inflater = zlib.decompressobj(-bits)
    data = payload + TRAILER
    out = b""
    while True:
        chunk = inflater.decompress(data, 64)
        data = inflater.unconsumed_tail
        out += chunk
        if not data and not chunk:
            return out


def makeCodec(header: str = "permessage-deflate", **policy: Any) -> DeflateCodec:
    """
    The codec a connection gets after negotiating C{header}.
    """
    _, params = negotiate(header, **policy)
    return DeflateCodec(params, PerMessageDeflate(**policy))


def bomb(mebibytes: int) -> bytes:
    """
    A compressed message of C{mebibytes} MiB of zeros: about 1 KiB per MiB.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MIB)
    parts = [compressor.compress(zeros) for _ in range(mebibytes)]
    parts.append(compressor.flush(zlib.Z_SYNC_FLUSH)[:-4])
    return b"".join(parts)


# -- negotiation: RFC 7692 section 7.1 ------------------------------------


class TestOffers:
    """
    What is accepted of a C{Sec-WebSocket-Extensions} header as a whole.
    """

    def test_plainOffer(self) -> None:
        """
        An offer without parameters is accepted with the defaults, and the
        response names no parameter.
        """
        assert negotiate("permessage-deflate") == (
            "permessage-deflate",
            DeflateParameters(False, False, 15, 15),
        )

    @pytest.mark.parametrize("header", [None, "", " , ", "x-webkit-deflate-frame"])
    def test_noOffer(self, header: str | None) -> None:
        """
        No header, an empty one or one with only other extensions: no
        compression.
        """
        assert declined(header)

    def test_otherExtensionsIgnored(self) -> None:
        """
        Other extensions around the offer are skipped, not answered, and do
        not make the offer fail.
        """
        header = "x-webkit-deflate-frame; no_context_takeover, permessage-deflate, foo"
        assert negotiate(header)[0] == "permessage-deflate"

    def test_firstAcceptableOfferWins(self) -> None:
        """
        RFC 7692 section 5: offers are in the client's order of preference,
        and the first one the server can accept is the one accepted.
        """
        header = (
            "permessage-deflate; server_max_window_bits=10; "
            "client_no_context_takeover, permessage-deflate"
        )
        response, params = negotiate(header)
        assert response == (
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"
        )
        assert params == DeflateParameters(False, True, 10, 15)

    @pytest.mark.parametrize(
        "bad",
        [
            "permessage-deflate; x_unknown",
            "permessage-deflate; x_unknown=1",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_no_context_takeover; "
            "client_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover=true",
            "permessage-deflate; ",
        ],
        ids=[
            "unknown",
            "unknown-with-value",
            "window-8",
            "duplicate-window",
            "duplicate-flag",
            "duplicate-mixed",
            "flag-with-value",
            "empty-parameter",
        ],
    )
    def test_unacceptableOfferSkipped(self, bad: str) -> None:
        """
        An offer with an unknown, repeated or invalid parameter is declined
        (RFC 7692 section 7.1), and the client's next offer is considered
        instead.
        """
        assert declined(bad)
        response, params = negotiate(
            f"{bad}, permessage-deflate; client_no_context_takeover"
        )
        assert response == "permessage-deflate; client_no_context_takeover"
        assert params == DeflateParameters(False, True, 15, 15)

    def test_whitespace(self) -> None:
        """
        Whitespace around C{,}, C{;} and C{=} is allowed (RFC 6455 section
        9.1 and RFC 9110's list syntax).
        """
        header = (
            "  permessage-deflate ;server_max_window_bits = 11 ;  "
            "client_max_window_bits , x"
        )
        response, params = negotiate(header)
        assert response == "permessage-deflate; server_max_window_bits=11"
        assert params.serverMaxWindowBits == 11

    def test_quotedValues(self) -> None:
        """
        RFC 7692 section 7.1: a value may be sent as a quoted-string; it is
        read as its content.
        """
        response, params = negotiate(
            'permessage-deflate; server_max_window_bits="10"; '
            'client_max_window_bits="12"'
        )
        assert response == (
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"
        )
        assert (params.serverMaxWindowBits, params.clientMaxWindowBits) == (10, 12)

    def test_parseExtensions(self) -> None:
        """
        Extensions and their parameters come back in order, valueless
        parameters with L{None}, quoted values unquoted, names of
        extensions lower-cased.
        """
        assert parseExtensions('A; b; c="1", d ;e=2,') == [
            ("a", [("b", None), ("c", "1")]),
            ("d", [("e", "2")]),
        ]


class TestServerNoContextTakeover:
    """
    RFC 7692 section 7.1.1.1: C{server_no_context_takeover}.
    """

    def test_offeredIsEchoed(self) -> None:
        """
        An offer with it is accepted with it in the response.
        """
        response, params = negotiate("permessage-deflate; server_no_context_takeover")
        assert response == "permessage-deflate; server_no_context_takeover"
        assert params.serverNoContextTakeover

    def test_policyAddsItUnasked(self) -> None:
        """
        A policy without context takeover puts it in the response though
        the client did not offer it, as section 7.1.1.1 allows.
        """
        response, params = negotiate("permessage-deflate", serverNoContextTakeover=True)
        assert response == "permessage-deflate; server_no_context_takeover"
        assert params.serverNoContextTakeover

    def test_notOfferedNotAnswered(self) -> None:
        """
        Neither offered nor the policy: not in the response, and the
        server keeps its context.
        """
        response, params = negotiate("permessage-deflate; client_no_context_takeover")
        assert "server_no_context_takeover" not in response
        assert not params.serverNoContextTakeover


class TestClientNoContextTakeover:
    """
    RFC 7692 section 7.1.1.2: C{client_no_context_takeover}.
    """

    def test_offeredIsEchoed(self) -> None:
        """
        An offer with it is accepted with it in the response, and the
        inflater may then be dropped after each message.
        """
        response, params = negotiate("permessage-deflate; client_no_context_takeover")
        assert response == "permessage-deflate; client_no_context_takeover"
        assert params.clientNoContextTakeover

    @pytest.mark.parametrize(
        "header",
        [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=12",
        ],
    )
    def test_notOfferedNeverAnswered(self, header: str) -> None:
        """
        When the client did not offer it, it is never in the response,
        whatever the policy.
        """
        for policy in [
            {},
            {"serverNoContextTakeover": True},
            {"clientMaxWindowBits": 9},
        ]:
            response, params = negotiate(header, **policy)
            assert "client_no_context_takeover" not in response
            assert not params.clientNoContextTakeover


class TestServerMaxWindowBits:
    """
    RFC 7692 section 7.1.2.1: C{server_max_window_bits}.
    """

    def test_offeredIsAnswered(self) -> None:
        """
        An offer of 10 bits is accepted with the same value in the
        response, and the server compresses with that window.
        """
        response, params = negotiate("permessage-deflate; server_max_window_bits=10")
        assert response == "permessage-deflate; server_max_window_bits=10"
        assert params.serverMaxWindowBits == 10

    def test_smallerPolicyWins(self) -> None:
        """
        The response may name a smaller value than the offer: a policy of
        12 answers an offer of 14 with 12.
        """
        response, params = negotiate(
            "permessage-deflate; server_max_window_bits=14", serverMaxWindowBits=12
        )
        assert response == "permessage-deflate; server_max_window_bits=12"
        assert params.serverMaxWindowBits == 12

    def test_nineAccepted(self) -> None:
        """
        9 bits, the smallest window zlib compresses with, is accepted.
        """
        response, params = negotiate("permessage-deflate; server_max_window_bits=9")
        assert response == "permessage-deflate; server_max_window_bits=9"
        assert params.serverMaxWindowBits == 9

    def test_eightDeclined(self) -> None:
        """
        8 bits is declined: zlib cannot make a raw deflate stream with an
        8-bit window, and answering with anything larger would break the
        client's limit.
        """
        assert declined("permessage-deflate; server_max_window_bits=8")
        assert declined(
            "permessage-deflate; server_max_window_bits=8", serverMaxWindowBits=9
        )

    @pytest.mark.parametrize(
        "value",
        ["", "=", "=0", "=16", "=7", "=abc", "=010", "=09", "=-9", "=+9", "=1\xb2"],
    )
    def test_invalidValueDeclined(self, value: str) -> None:
        """
        A missing value, one outside 8-15, not a decimal integer, with a
        leading zero or a sign, or with non-ASCII digits: the offer is
        declined, not answered and not an error.
        """
        assert declined(f"permessage-deflate; server_max_window_bits{value}")

    @pytest.mark.parametrize("policyBits", [9, 12, 15])
    def test_notOfferedNeverAnswered(self, policyBits: int) -> None:
        """
        Not offered: not in the response, whatever window the policy
        compresses with (a smaller window is always safe to inflate).
        """
        response, params = negotiate(
            "permessage-deflate; client_max_window_bits",
            serverMaxWindowBits=policyBits,
        )
        assert "server_max_window_bits" not in response
        assert params.serverMaxWindowBits == policyBits


class TestClientMaxWindowBits:
    """
    RFC 7692 section 7.1.2.2: C{client_max_window_bits}.
    """

    def test_withoutValueAtFifteen(self) -> None:
        """
        Offered without a value and a policy of 15: nothing to limit, so
        not in the response; the client may use 15 bits.
        """
        response, params = negotiate("permessage-deflate; client_max_window_bits")
        assert response == "permessage-deflate"
        assert params.clientMaxWindowBits == 15

    def test_withoutValuePolicyLimits(self) -> None:
        """
        Offered without a value and a policy of 10: the response asks the
        client for at most 10 bits.
        """
        response, params = negotiate(
            "permessage-deflate; client_max_window_bits", clientMaxWindowBits=10
        )
        assert response == "permessage-deflate; client_max_window_bits=10"
        assert params.clientMaxWindowBits == 10

    def test_valueIsHonouredAndAnnounced(self) -> None:
        """
        Offered with 12 and a policy of 15: the response says 12 (section
        7.1.2.2 allows a value equal to or smaller than the offer), so the
        client is bound to 12 whichever way it reads a bare response, and
        the inflater is sized for 12.
        """
        response, params = negotiate("permessage-deflate; client_max_window_bits=12")
        assert response == "permessage-deflate; client_max_window_bits=12"
        assert params.clientMaxWindowBits == 12

    def test_smallerOfValueAndPolicy(self) -> None:
        """
        Offered with 12 and a policy of 10: the response says 10.
        """
        response, params = negotiate(
            "permessage-deflate; client_max_window_bits=12", clientMaxWindowBits=10
        )
        assert response == "permessage-deflate; client_max_window_bits=10"
        assert params.clientMaxWindowBits == 10

    def test_fifteenNotAnnounced(self) -> None:
        """
        Offered with 15 and a policy of 15: no limit to announce.
        """
        response, params = negotiate("permessage-deflate; client_max_window_bits=15")
        assert response == "permessage-deflate"
        assert params.clientMaxWindowBits == 15

    def test_eightAccepted(self) -> None:
        """
        Unlike the server's window, 8 bits for the client is fine: we only
        inflate what it sends.
        """
        response, params = negotiate("permessage-deflate; client_max_window_bits=8")
        assert response == "permessage-deflate; client_max_window_bits=8"
        assert params.clientMaxWindowBits == 8

    @pytest.mark.parametrize("value", ["=", "=0", "=16", "=abc", "=012", "=1\xb9"])
    def test_invalidValueDeclined(self, value: str) -> None:
        """
        A value that is not a decimal integer from 8 to 15 without a
        leading zero: the offer is declined.
        """
        assert declined(f"permessage-deflate; client_max_window_bits{value}")

    @pytest.mark.parametrize("policyBits", [8, 10, 15])
    def test_notOfferedNeverAnswered(self, policyBits: int) -> None:
        """
        RFC 7692 7.1.2.2: not offered, it MUST NOT be in the response,
        even when the policy would limit the client; the server then
        inflates with a full window.
        """
        response, params = negotiate(
            "permessage-deflate; server_no_context_takeover",
            clientMaxWindowBits=policyBits,
        )
        assert "client_max_window_bits" not in response
        assert params.clientMaxWindowBits == 15


class TestPolicy:
    """
    L{PerMessageDeflate} refuses settings zlib cannot honour.
    """

    @pytest.mark.parametrize(
        "policy",
        [
            {"serverMaxWindowBits": 8},
            {"serverMaxWindowBits": 16},
            {"clientMaxWindowBits": 7},
            {"clientMaxWindowBits": 16},
            {"compressLevel": 0},
            {"compressLevel": 10},
            {"memLevel": 0},
            {"memLevel": 10},
        ],
    )
    def test_outOfRange(self, policy: dict[str, int]) -> None:
        """
        Each out-of-range setting raises L{ValueError}.
        """
        with pytest.raises(ValueError):
            PerMessageDeflate(**policy)


# -- negotiation through the adapter ---------------------------------------

PEER = IPv4Address("TCP", "192.0.2.7", 40000)


def handshake(
    extensions: list[str], version: str = "13", **policy: Any
) -> dict[str, str]:
    """
    Send a request with one C{Sec-WebSocket-Extensions} header per item of
    C{extensions} to a protocol whose factory has a deflate policy; the
    headers of its 101 response, names in lower case.
    """
    registry = ResourceRegistry()
    registry.register("/r", RecordingResource(echo=False), anyOrigin)
    factory = WebSocketFactory(
        registry, deflate=PerMessageDeflate(**policy), reactor=MemoryReactorClock()
    )
    protocol = factory.buildProtocol(PEER)
    transport = StringTransport(peerAddress=PEER)
    protocol.makeConnection(transport)
    extra = tuple(("Sec-WebSocket-Extensions", value) for value in extensions)
    protocol.dataReceived(upgradeRequest("/r", version=version, extra=extra))
    head = transport.value().split(b"\r\n\r\n")[0].decode("latin-1")
    statusLine, *lines = head.split("\r\n")
    assert statusLine == "HTTP/1.1 101 Switching Protocols", head
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


class TestDefaults:
    """
    The default policy keeps a compressing connection's zlib state small:
    12-bit windows both ways where the client lets us choose, memLevel 5.
    """

    def test_values(self) -> None:
        """
        C{PerMessageDeflate()} compresses with a 12-bit window at memLevel
        5 and asks clients for a 12-bit window.
        """
        policy = PerMessageDeflate()
        assert (policy.serverMaxWindowBits, policy.clientMaxWindowBits) == (12, 12)
        assert (policy.memLevel, policy.compressLevel) == (5, 6)

    def test_plainOffer(self) -> None:
        """
        An offer without parameters: we compress with 12 bits (a smaller
        window than the 15 the client can inflate needs no announcing,
        RFC 7692 7.1.2.1) and inflate with the client's 15.
        """
        assert PerMessageDeflate().negotiate("permessage-deflate") == (
            "permessage-deflate",
            DeflateParameters(False, False, 12, 15),
        )

    def test_clientWindowOffered(self) -> None:
        """
        A client that offers C{client_max_window_bits} (as browsers do) is
        asked for a 12-bit window, which bounds our inflater's window too.
        """
        offer = "permessage-deflate; client_max_window_bits"
        assert PerMessageDeflate().negotiate(offer) == (
            "permessage-deflate; client_max_window_bits=12",
            DeflateParameters(False, False, 12, 12),
        )

    def test_compressorWindow(self) -> None:
        """
        The codec's compressor uses the agreed 12-bit window: its output
        inflates with a 12-bit inflater, over several messages with context
        takeover, although each repeats the 6,000 bytes of the one before
        (a 15-bit window would refer 6,000 bytes back, into a message the
        12-bit inflater no longer holds).
        """
        _, params = PerMessageDeflate().negotiate("permessage-deflate")
        codec = DeflateCodec(params, PerMessageDeflate())
        inflater = zlib.decompressobj(-12)
        block = random.Random(7).randbytes(6000)
        for _ in range(3):
            message = block
            wire = codec.compress(message)
            assert inflater.decompress(wire + b"\x00\x00\xff\xff") == message


class TestHandshake:
    """
    The response the adapter sends for the offers it is given.
    """

    def test_accepted(self) -> None:
        """
        The agreed parameters are in the 101 response.
        """
        headers = handshake(["permessage-deflate; client_max_window_bits"])
        assert headers["sec-websocket-extensions"] == (
            "permessage-deflate; client_max_window_bits=12"
        )

    def test_headersJoined(self) -> None:
        """
        Several C{Sec-WebSocket-Extensions} headers are read as one list,
        in order: an unacceptable offer in the first is skipped for an
        acceptable one in the second.
        """
        headers = handshake(
            [
                "x-foo, permessage-deflate; server_max_window_bits=8",
                "permessage-deflate; server_max_window_bits=11",
                "permessage-deflate",
            ]
        )
        assert headers["sec-websocket-extensions"] == (
            "permessage-deflate; server_max_window_bits=11"
        )

    @pytest.mark.parametrize(
        "offer",
        [
            "permessage-deflate; server_max_window_bits=1\xb2",
            "permessage-deflate; client_max_window_bits=1\xb3",
        ],
    )
    def test_nonAsciiDigitsDeclined(self, offer: str) -> None:
        """
        A window value with Latin-1 superscript digits (which C{str.isdigit}
        accepts and C{int} refuses) declines the offer; the handshake
        still succeeds, without compression.
        """
        headers = handshake([offer])
        assert "sec-websocket-extensions" not in headers

    def test_declinedNoHeader(self) -> None:
        """
        When every offer is declined, the response has no
        C{Sec-WebSocket-Extensions} at all.
        """
        headers = handshake(["permessage-deflate; foo"])
        assert "sec-websocket-extensions" not in headers

    def test_notForOlderVersions(self) -> None:
        """
        RFC 7692 extends RFC 6455: a draft (version 8) client is not
        offered compression.
        """
        headers = handshake(["permessage-deflate"], version="8")
        assert "sec-websocket-extensions" not in headers


# -- the codec: compressing ------------------------------------------------


class TestCompress:
    """
    L{DeflateCodec.compress}: RFC 7692 section 7.2.1.
    """

    def test_roundTripWithContextTakeover(self) -> None:
        """
        With context takeover, a client keeping one inflater reads every
        message, and a repeated message costs fewer bytes the second time.
        """
        codec = makeCodec()
        client = zlib.decompressobj(-15)
        first = codec.compress(JSON * 4)
        second = codec.compress(JSON * 4)
        assert inflate(first, client) == JSON * 4
        assert inflate(second, client) == JSON * 4
        assert len(second) < len(first)
        # The second message needs the first one's context.
        with pytest.raises(zlib.error):
            inflate(second)

    @pytest.mark.parametrize(
        "header, policy",
        [
            ("permessage-deflate; server_no_context_takeover", {}),
            ("permessage-deflate", {"serverNoContextTakeover": True}),
        ],
        ids=["offered", "policy"],
    )
    def test_roundTripWithoutContextTakeover(
        self, header: str, policy: dict[str, Any]
    ) -> None:
        """
        Without context takeover, each message inflates on its own with a
        fresh inflater, and a repeated message gives the same bytes.
        """
        codec = makeCodec(header, **policy)
        first = codec.compress(JSON * 4)
        second = codec.compress(JSON * 4)
        assert inflate(first) == JSON * 4
        assert inflate(second) == JSON * 4
        assert first == second

    def test_noTrailer(self) -> None:
        """
        The sync flush's C{00 00 ff ff} is not sent.
        """
        for header in [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover",
        ]:
            codec = makeCodec(header)
            assert not codec.compress(JSON).endswith(TRAILER)
            empty = codec.compress(b"")
            assert not empty.endswith(TRAILER)
            assert inflate(empty) == b""

    def test_windowBitsHonoured(self) -> None:
        """
        With C{server_max_window_bits=9} agreed, the client inflates with a
        512-byte window: the codec refers no further back than that (a
        15-bit compressor would).
        """
        noise = random.Random(7).randbytes
        block = noise(600)
        message = block + noise(1000) + block
        codec = makeCodec("permessage-deflate; server_max_window_bits=9")
        assert windowInflate(codec.compress(message), 9) == message
        with pytest.raises(zlib.error):
            windowInflate(makeCodec().compress(message), 9)

    def test_sharedCompressorGivesSameBytes(self) -> None:
        """
        Two connections that agreed the same setting without context
        takeover share a compressor, have equal wire keys, and frame a
        message into the same bytes, whatever either sent before.
        """
        header = "permessage-deflate; server_no_context_takeover"
        one, two = makeCodec(header), makeCodec(header)
        assert one.wireKey == two.wireKey
        reference = one.compress(JSON * 3)
        one.compress(b"something else entirely " * 40)
        assert two.compress(JSON * 3) == reference
        assert one.compress(JSON * 3) == reference
        fresh = zlib.compressobj(6, zlib.DEFLATED, -15, 8)
        assert reference == clientCompress(fresh, JSON * 3)

    def test_wireKeys(self) -> None:
        """
        Wire keys differ between different windows, and each connection
        with context takeover has its own.
        """
        noTakeover = "permessage-deflate; server_no_context_takeover"
        assert (
            makeCodec(noTakeover).wireKey
            != makeCodec(noTakeover + "; server_max_window_bits=10").wireKey
        )
        assert (
            makeCodec(noTakeover).wireKey
            != makeCodec(noTakeover, compressLevel=1).wireKey
        )
        assert makeCodec().wireKey != makeCodec().wireKey

    def test_connectionFramesCompressed(self) -> None:
        """
        A connection with a codec sends messages of at least C{minSize}
        bytes compressed, RSV1 set on the first frame only, and shorter
        ones as they are.
        """
        codec = makeCodec(minSize=10)
        connection = WebSocketConnection(MIB, MIB, codec)
        data = connection.frameBinary(JSON, frameSize=8)
        frames = parseServerFrames(data)
        assert [rsv for _, rsv, _, _ in frames] == [0x40] + [0] * (len(frames) - 1)
        assert [opcode for _, _, opcode, _ in frames] == [BINARY] + [CONT] * (
            len(frames) - 1
        )
        assert inflate(b"".join(payload for *_, payload in frames)) == JSON
        # 0x81 = FIN + text, RSV1 clear; 0x09 = 9 bytes, unmasked.
        assert connection.frameText("123456789") == b"\x81\x09123456789"


# -- the codec: inflating --------------------------------------------------


class _RecordingInflater:
    """
    Wraps a zlib inflater, recording each C{decompress} call's
    C{max_length} and how many bytes it produced.
    """

    def __init__(self, inner: Any, calls: list[tuple[int, int]]) -> None:
        self._inner = inner
        self._calls = calls

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out = self._inner.decompress(data, max_length)
        self._calls.append((max_length, len(out)))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TestDecompress:
    """
    L{DeflateCodec.decompress} and L{DeflateCodec.endMessage}: RFC 7692
    section 7.2.2, in bounded steps.
    """

    def test_roundTrip(self) -> None:
        """
        A message compressed by a client, fed in pieces, inflates back.
        """
        codec = makeCodec()
        payload = clientCompress(clientCompressor(), JSON * 10)
        out = b"".join(
            codec.decompress(payload[i : i + 7], MIB) for i in range(0, len(payload), 7)
        )
        assert out + codec.endMessage(MIB) == JSON * 10

    def test_contextKept(self) -> None:
        """
        Without C{client_no_context_takeover}, the inflater is kept between
        messages: a second message that refers back to the first inflates.
        """
        codec = makeCodec()
        compressor = clientCompressor()
        for _ in range(3):
            payload = clientCompress(compressor, JSON * 4)
            assert codec.decompress(payload, MIB) + codec.endMessage(MIB) == JSON * 4

    def test_windowAcrossMessages(self) -> None:
        """
        With context takeover, the inflater keeps the client's whole
        window: a message that repeats one 20 KiB back inflates.
        """
        codec = makeCodec()
        compressor = clientCompressor()
        block = random.Random(11).randbytes(20_000)
        for _ in range(2):
            payload = clientCompress(compressor, block)
            assert codec.decompress(payload, MIB) + codec.endMessage(MIB) == block

    def test_windowAcrossPieces(self) -> None:
        """
        With C{client_max_window_bits=12} agreed, a message whose
        references reach 3.5 KiB back inflates when it comes in 50-byte
        pieces (each piece resolved against the window, not the output).
        """
        codec = makeCodec(
            "permessage-deflate; client_max_window_bits", clientMaxWindowBits=12
        )
        assert codec.params.clientMaxWindowBits == 12
        noise = random.Random(13).randbytes
        block = noise(1500)
        # 3500 bytes back: within a 12-bit compressor's reach (4096 less
        # zlib's 262-byte lookahead).
        message = block + noise(2000) + block
        payload = clientCompress(clientCompressor(12), message)
        assert len(payload) < len(message) - 1000
        out = b"".join(
            codec.decompress(payload[i : i + 50], MIB)
            for i in range(0, len(payload), 50)
        )
        assert out + codec.endMessage(MIB) == message

    def test_endMessageResetsWithoutClientContext(self) -> None:
        """
        With C{client_no_context_takeover} agreed, C{endMessage} drops the
        inflater: each message inflates on its own (and one that refers
        back to the last, against the agreement, is invalid).
        """
        codec = makeCodec("permessage-deflate; client_no_context_takeover")
        for _ in range(2):
            payload = clientCompress(clientCompressor(), JSON * 4)
            assert codec.decompress(payload, MIB) + codec.endMessage(MIB) == JSON * 4
        compressor = clientCompressor()
        first = clientCompress(compressor, JSON * 4)
        second = clientCompress(compressor, JSON * 4)
        assert codec.decompress(first, MIB) + codec.endMessage(MIB) == JSON * 4
        with pytest.raises(InvalidPayload):
            codec.decompress(second, MIB)
            codec.endMessage(MIB)

    def test_finalBlockStartsAfresh(self) -> None:
        """
        A client that ends a message with a final deflate block (BFINAL,
        RFC 7692 section 7.2.3.3) starts a new stream for the next one.
        """
        codec = makeCodec()
        for _ in range(2):
            compressor = clientCompressor()
            payload = compressor.compress(JSON) + compressor.flush()
            assert codec.decompress(payload, MIB) + codec.endMessage(MIB) == JSON

    @pytest.mark.parametrize(
        "data",
        [b"\xff", b"\x07\x00", b"\x00\x05\x00\x00\x00"],
        ids=["btype-11", "bfinal-btype-11", "bad-nlen"],
    )
    def test_invalidData(self, data: bytes) -> None:
        """
        Data that is not deflate raises L{InvalidPayload} (close code 1007).
        """
        codec = makeCodec()
        with pytest.raises(InvalidPayload) as info:
            codec.decompress(data, MIB)
            codec.endMessage(MIB)
        assert info.value.closeCode == 1007

    def test_limitExact(self) -> None:
        """
        A message that inflates to exactly the limit is accepted; one byte
        more is L{MessageTooBig} (close code 1009).
        """
        message = JSON * 10
        codec = makeCodec()
        payload = clientCompress(clientCompressor(), message)
        out = codec.decompress(payload, len(message))
        assert out + codec.endMessage(len(message) - len(out)) == message
        codec = makeCodec()
        with pytest.raises(MessageTooBig) as info:
            out = codec.decompress(payload, len(message) - 1)
            codec.endMessage(len(message) - 1 - len(out))
        assert info.value.closeCode == 1009

    def test_trailerOutputCounted(self) -> None:
        """
        Output that only the appended C{00 00 ff ff} releases counts
        against the limit too: a message that ends inside a match inflates
        to 14 bytes, 10 of them from the trailer.
        """
        # Bits, first to last: BFINAL=0, BTYPE=01 (fixed Huffman); four
        # 9-bit literals 0xf0; length code 264 (a match of 10); the first
        # 2 of the 5 bits of distance code 0 (distance 1).  The trailer's
        # zero bits end the distance code, then the block, then open a
        # stored block.
        payload = b"\xfa\xf0\xe1\xc3\x07\x04"
        codec = makeCodec()
        out = codec.decompress(payload, 14)
        assert out == b"\xf0" * 4
        assert codec.endMessage(10) == b"\xf0" * 10
        codec = makeCodec()
        out = codec.decompress(payload, 13)
        with pytest.raises(MessageTooBig):
            codec.endMessage(13 - len(out))
        events = reader(maxMessageSize=13).feed(compressedFrames(BINARY, payload))
        assert events == [ConnectionFailed(1009, events[0].reason)]
        events = reader(maxMessageSize=14).feed(compressedFrames(BINARY, payload))
        assert events == [BinaryMessage(b"\xf0" * 14)]

    def test_bombBoundedOutput(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """
        A 50 KiB frame that would inflate to 50 MiB raises L{MessageTooBig}
        after zlib was asked for, and produced, at most the limit plus one
        byte.
        """
        calls: list[tuple[int, int]] = []
        realInflater = zlib.decompressobj
        monkeypatch.setattr(
            "txclws._core.deflate.zlib.decompressobj",
            lambda *args: _RecordingInflater(realInflater(*args), calls),
        )
        codec = makeCodec()
        data = bomb(50)
        assert len(data) < 64 * 1024
        with pytest.raises(MessageTooBig):
            codec.decompress(data, 1000)
        assert calls == [(1001, 1001)]

    def test_bombBoundedMemory(self) -> None:
        """
        Inflating a 50 MiB bomb against a 1 MiB limit never holds more than
        a few MiB: the peak traced allocation stays under 4 MiB.
        """
        codec = makeCodec()
        data = bomb(50)
        tracemalloc.start()
        try:
            with pytest.raises(MessageTooBig):
                codec.decompress(data, MIB)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 4 * MIB

    def test_bombAcrossFrames(self) -> None:
        """
        The limit is what the whole message may still inflate to: pieces
        that each fit but together do not are refused at the piece that
        goes over.
        """
        codec = makeCodec()
        compressor = clientCompressor()
        piece = compressor.compress(bytes(600_000)) + compressor.flush(
            zlib.Z_SYNC_FLUSH
        )
        assert len(codec.decompress(piece, MIB)) == 600_000
        with pytest.raises(MessageTooBig):
            codec.decompress(piece, MIB - 600_000)


# -- the reader with compression: RFC 7692 section 6 ------------------------

LIMIT = MIB


def reader(
    maxMessageSize: int = LIMIT, header: str = "permessage-deflate"
) -> MessageReader:
    """
    A reader with a codec negotiated from C{header}.
    """
    return MessageReader(LIMIT, maxMessageSize, makeCodec(header))


def compressedFrames(
    opcode: int, payload: bytes, cuts: list[int] | None = None
) -> bytes:
    """
    Masked client frames carrying one compressed message: RSV1 on the
    first, the payload split at C{cuts}.
    """
    bounds = [0, *sorted(cuts or []), len(payload)]
    pieces = [payload[a:b] for a, b in itertools.pairwise(bounds)]
    frames = []
    for index, piece in enumerate(pieces):
        first = index == 0
        frames.append(
            clientFrame(
                opcode if first else CONT,
                piece,
                fin=index == len(pieces) - 1,
                rsv=0x40 if first else 0,
            )
        )
    return b"".join(frames)


def feedChunks(target: MessageReader, data: bytes, cuts: list[int]) -> list[Any]:
    """
    Feed C{data} split at C{cuts}; all the events.
    """
    bounds = [0, *sorted(cuts), len(data)]
    events: list[Any] = []
    for a, b in itertools.pairwise(bounds):
        events += target.feed(data[a:b])
    return events


class TestReader:
    """
    L{MessageReader} with a L{DeflateCodec}.
    """

    def test_compressedText(self) -> None:
        """
        A text message with RSV1 set is inflated and delivered.
        """
        payload = clientCompress(clientCompressor(), "héllo ✓ ".encode() * 20)
        assert reader().feed(compressedFrames(TEXT, payload)) == [
            TextMessage("héllo ✓ " * 20)
        ]

    def test_uncompressedBesideCompressed(self) -> None:
        """
        With compression agreed, a message without RSV1 is taken as it is,
        between compressed ones, and a ping may interleave a fragmented
        compressed message.
        """
        compressor = clientCompressor()
        target = reader()
        one = clientCompress(compressor, JSON)
        two = clientCompress(compressor, JSON)
        data = (
            compressedFrames(BINARY, one)
            + clientFrame(TEXT, b"plain")
            + clientFrame(BINARY, two[:5], fin=False, rsv=0x40)
            + clientFrame(PING, b"p")
            + clientFrame(CONT, two[5:])
        )
        events = target.feed(data)
        assert [type(event).__name__ for event in events] == [
            "BinaryMessage",
            "TextMessage",
            "PingReceived",
            "BinaryMessage",
        ]
        assert events[0] == events[3] == BinaryMessage(JSON)
        assert events[1] == TextMessage("plain")

    def test_rsv1OnContinuation(self) -> None:
        """
        RFC 7692 section 6.1: RSV1 on a continuation frame fails the
        connection with 1002.
        """
        payload = clientCompress(clientCompressor(), JSON)
        data = clientFrame(TEXT, payload[:4], fin=False, rsv=0x40) + clientFrame(
            CONT, payload[4:], rsv=0x40
        )
        [failed] = reader().feed(data)
        assert isinstance(failed, ConnectionFailed) and failed.code == 1002

    def test_rsv1WithoutNegotiation(self) -> None:
        """
        Without permessage-deflate agreed, RSV1 fails the connection with
        1002 (RFC 6455 section 5.2).
        """
        payload = clientCompress(clientCompressor(), JSON)
        [failed] = MessageReader(LIMIT, LIMIT).feed(
            clientFrame(TEXT, payload, rsv=0x40)
        )
        assert isinstance(failed, ConnectionFailed) and failed.code == 1002

    @pytest.mark.parametrize("rsv", [0x20, 0x10, 0x60])
    def test_otherRsvBits(self, rsv: int) -> None:
        """
        permessage-deflate defines RSV1 only: RSV2 or RSV3 still fail with
        1002.
        """
        [failed] = reader().feed(clientFrame(TEXT, b"x", rsv=rsv))
        assert isinstance(failed, ConnectionFailed) and failed.code == 1002

    def test_rsv1OnControlFrame(self) -> None:
        """
        Control frames are never compressed: RSV1 on a ping fails with 1002.
        """
        [failed] = reader().feed(clientFrame(PING, b"", rsv=0x40))
        assert isinstance(failed, ConnectionFailed) and failed.code == 1002

    @pytest.mark.parametrize(
        "raw", [b"\xff\xfe", "ok ✓".encode()[:-1], b"a\xed\xa0\x80b"]
    )
    def test_inflatesToInvalidUtf8(self, raw: bytes) -> None:
        """
        A compressed text message whose inflated bytes are not UTF-8 fails
        with 1007, as an uncompressed one would.
        """
        payload = clientCompress(clientCompressor(), raw)
        [failed] = reader().feed(compressedFrames(TEXT, payload))
        assert isinstance(failed, ConnectionFailed) and failed.code == 1007

    def test_invalidUtf8BinaryFine(self) -> None:
        """
        The same bytes in a binary message are delivered.
        """
        payload = clientCompress(clientCompressor(), b"\xff\xfe")
        assert reader().feed(compressedFrames(BINARY, payload)) == [
            BinaryMessage(b"\xff\xfe")
        ]

    def test_invalidDeflate(self) -> None:
        """
        A compressed frame that is not deflate fails with 1007.
        """
        [failed] = reader().feed(clientFrame(BINARY, b"\xff\xff\xff", rsv=0x40))
        assert isinstance(failed, ConnectionFailed) and failed.code == 1007

    def test_tinyFrameInflatesOverLimit(self) -> None:
        """
        A 30-byte frame that inflates to 10 000 bytes, against a limit of
        1000, fails with 1009.
        """
        payload = clientCompress(clientCompressor(), bytes(10_000))
        assert len(payload) < 40
        [failed] = reader(maxMessageSize=1000).feed(compressedFrames(BINARY, payload))
        assert isinstance(failed, ConnectionFailed) and failed.code == 1009

    def test_limitOnInflatedSize(self) -> None:
        """
        C{maxMessageSize} is measured after inflating: exactly the limit is
        delivered, even when the compressed bytes are more than the limit
        (random data grows), and a byte more fails with 1009.
        """
        message = bytes(range(256)) * 4
        noise = os.urandom(1000)
        for data in [message, noise]:
            payload = clientCompress(clientCompressor(), data)
            events = reader(maxMessageSize=len(data)).feed(
                compressedFrames(BINARY, payload, [len(payload) // 2])
            )
            assert events == [BinaryMessage(data)]
            [failed] = reader(maxMessageSize=len(data) - 1).feed(
                compressedFrames(BINARY, payload, [len(payload) // 2])
            )
            assert isinstance(failed, ConnectionFailed) and failed.code == 1009
        assert len(clientCompress(clientCompressor(), noise)) > len(noise)

    def test_bombAcrossFragments(self) -> None:
        """
        A bomb spread over many small fragments is stopped at the fragment
        that goes over the limit; nothing after it is read.
        """
        payload = bomb(20)
        data = compressedFrames(BINARY, payload, list(range(100, len(payload), 100)))
        target = reader(maxMessageSize=MIB)
        events = target.feed(data)
        assert len(events) == 1 and events[0].code == 1009
        assert target.feed(clientFrame(TEXT, b"more")) == []

    @settings(max_examples=200, deadline=None)
    @given(
        messages=st.lists(
            st.tuples(st.text(max_size=300), st.booleans()), min_size=1, max_size=4
        ),
        data=st.data(),
    )
    def test_anyFragmentationAnyChunking(
        self, messages: list[tuple[str, bool]], data: st.DataObject
    ) -> None:
        """
        Any sequence of text messages, each compressed (with context
        taken over from the last) or not, split into any fragments and
        fed in any chunks, comes out as the same texts.
        """
        compressor = clientCompressor()
        stream = b""
        for text, compress in messages:
            raw = text.encode("utf-8")
            payload = clientCompress(compressor, raw) if compress else raw
            cuts = data.draw(
                st.lists(st.integers(0, len(payload)), max_size=4), label="fragments"
            )
            if compress:
                stream += compressedFrames(TEXT, payload, cuts)
            else:
                bounds = [0, *sorted(cuts), len(payload)]
                pieces = [payload[a:b] for a, b in itertools.pairwise(bounds)]
                stream += b"".join(
                    clientFrame(
                        TEXT if i == 0 else CONT, piece, fin=i == len(pieces) - 1
                    )
                    for i, piece in enumerate(pieces)
                )
        chunks = data.draw(
            st.lists(st.integers(0, len(stream)), max_size=20), label="chunks"
        )
        events = feedChunks(reader(), stream, chunks)
        assert events == [TextMessage(text) for text, _ in messages]

    @settings(max_examples=50, deadline=None)
    @given(message=st.binary(max_size=5000), bits=st.integers(9, 15))
    def test_serverToClientRoundTrip(self, message: bytes, bits: int) -> None:
        """
        Whatever the message and the agreed window, what the codec sends
        inflates back with a client inflater of that window.
        """
        codec = makeCodec(f"permessage-deflate; server_max_window_bits={bits}")
        client = zlib.decompressobj(-bits)
        for _ in range(2):
            assert windowInflate(codec.compress(message), bits, client) == message


# -- the end of the deflate stream and empty messages (issue 11) -----------

#: A final, empty, fixed-Huffman block: bits BFINAL=1, BTYPE=01, then the
#: 7-bit end-of-block code 0, padded: the end of a DEFLATE stream.
FINAL_EMPTY_BLOCK = b"\x03\x00"


class TestEndOfStream:
    """
    RFC 7692 section 7.2.2: a message's payload is one DEFLATE stream.
    Bytes after its final block are refused (1007) rather than kept in
    zlib's C{unused_data}, which grew without bound.
    """

    def test_dataAfterFinalBlockInOnePiece(self) -> None:
        """
        A byte after the final block, in the same piece, is
        L{InvalidPayload}.
        """
        codec = makeCodec()
        with pytest.raises(InvalidPayload) as info:
            codec.decompress(FINAL_EMPTY_BLOCK + b"\x00", MIB)
        assert info.value.closeCode == 1007

    def test_dataAfterFinalBlockInALaterPiece(self) -> None:
        """
        The final block alone inflates to nothing; any later piece of the
        same message is L{InvalidPayload}, and an empty piece is not.
        """
        codec = makeCodec()
        assert codec.decompress(FINAL_EMPTY_BLOCK, MIB) == b""
        assert codec.decompress(b"", MIB) == b""
        with pytest.raises(InvalidPayload):
            codec.decompress(b"\x00" * 65536, MIB)

    def test_finalBlockThenFinIsAnEmptyMessage(self) -> None:
        """
        A message that is only a final block is an empty message, the
        appended trailer is not refused, and the next message starts a new
        stream.
        """
        codec = makeCodec()
        assert codec.decompress(FINAL_EMPTY_BLOCK, MIB) == b""
        assert codec.endMessage(MIB) == b""
        payload = clientCompress(clientCompressor(), JSON)
        assert codec.decompress(payload, MIB) + codec.endMessage(MIB) == JSON

    def test_readerFailsWithoutHolding(self) -> None:
        """
        The reader fed the first frame (RSV1, no FIN, C{03 00}) and then
        1 MiB continuation frames that never set FIN fails with 1007 at
        the first continuation byte, ignores the rest, and holds less
        than 1 MiB in all (traced allocations) over 40 MiB fed, against a
        C{maxMessageSize} of 1 MiB.
        """
        target = reader(maxMessageSize=MIB)
        # 0x41: FIN clear, RSV1, text.
        first = clientFrame(TEXT, FINAL_EMPTY_BLOCK, fin=False, rsv=0x40)
        assert first[:2] == b"\x41\x82"
        assert target.feed(first) == []
        continuation = clientFrame(CONT, b"\x00" * MIB, fin=False)
        # 0x00: FIN clear, continuation; 0xff: MASK, 64-bit length.
        assert continuation[:10] == b"\x00\xff" + (MIB).to_bytes(8, "big")
        events = []
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            for _ in range(40):
                events += target.feed(continuation)
            current, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert events == [
            ConnectionFailed(1007, "data after the end of the deflate stream")
        ]
        assert current - base < MIB


class TestEmptyMessage:
    """
    An empty compressed message with context takeover leaves the inflater
    usable (RFC 7692 section 7.2.3.6: an empty message compresses to
    C{00}; some clients send no payload at all).
    """

    @pytest.mark.parametrize("empty", [b"", b"\x00"], ids=["no-payload", "00"])
    def test_contextSurvives(self, empty: bytes) -> None:
        """
        Between two messages whose second refers back to the first, an
        empty compressed message (one frame: FIN, RSV1) is delivered as
        empty and the second message still inflates.
        """
        compressor = clientCompressor()
        one = clientCompress(compressor, JSON * 4)
        two = clientCompress(compressor, JSON * 4)
        # The second message is a back-reference: far shorter than the first.
        assert len(two) < len(one) // 2
        target = reader()
        stream = (
            compressedFrames(TEXT, one)
            + clientFrame(TEXT, empty, rsv=0x40)
            + compressedFrames(TEXT, two)
        )
        # 0xc1: FIN, RSV1, text; 0x80 | length: masked.
        header = clientFrame(TEXT, empty, rsv=0x40)[:2]
        assert header == bytes((0xC1, 0x80 | len(empty)))
        assert target.feed(stream) == [
            TextMessage((JSON * 4).decode()),
            TextMessage(""),
            TextMessage((JSON * 4).decode()),
        ]

    def test_emptyFragments(self) -> None:
        """
        An empty compressed message in three empty fragments is the same.
        """
        compressor = clientCompressor()
        one = clientCompress(compressor, JSON * 4)
        two = clientCompress(compressor, JSON * 4)
        target = reader()
        stream = (
            compressedFrames(BINARY, one)
            + compressedFrames(BINARY, b"", [0, 0])
            + compressedFrames(BINARY, two)
        )
        assert target.feed(stream) == [
            BinaryMessage(JSON * 4),
            BinaryMessage(b""),
            BinaryMessage(JSON * 4),
        ]

    def test_emptyFirstMessage(self) -> None:
        """
        An empty compressed message first, before the inflater exists,
        then a normal one.
        """
        target = reader()
        payload = clientCompress(clientCompressor(), JSON)
        stream = clientFrame(BINARY, b"", rsv=0x40) + compressedFrames(BINARY, payload)
        assert target.feed(stream) == [BinaryMessage(b""), BinaryMessage(JSON)]
