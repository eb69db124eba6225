"""
permessage-deflate in the client role (RFC 7692): the offer's header, the
checks of the server's answer, and a codec that honours what was agreed,
shown against the server's own negotiation and codec.
"""

from __future__ import annotations

import zlib

import pytest

from txclws._core.clientdeflate import (
    DeflateAgreement,
    DeflateOffer,
    DeflateRefused,
    clientCodecParameters,
)
from txclws._core.deflate import DeflateCodec, DeflateParameters, PerMessageDeflate


class TestOffer:
    """
    RFC 7692 7.1: the offer's parameters.
    """

    def test_default(self) -> None:
        """
        By default we offer to let the server pick our window (7.1.2.2).
        """
        assert DeflateOffer().header() == "permessage-deflate; client_max_window_bits"

    def test_everything(self) -> None:
        """
        Every parameter, in the RFC's order.
        """
        offer = DeflateOffer(True, True, 8, 9)
        assert offer.header() == (
            "permessage-deflate; server_no_context_takeover;"
            " client_no_context_takeover; server_max_window_bits=8;"
            " client_max_window_bits=9"
        )
        assert DeflateOffer(clientMaxWindowBits=False).header() == "permessage-deflate"

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"serverMaxWindowBits": 7},
            {"serverMaxWindowBits": 16},
            {"clientMaxWindowBits": 8},
            {"compressLevel": 0},
        ],
    )
    def test_invalid(self, kwargs: dict[str, int]) -> None:
        """
        Window bits outside 8-15 (ours 9-15: zlib cannot make a raw stream
        with an 8-bit window) and bad zlib settings are refused at once.
        """
        with pytest.raises(ValueError):
            DeflateOffer(**kwargs)  # type: ignore[arg-type]


class TestAccept:
    """
    RFC 7692 5 and 7.1: the client fails the connection on a response that
    does not answer its offer.
    """

    def agreed(self, offer: DeflateOffer, header: str) -> DeflateParameters:
        codec = offer.accept(header)
        assert codec is not None
        return codec.params

    def test_none(self) -> None:
        """
        No extension in the answer: no codec.
        """
        assert DeflateOffer().accept(None) is None
        assert DeflateOffer().accept("") is None

    def test_plain(self) -> None:
        """
        A bare acceptance: context takeover and 15-bit windows both ways.
        """
        assert self.agreed(DeflateOffer(), "permessage-deflate") == (
            DeflateParameters(False, False, 15, 15)
        )

    def test_swapped(self) -> None:
        """
        The codec names "ours" server*: the agreed client_* parameters are
        its server*, and the other way round.
        """
        header = (
            "permessage-deflate; client_no_context_takeover;"
            " client_max_window_bits=10; server_max_window_bits=12"
        )
        assert self.agreed(DeflateOffer(serverMaxWindowBits=12), header) == (
            DeflateParameters(
                serverNoContextTakeover=True,
                clientNoContextTakeover=False,
                serverMaxWindowBits=10,
                clientMaxWindowBits=12,
            )
        )
        agreement = DeflateAgreement(True, False, 9, 11)
        assert clientCodecParameters(agreement) == DeflateParameters(False, True, 11, 9)

    def test_ownPromise(self) -> None:
        """
        Offering client_no_context_takeover binds us even if the server
        does not repeat it (7.1.1.2); our offered window bounds ours.
        """
        offer = DeflateOffer(clientNoContextTakeover=True, clientMaxWindowBits=11)
        params = self.agreed(offer, "permessage-deflate")
        assert params.serverNoContextTakeover
        assert params.serverMaxWindowBits == 11

    def test_serverMayChoose(self) -> None:
        """
        The server may add server_no_context_takeover or
        server_max_window_bits unasked (7.1.1.1, 7.1.2.1).
        """
        header = (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
        )
        params = self.agreed(DeflateOffer(), header)
        assert params.clientNoContextTakeover and params.clientMaxWindowBits == 9

    @pytest.mark.parametrize(
        "offer, header",
        [
            (DeflateOffer(), "x-webkit-deflate-frame"),
            (DeflateOffer(), "permessage-deflate, permessage-deflate"),
            (DeflateOffer(), "permessage-deflate; foo"),
            (DeflateOffer(), "permessage-deflate; server_no_context_takeover=1"),
            (DeflateOffer(), "permessage-deflate; server_max_window_bits"),
            (DeflateOffer(), "permessage-deflate; server_max_window_bits=16"),
            (DeflateOffer(), "permessage-deflate; server_max_window_bits=09"),
            (DeflateOffer(), "permessage-deflate; client_max_window_bits=8"),
            (
                DeflateOffer(),
                "permessage-deflate; server_no_context_takeover;"
                " server_no_context_takeover",
            ),
            (
                DeflateOffer(clientMaxWindowBits=False),
                "permessage-deflate; client_max_window_bits=10",
            ),
            (DeflateOffer(serverMaxWindowBits=10), "permessage-deflate"),
            (
                DeflateOffer(serverMaxWindowBits=10),
                "permessage-deflate; server_max_window_bits=11",
            ),
        ],
        ids=[
            "other-extension",
            "two",
            "unknown-param",
            "flag-with-value",
            "bits-without-value",
            "bits-16",
            "leading-zero",
            "own-8-bits",
            "repeated",
            "client-bits-not-offered",
            "server-bits-unanswered",
            "server-bits-over-asked",
        ],
    )
    def test_refused(self, offer: DeflateOffer, header: str) -> None:
        """
        Each answer that does not match the offer fails.
        """
        with pytest.raises(DeflateRefused):
            offer.accept(header)


