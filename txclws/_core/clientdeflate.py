# -*- test-case-name: tests.test_clientdeflate -*-
"""
permessage-deflate (RFC 7692) in the client role: the offer, the check of
the server's response, and the codec the agreed parameters give.

The codec is L{txclws._core.deflate.DeflateCodec}, unchanged: it names its
parameters from the server's side (C{server*} is what it compresses with,
C{client*} what its peer compresses with), so a client's codec is built
with the agreed parameters swapped (L{clientCodecParameters}): our
compressor honours C{client_no_context_takeover} and
C{client_max_window_bits}, our inflater C{server_*}.
"""

from __future__ import annotations

from dataclasses import dataclass

from txclws._core.deflate import DeflateCodec, DeflateParameters, PerMessageDeflate
from txclws._core.extensions import parseExtensions, parseWindowBits

__all__ = ["DeflateAgreement", "DeflateOffer", "clientCodecParameters"]

_NAME = "permessage-deflate"
# zlib cannot compress a raw deflate stream with an 8-bit window: a server
# that limits ours to 8 bits cannot be obeyed (see txclws._core.deflate).
_MIN_OWN_BITS = 9
_FLAGS = ("server_no_context_takeover", "client_no_context_takeover")
_PARAMETERS = frozenset({*_FLAGS, "server_max_window_bits", "client_max_window_bits"})


class DeflateRefused(ValueError):
    """
    The server's permessage-deflate response does not answer our offer
    (RFC 7692 section 5: the client must then fail the connection).
    """


@dataclass(frozen=True, slots=True)
class DeflateAgreement:
    """
    What the server's response agreed to, in RFC 7692's own terms.

    @ivar serverNoContextTakeover: the server resets its compressor after
        each message.
    @ivar clientNoContextTakeover: we reset ours.
    @ivar serverMaxWindowBits: the server compresses within this window.
    @ivar clientMaxWindowBits: we compress within this window.
    """

    serverNoContextTakeover: bool = False
    clientNoContextTakeover: bool = False
    serverMaxWindowBits: int = 15
    clientMaxWindowBits: int = 15


def clientCodecParameters(agreed: DeflateAgreement) -> DeflateParameters:
    """
    The L{DeflateParameters} of a client's L{DeflateCodec}: the agreement
    seen from the codec's side, where C{server*} means "ours".
    """
    return DeflateParameters(
        serverNoContextTakeover=agreed.clientNoContextTakeover,
        clientNoContextTakeover=agreed.serverNoContextTakeover,
        serverMaxWindowBits=agreed.clientMaxWindowBits,
        clientMaxWindowBits=agreed.serverMaxWindowBits,
    )


