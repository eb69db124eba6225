# -*- test-case-name: tests.test_utf8 -*-
"""
Incremental UTF-8 validation that fails as early as the bytes allow.

RFC 6455 section 8.1: an endpoint that receives invalid UTF-8 in a text
message must fail the connection; failing on the first byte that can no
longer start valid UTF-8, rather than at the end of the message, spares
buffering the rest (Autobahn cases 6.4.*).

The standard library's incremental decoder does the work in C.  Fed with
C{final=False} it already rejects every impossible byte at once, with one
exception, measured exhaustively over every two- and three-byte prefix: it
holds C{ED A0}..C{ED BF} (the start of an encoded UTF-16 surrogate) until the
third byte arrives.  L{Utf8Validator.feed} closes that gap by looking at the
bytes the decoder holds back.
"""

from __future__ import annotations

import codecs

from txclws._core.errors import InvalidPayload

__all__ = ["Utf8Validator"]

_Decoder = codecs.getincrementaldecoder("utf-8")


class Utf8Validator:
    """
    Checks a stream of bytes, piece by piece, for UTF-8 validity.
    """

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _Decoder()

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """
        Check the next piece of the stream.

        @raise InvalidPayload: the bytes so far cannot begin valid UTF-8.
        """
        self.decode(data)

    def decode(self, data: bytes | bytearray | memoryview) -> str:
        """
        Check the next piece of the stream, and decode it.

        @return: the text of every code point the piece completes: the
            bytes of a code point split across pieces are held back until
            its last byte arrives, so the pieces' texts, joined, are the
            stream's text.
        @raise InvalidPayload: the bytes so far cannot begin valid UTF-8.
        @since: 0.2.0
        """
        decoder = self._decoder
        try:
            text = decoder.decode(data, False)
        except UnicodeDecodeError as exc:
            raise InvalidPayload("text is not valid UTF-8") from exc
        pending = decoder.getstate()[0]
        # An encoded surrogate, U+D800..U+DFFF (RFC 3629 section 3).
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise InvalidPayload("text is not valid UTF-8")
        return text

    def finish(self) -> None:
        """
        Check that the stream did not end inside a character.

        @raise InvalidPayload: it did.
        """
        try:
            self._decoder.decode(b"", True)
        except UnicodeDecodeError as exc:
            raise InvalidPayload("text ends inside a UTF-8 sequence") from exc
