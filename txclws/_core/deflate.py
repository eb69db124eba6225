# -*- test-case-name: tests.test_deflate -*-
"""
permessage-deflate (RFC 7692): negotiation and the per-connection codec.

L{PerMessageDeflate} is the server's policy, set on the factory;
L{PerMessageDeflate.negotiate} reads a client's C{Sec-WebSocket-Extensions}
offers and returns the response header and the agreed L{DeflateParameters};
L{DeflateCodec} then compresses our messages and inflates the client's, in
bounded steps so that a small frame cannot inflate past C{maxMessageSize}
in memory (a decompression bomb is refused with 1009 after at most the
limit plus one byte of output).

Memory: zlib objects are made on first use, so an idle connection holds
none.  Messages we send without context takeover go through one compressor
shared by every connection with the same settings (a full flush after each
message makes each one independent of the last); with context takeover each
connection that is sent a compressed message keeps its own compressor,
about C{2 ** (serverMaxWindowBits + 2) + 2 ** (memLevel + 9)} bytes (256 KiB
at 15 and 8, 24 KiB at 11 and 4).  A connection whose client compresses
keeps an inflater of about C{2 ** clientMaxWindowBits} bytes plus 7 KiB
between messages, unless C{client_no_context_takeover} was agreed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from txclws._core.errors import InvalidPayload, MessageTooBig
from txclws._core.extensions import parseExtensions, parseWindowBits

__all__ = [
    "DeflateCodec",
    "DeflateParameters",
    "PerMessageDeflate",
]

_NAME = "permessage-deflate"
_TRAILER = b"\x00\x00\xff\xff"
# zlib cannot make a raw deflate stream with an 8-bit window (it silently
# uses 9), so an offer that limits our window to 8 bits is declined.
_MIN_SERVER_BITS = 9


@dataclass(frozen=True, slots=True)
class DeflateParameters:
    """
    What one connection agreed on (RFC 7692 section 7.1).

    @ivar serverNoContextTakeover: we reset our compressor per message.
    @ivar clientNoContextTakeover: the client resets its compressor per
        message, so we may reset our inflater.
    @ivar serverMaxWindowBits: the window we compress with.
    @ivar clientMaxWindowBits: the largest window the client compresses
        with.
    """

    serverNoContextTakeover: bool = False
    clientNoContextTakeover: bool = False
    serverMaxWindowBits: int = 15
    clientMaxWindowBits: int = 15

    def responseHeader(self, announceServerBits: bool, announceClientBits: bool) -> str:
        """
        The C{Sec-WebSocket-Extensions} value that accepts the offer.
        """
        parts = [_NAME]
        if self.serverNoContextTakeover:
            parts.append("server_no_context_takeover")
        if self.clientNoContextTakeover:
            parts.append("client_no_context_takeover")
        if announceServerBits:
            parts.append(f"server_max_window_bits={self.serverMaxWindowBits}")
        if announceClientBits:
            parts.append(f"client_max_window_bits={self.clientMaxWindowBits}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class PerMessageDeflate:
    """
    The server's permessage-deflate policy.

    @ivar serverNoContextTakeover: compress each message on its own even
        when the client allows context takeover: a lower ratio, but no
        compressor kept per connection, and a broadcast compresses once per
        setting rather than once per client.
    @ivar serverMaxWindowBits: the largest window we compress with (9-15);
        smaller saves memory and ratio.
    @ivar clientMaxWindowBits: ask clients that allow it to compress with at
        most this window (8-15), which bounds our inflater's memory.
    @ivar compressLevel: zlib level, 1 (fast) to 9 (small).
    @ivar memLevel: zlib memory level, 1-9.
    @ivar minSize: messages shorter than this many bytes are sent
        uncompressed (RFC 7692 section 6: compression is per message).
    """

    serverNoContextTakeover: bool = False
    # The defaults keep a compressing connection's zlib state near 40 KiB
    # (deflate: 4 << 12 window + 512 << 5 hash; inflate: 1 << 12 when the
    # client lets us choose its window) instead of about 300 KiB at zlib's
    # 15/8, for a few percent of ratio on small messages; websockets
    # chose the same (see docs, compression: the trade-off, measured).
    serverMaxWindowBits: int = 12
    clientMaxWindowBits: int = 12
    compressLevel: int = 6
    memLevel: int = 5
    minSize: int = 64

    def __post_init__(self) -> None:
        if not _MIN_SERVER_BITS <= self.serverMaxWindowBits <= 15:
            raise ValueError("serverMaxWindowBits must be between 9 and 15")
        if not 8 <= self.clientMaxWindowBits <= 15:
            raise ValueError("clientMaxWindowBits must be between 8 and 15")
        if not 1 <= self.compressLevel <= 9 or not 1 <= self.memLevel <= 9:
            raise ValueError("compressLevel and memLevel must be between 1 and 9")

    def negotiate(self, header: str | None) -> tuple[str, DeflateParameters] | None:
        """
        Accept the first of the client's permessage-deflate offers that we
        can, in the client's order of preference.

        @param header: the C{Sec-WebSocket-Extensions} value(s), or C{None}.
        @return: the response header value and the agreed parameters, or
            C{None} when no offer is acceptable (the connection then goes on
            without compression).
        """
        for name, params in parseExtensions(header or ""):
            if name == _NAME:
                accepted = self._accept(params)
                if accepted is not None:
                    return accepted
        return None

    def _accept(
        self, params: list[tuple[str, str | None]]
    ) -> tuple[str, DeflateParameters] | None:
        offered: dict[str, str | None] = {}
        for key, value in params:
            if key in offered:
                return None  # RFC 7692 7.1: a repeated parameter is invalid
            offered[key] = value
        serverBits = self.serverMaxWindowBits
        clientBits = 15
        for key, value in offered.items():
            if key in ("server_no_context_takeover", "client_no_context_takeover"):
                if value is not None:
                    return None
            elif key == "server_max_window_bits":
                bits = parseWindowBits(value)
                if bits is None:
                    return None
                serverBits = min(serverBits, bits)
                if serverBits < _MIN_SERVER_BITS:
                    return None
            elif key == "client_max_window_bits":
                if value is not None:
                    bits = parseWindowBits(value)
                    if bits is None:
                        return None
                    clientBits = bits
                clientBits = min(clientBits, self.clientMaxWindowBits)
            else:
                return None  # an unknown parameter: decline this offer
        agreed = DeflateParameters(
            serverNoContextTakeover=self.serverNoContextTakeover
            or "server_no_context_takeover" in offered,
            clientNoContextTakeover="client_no_context_takeover" in offered,
            serverMaxWindowBits=serverBits,
            clientMaxWindowBits=clientBits,
        )
        header = agreed.responseHeader(
            announceServerBits="server_max_window_bits" in offered,
            announceClientBits="client_max_window_bits" in offered and clientBits < 15,
        )
        return header, agreed


#: Shared compressors for messages sent without context takeover, by
#: (window bits, level, memory level): each message ends with a full flush,
#: so what one connection sent never shapes another's bytes.
_sharedCompressors: dict[tuple[int, int, int], zlib._Compress] = {}


class DeflateCodec:
    """
    One connection's permessage-deflate state.

    @ivar wireKey: equal for connections whose compressed bytes for a given
        message are equal, which is what lets a broadcast compress once per
        setting: the setting itself without context takeover, else this
        codec.
    @ivar _messageStarted: the client's message being inflated has given
        us compressed bytes (an empty payload gives none).
    """

    __slots__ = (
        "_compressor",
        "_inflater",
        "_messageStarted",
        "minSize",
        "params",
        "policy",
        "wireKey",
    )

    def __init__(self, params: DeflateParameters, policy: PerMessageDeflate) -> None:
        self.params = params
        self.policy = policy
        self.minSize = policy.minSize
        self._compressor: zlib._Compress | None = None
        self._inflater: zlib._Decompress | None = None
        self._messageStarted = False
        self.wireKey: object = (
            (
                "deflate",
                params.serverMaxWindowBits,
                policy.compressLevel,
                policy.memLevel,
            )
            if params.serverNoContextTakeover
            else self
        )

    # -- outgoing --------------------------------------------------------

    def compress(self, payload: bytes | memoryview) -> bytes:
        """
        Compress one whole message (RFC 7692 section 7.2.1): the deflate
        output up to a sync flush, less its final C{00 00 ff ff}.
        """
        params = self.params
        if params.serverNoContextTakeover:
            key = (
                params.serverMaxWindowBits,
                self.policy.compressLevel,
                self.policy.memLevel,
            )
            compressor = _sharedCompressors.get(key)
            if compressor is None:
                compressor = _sharedCompressors[key] = self._newCompressor()
            flush = zlib.Z_FULL_FLUSH
        else:
            compressor = self._compressor
            if compressor is None:
                compressor = self._compressor = self._newCompressor()
            flush = zlib.Z_SYNC_FLUSH
        data = compressor.compress(payload) + compressor.flush(flush)
        return data[:-4] if data.endswith(_TRAILER) else data

    def streamCompressor(self) -> zlib._Compress:
        """
        The compressor of one message sent as it comes
        (L{txclws._core.fragments.MessageFramer}): this connection's own
        with context takeover (its messages go out one after another), a
        fresh one without (a shared one would interleave other connections'
        messages with the fragments of this one).

        @since: 0.2.0
        """
        if self.params.serverNoContextTakeover:
            return self._newCompressor()
        if self._compressor is None:
            self._compressor = self._newCompressor()
        return self._compressor

    def _newCompressor(self) -> zlib._Compress:
        return zlib.compressobj(
            self.policy.compressLevel,
            zlib.DEFLATED,
            -self.params.serverMaxWindowBits,
            self.policy.memLevel,
        )

    # -- incoming (txclws._core.reader.IncomingCompression) --------------------

    def decompress(self, data: bytes | memoryview, limit: int) -> bytes:
        """
        Inflate the next piece of a compressed message, producing at most
        C{limit} bytes.

        Nothing of C{data} is kept but what it inflates to: input that
        zlib could not inflate within C{limit} (its C{unconsumed_tail}) is
        refused as too big, and input after the end of the deflate stream
        (its C{unused_data}) as invalid, so what this codec holds for a
        message is its output and the inflater's window.

        @raise MessageTooBig: it would produce more.
        @raise InvalidPayload: the data is not valid deflate, or follows
            the end of the message's deflate stream.
        """
        if not data:
            return b""
        inflater = self._inflater
        if inflater is None:
            # A wider window than the client's is always safe to inflate
            # with, and zlib's deflate never really uses fewer than 9 bits.
            inflater = self._inflater = zlib.decompressobj(
                -max(self.params.clientMaxWindowBits, _MIN_SERVER_BITS)
            )
        elif inflater.eof:
            raise _afterTheEnd()
        self._messageStarted = True
        out = _inflate(inflater, data, limit)
        if inflater.unused_data:
            raise _afterTheEnd()
        return out

    def endMessage(self, limit: int) -> bytes:
        """
        Inflate what the end of a compressed message releases (RFC 7692
        section 7.2.2: the receiver appends C{00 00 ff ff}).

        A message whose payload was empty inflates to nothing and leaves
        the context as it was: appended to nothing, C{00 00 ff ff} would
        begin a stored block that the next message could not continue
        (RFC 7692 section 7.2.3.6 makes an empty message's payload
        C{00}).  A message that ended its deflate stream with a final
        block (BFINAL, section 7.2.3.5) needs no trailer, and the next one
        starts a new stream.
        """
        inflater = self._inflater
        out = b""
        if self._messageStarted and inflater is not None and not inflater.eof:
            # What follows the end of the stream here is our own trailer.
            out = _inflate(inflater, _TRAILER, limit)
        self._messageStarted = False
        if self.params.clientNoContextTakeover or (
            inflater is not None and inflater.eof
        ):
            self._inflater = None
        return out


def _inflate(inflater: zlib._Decompress, data: bytes | memoryview, limit: int) -> bytes:
    """
    Inflate C{data}, producing at most C{limit} bytes.

    @raise MessageTooBig: it would produce more.
    @raise InvalidPayload: the data is not valid deflate.
    """
    try:
        # limit + 1: one byte past the limit proves it is exceeded
        # without inflating a byte more.
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidPayload("invalid compressed data") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise MessageTooBig("message inflates past the size limit")
    return out


def _afterTheEnd() -> InvalidPayload:
    # RFC 7692 7.2.2: a message's payload (with 00 00 ff ff appended) is
    # one DEFLATE stream (RFC 1951); bytes after its final block belong to
    # no block.  zlib would keep them, unbounded, in unused_data.  1007, as
    # for any payload that is not what RSV1 declares it (RFC 6455 7.4.1).
    return InvalidPayload("data after the end of the deflate stream")