@dataclass(frozen=True, slots=True)
class DeflateOffer:
    """
    A client's permessage-deflate offer, with every parameter of RFC 7692
    section 7.1.

    @ivar serverNoContextTakeover: ask the server to reset its compressor
        after each message (C{server_no_context_takeover}, 7.1.1.1).
    @ivar clientNoContextTakeover: promise to reset ours after each
        message (C{client_no_context_takeover}, 7.1.1.2): less memory kept
        by the server, a lower ratio.
    @ivar serverMaxWindowBits: ask the server to compress within this
        window (8-15, C{server_max_window_bits}, 7.1.2.1), or C{None}: any.
    @ivar clientMaxWindowBits: C{True} to say we can compress within a
        window the server picks (C{client_max_window_bits} without a value,
        7.1.2.2); an int (9-15) to say we will use at most that window;
        C{False} not to offer the parameter.
    @ivar compressLevel: zlib level, 1 (fast) to 9 (small).
    @ivar memLevel: zlib memory level, 1-9.
    @ivar minSize: messages shorter than this are sent uncompressed.
    @since: 0.2.0
    """

    serverNoContextTakeover: bool = False
    clientNoContextTakeover: bool = False
    serverMaxWindowBits: int | None = None
    clientMaxWindowBits: int | bool = True
    compressLevel: int = 6
    memLevel: int = 8
    minSize: int = 64

    def __post_init__(self) -> None:
        bits = self.serverMaxWindowBits
        if bits is not None and not 8 <= bits <= 15:
            raise ValueError("serverMaxWindowBits must be between 8 and 15")
        own = self.clientMaxWindowBits
        if type(own) is int and not _MIN_OWN_BITS <= own <= 15:
            raise ValueError("clientMaxWindowBits must be between 9 and 15")
        # The zlib settings are checked where they are used.
        self.policy()

    def header(self) -> str:
        """
        The C{Sec-WebSocket-Extensions} value of the offer.
        """
        parts = [_NAME]
        if self.serverNoContextTakeover:
            parts.append("server_no_context_takeover")
        if self.clientNoContextTakeover:
            parts.append("client_no_context_takeover")
        if self.serverMaxWindowBits is not None:
            parts.append(f"server_max_window_bits={self.serverMaxWindowBits}")
        own = self.clientMaxWindowBits
        if own is True:
            parts.append("client_max_window_bits")
        elif own is not False:
            parts.append(f"client_max_window_bits={own}")
        return "; ".join(parts)

    def policy(self) -> PerMessageDeflate:
        """
        The zlib settings, in the form L{DeflateCodec} takes them.
        """
        return PerMessageDeflate(
            compressLevel=self.compressLevel,
            memLevel=self.memLevel,
            minSize=self.minSize,
        )

    def accept(self, header: str | None) -> DeflateCodec | None:
        """
        Check the server's C{Sec-WebSocket-Extensions} response.

        @return: the client's codec, or C{None} when the server agreed to
            no extension.
        @raise DeflateRefused: the response names an extension we did not
            offer, more than one, or parameters that do not answer the
            offer (RFC 6455 4.1, RFC 7692 5 and 7.1).
        """
        extensions = parseExtensions(header or "")
        if not extensions:
            return None
        if len(extensions) > 1:
            raise DeflateRefused("more than one extension in the response")
        name, params = extensions[0]
        if name != _NAME:
            raise DeflateRefused(f"extension {name!r} was not offered")
        agreed = self._agreement(params)
        return DeflateCodec(clientCodecParameters(agreed), self.policy())

    def _agreement(self, params: list[tuple[str, str | None]]) -> DeflateAgreement:
        given: dict[str, str | None] = {}
        for key, value in params:
            if key in given:
                raise DeflateRefused(f"parameter {key} repeated")  # RFC 7692 7.1
            given[key] = value
        for key in _FLAGS:
            if key in given and given[key] is not None:
                raise DeflateRefused(f"parameter {key} has a value")
        unknown = set(given) - _PARAMETERS
        if unknown:
            raise DeflateRefused(f"unknown parameter {sorted(unknown)[0]}")
        return DeflateAgreement(
            # 7.1.1.1: the server may choose this even if not asked.
            serverNoContextTakeover="server_no_context_takeover" in given,
            # 7.1.1.2: the server may ask it; we also keep our own promise.
            clientNoContextTakeover=self.clientNoContextTakeover
            or "client_no_context_takeover" in given,
            serverMaxWindowBits=self._serverBits(given),
            clientMaxWindowBits=self._ownBits(given),
        )

    def _serverBits(self, given: dict[str, str | None]) -> int:
        if "server_max_window_bits" not in given:
            if self.serverMaxWindowBits is not None:
                # 7.1.2.1: asked for, it must be answered.
                raise DeflateRefused("server_max_window_bits not answered")
            return 15
        bits = parseWindowBits(given["server_max_window_bits"])
        if bits is None:
            raise DeflateRefused("invalid server_max_window_bits")
        if self.serverMaxWindowBits is not None and bits > self.serverMaxWindowBits:
            raise DeflateRefused("server_max_window_bits over what we asked")
        return bits

    def _ownBits(self, given: dict[str, str | None]) -> int:
        own = self.clientMaxWindowBits
        limit = 15 if type(own) is bool else own
        if "client_max_window_bits" not in given:
            return limit
        if own is False:
            # 7.1.2.2: only in answer to an offer that had it.
            raise DeflateRefused("client_max_window_bits was not offered")
        bits = parseWindowBits(given["client_max_window_bits"])
        if bits is None:
            raise DeflateRefused("invalid client_max_window_bits")
        if bits < _MIN_OWN_BITS:
            raise DeflateRefused("client_max_window_bits=8 cannot be honoured")
        return min(bits, limit)
