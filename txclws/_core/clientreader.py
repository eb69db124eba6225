# -*- test-case-name: tests.test_clientconnection,tests.test_streamreader -*-
"""
What a client reads: a server's frames, which are never masked (RFC 6455
5.1), whole (L{UnmaskedMessageReader}) or streamed
(L{UnmaskedStreamingReader}).
"""

from __future__ import annotations

from txclws._core.reader import MessageReader
from txclws._core.streamreader import StreamingMessageReader

__all__ = ["UnmaskedMessageReader", "UnmaskedStreamingReader"]


def _unmasked(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """
    A payload that was sent unmasked, as it is.
    """
    return bytes(data)


class UnmaskedMessageReader(MessageReader):
    """
    Assembles a server's frames into events: what a client reads.

    A server never masks its frames (RFC 6455 5.1: "A server MUST NOT mask
    any frames that it sends to the client"; a client "MUST close a
    connection if it detects a masked frame"), so a frame with the MASK bit
    set fails the connection with 1002, and a payload is taken as it is.
    Every other rule is L{MessageReader}'s.  The server's fast path (whole,
    small, masked frames in one test) never matches here: it needs the MASK
    bit, and C{_smallLimit} is 0.
    """

    __slots__ = ()

    _MASK_BIT = 0
    _KEY_SIZE = 0
    _MASK_RULE = "server frame is masked"
    _unmask = staticmethod(_unmasked)
    _unmaskData = staticmethod(_unmasked)
    # The masked fast path is not for a client: a masked frame must reach
    # _checkHeader, and fail.
    _fastPath = False


class UnmaskedStreamingReader(StreamingMessageReader, UnmaskedMessageReader):
    """
    Reads a server's frames (unmasked, L{UnmaskedMessageReader}'s rules),
    streaming each data message: what a streaming client reads.
    """

    __slots__ = ()

    # StreamingMessageReader's (masked) comes first in the method order.
    _unmaskData = staticmethod(_unmasked)