def serverCodec(
    offer: DeflateOffer, policy: PerMessageDeflate
) -> tuple[DeflateCodec, DeflateCodec]:
    """
    The server's and the client's codecs for C{offer}, negotiated by the
    server's own code.
    """
    negotiated = policy.negotiate(offer.header())
    assert negotiated is not None
    header, params = negotiated
    client = offer.accept(header)
    assert client is not None
    return DeflateCodec(params, policy), client


class TestCodec:
    """
    The client's codec talks to the server's, with what was agreed.
    """

    @pytest.mark.parametrize(
        "offer",
        [
            DeflateOffer(),
            DeflateOffer(clientNoContextTakeover=True),
            DeflateOffer(serverNoContextTakeover=True, serverMaxWindowBits=9),
            DeflateOffer(clientMaxWindowBits=9),
        ],
        ids=["default", "client-nct", "server-nct-9", "client-9"],
    )
    def test_bothWays(self, offer: DeflateOffer) -> None:
        """
        Messages compressed by either side inflate on the other, in order.
        """
        server, client = serverCodec(offer, PerMessageDeflate(clientMaxWindowBits=10))
        messages = [b"hello " * 50, b"hello " * 50 + b"world", b"x" * 5000]
        for message in messages:
            assert (
                server.decompress(client.compress(message), 1 << 20)
                + (server.endMessage(1 << 20))
                == message
            )
            assert (
                client.decompress(server.compress(message), 1 << 20)
                + (client.endMessage(1 << 20))
                == message
            )

    def test_noContextTakeoverHonoured(self) -> None:
        """
        client_no_context_takeover agreed: each of our messages inflates on
        its own, with a fresh inflater.
        """
        _, client = serverCodec(
            DeflateOffer(clientNoContextTakeover=True), PerMessageDeflate()
        )
        message = b"repeat me " * 20
        client.compress(message)
        second = client.compress(message)
        inflater = zlib.decompressobj(-15)
        assert inflater.decompress(second + b"\x00\x00\xff\xff") == message

    def test_windowHonoured(self) -> None:
        """
        client_max_window_bits=9 agreed: what we send inflates with a
        9-bit window, even with a back-reference 1000 bytes away.
        """
        _, client = serverCodec(
            DeflateOffer(), PerMessageDeflate(clientMaxWindowBits=9)
        )
        assert client.params.serverMaxWindowBits == 9
        message = bytes(range(256)) * 4 + bytes(range(256)) * 4
        inflater = zlib.decompressobj(-9)
        compressed = client.compress(message)
        assert inflater.decompress(compressed + b"\x00\x00\xff\xff") == message
