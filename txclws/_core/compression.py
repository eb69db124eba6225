# -*- test-case-name: tests.test_reader,tests.test_deflate -*-
"""
What the frame reader (L{txclws._core.reader.MessageReader}) needs of a
negotiated compression extension: L{IncomingCompression}, which
L{txclws._core.deflate} provides for permessage-deflate (RFC 7692).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["IncomingCompression"]


class IncomingCompression(Protocol):
    """
    What L{MessageReader} needs of a negotiated compression extension
    (permessage-deflate, RFC 7692), which owns the decompressor state.
    """

    def decompress(self, data: bytes | memoryview, limit: int) -> bytes:
        """
        Inflate the next piece of a compressed message.

        @param limit: the most bytes the whole message may inflate to, less
            what it already did.
        @raise MessageTooBig: the output would exceed C{limit}.
        @raise InvalidPayload: the data is not valid for the extension
            (for permessage-deflate: not deflate, or after the end of the
            message's deflate stream), so nothing of it is kept.
        """

    def endMessage(self, limit: int) -> bytes:
        """
        Inflate whatever the end of the compressed message releases.

        @raise MessageTooBig: the output would exceed C{limit}.
        """
