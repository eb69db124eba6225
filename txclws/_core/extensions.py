# -*- test-case-name: tests.test_deflate -*-
"""
The C{Sec-WebSocket-Extensions} header (RFC 6455 section 9.1) and the
window-bits values of permessage-deflate's parameters (RFC 7692 7.1.2), as
both roles parse them (L{txclws._core.deflate}, L{txclws._core.clientdeflate}).
"""

from __future__ import annotations

__all__ = ["parseExtensions", "parseWindowBits"]


def parseWindowBits(value: str | None) -> int | None:
    """
    A C{*_max_window_bits} value (RFC 7692 7.1.2), or C{None} if invalid.
    """
    # RFC 7692 7.1.2: 1*DIGIT without leading zeroes.  str.isdigit alone
    # also admits non-ASCII digits, some of which int() refuses ("\xb2").
    if (
        value is None
        or not value.isascii()
        or not value.isdigit()
        or value.startswith("0")
    ):
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


def parseExtensions(header: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """
    Parse a C{Sec-WebSocket-Extensions} value (RFC 6455 section 9.1) into
    C{(name, [(param, value or None), ...])} in order; quoted values are
    unquoted.  Malformed elements are given as they are, to be declined.
    """
    extensions = []
    for element in header.split(","):
        pieces = [piece.strip() for piece in element.split(";")]
        if not pieces[0]:
            continue
        params: list[tuple[str, str | None]] = []
        for piece in pieces[1:]:
            key, sep, value = piece.partition("=")
            key = key.strip()
            if sep:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                params.append((key, value))
            else:
                params.append((key, None))
        extensions.append((pieces[0].lower(), params))
    return extensions
