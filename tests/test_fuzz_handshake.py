"""
Fuzzing the opening handshake in the sans-I/O core (issue 11): arbitrary
bytes, and valid requests mutated at random, fed in arbitrary chunks to
L{RequestHeadReader}, then L{parseRequestHead} and L{checkUpgrade}.

- Nothing but L{HandshakeError} escapes, and its status is one of 400,
  405, 426, 431 and 505: every bad head gets an HTTP answer, never an
  internal error.
- The verdict (the handshake accepted, the status refused with, or "not
  complete yet") and the bytes after the head do not depend on how the
  bytes were chunked.

CI runs a bounded number of examples; set C{TXCLWS_FUZZ_EXAMPLES} (e.g.
C{20000}) for a longer run by hand.
"""

from __future__ import annotations

import os
from itertools import pairwise

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from txclws._core.errors import HandshakeError
from txclws._core.handshake import ClientHandshake, checkUpgrade
from txclws._core.request import RequestHeadReader, parseRequestHead

EXAMPLES = int(os.environ.get("TXCLWS_FUZZ_EXAMPLES", "300"))

#: The statuses the head alone may be refused with.
STATUSES = {400, 405, 426, 431, 505}

MAX_HEAD = 1024
MAX_HEADERS = 20

#: Valid heads to mutate: RFC 6455, hybi-08, hixie-76, absolute form.
SEEDS = [
    b"GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Origin: http://127.0.0.1\r\nSec-WebSocket-Version: 8\r\n\r\n",
    b"GET /demo HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\nSec-WebSocket-Protocol: sample\r\n"
    b"Upgrade: WebSocket\r\nSec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n"
    b"Origin: http://example.com\r\n\r\n^n:ds[4U",
    b"GET ws://127.0.0.1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
]

#: Bytes that matter to an HTTP parser, for insertions.
INTERESTING = [
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b",",
    b";",
    b"?",
    b"#",
    b"/",
    b"@",
    b"\x00",
    b"\x7f",
    b"\xe9",
    b"\xc3\xa9",
    b"\xb2",
    b"HTTP/1.1",
    b"HTTP/2.0",
    b"http://",
    b"ws://",
    b"Host: x\r\n",
    b"Sec-WebSocket-Version: 7\r\n",
    b"Sec-WebSocket-Key1: 1 2\r\n",
    b" folded\r\n",
    b"0" * 40,
    b"9" * 12,
    b"A" * 300,
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """
    A seed request with a few random edits: bytes deleted, replaced,
    inserted (random or interesting), lines duplicated, the head cut.
    """
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(
            st.sampled_from(
                ["delete", "replace", "insert", "duplicate", "cut", "many", "version"]
            )
        )
        at = draw(st.integers(0, len(data)))
        if kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            piece = draw(
                st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=8)
            )
            data[at:at] = piece
        elif kind == "duplicate":
            lines = bytes(data).split(b"\r\n")
            line = draw(st.sampled_from(lines))
            data[at:at] = line + b"\r\n"
        elif kind == "cut":
            del data[at:]
        elif kind == "many":
            # Toward the limits: many header lines, or long ones.
            line = draw(
                st.sampled_from([b"X-A: b\r\n", b"X-Pad: " + b"p" * 200 + b"\r\n"])
            )
            first = bytes(data).find(b"\r\n") + 2
            data[first:first] = line * draw(st.integers(1, 30))
        elif kind == "version":
            major, minor = draw(st.integers(0, 9)), draw(st.integers(0, 9))
            data[:] = bytes(data).replace(
                b"HTTP/1.1", b"HTTP/%d.%d" % (major, minor), 1
            )
    return bytes(data)


requests = st.one_of(st.binary(max_size=1500), mutated(), mutated(), mutated())


def summary(handshake: ClientHandshake) -> tuple[object, ...]:
    """
    What an accepted handshake says, comparable across runs.
    """
    request = handshake.request
    return (
        handshake.version,
        handshake.key,
        handshake.origin,
        handshake.subprotocols,
        handshake.hixieKeys,
        request.method,
        request.target,
        request.authority,
        request.path,
        request.query,
        request.headers.raw,
    )


def verdict(data: bytes, cuts: list[int], allowHixie76: bool) -> tuple[object, ...]:
    """
    Feed C{data} split at C{cuts}; what the core makes of it, and the
    bytes that followed the head.

    Any exception but L{HandshakeError} propagates and fails the test.
    """
    reader = RequestHeadReader(MAX_HEAD)
    bounds = [0, *sorted(cuts), len(data)]
    pieces = [data[a:b] for a, b in pairwise(bounds)]
    for index, piece in enumerate(pieces):
        try:
            head = reader.feed(piece)
        except HandshakeError as error:
            return ("refused", error.status)
        if head is None:
            continue
        after = reader.leftover + b"".join(pieces[index + 1 :])
        try:
            handshake = checkUpgrade(parseRequestHead(head, MAX_HEADERS), allowHixie76)
        except HandshakeError as error:
            return ("refused", error.status, after)
        return ("accepted", summary(handshake), after)
    return ("incomplete",)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=requests, cuts=st.lists(st.integers(0, 1600), max_size=12), hixie=st.booleans()
)
def test_handshakeFuzz(data: bytes, cuts: list[int], hixie: bool) -> None:
    """
    Whatever the bytes and however they are chunked, the core answers
    with a handshake or with one of the allowed statuses, and the same
    answer as for the bytes fed at once and fed one by one.
    """
    cuts = [cut for cut in cuts if cut <= len(data)]
    whole = verdict(data, [], hixie)
    event(f"verdict: {whole[:2] if whole[0] == 'refused' else whole[0]}")
    if whole[0] == "refused":
        assert whole[1] in STATUSES, whole
    assert verdict(data, cuts, hixie) == whole
    assert verdict(data, list(range(1, len(data))), hixie) == whole


def test_seedsAccepted() -> None:
    """
    The seeds themselves are accepted (with hixie-76 allowed): the
    mutations start from valid requests.
    """
    for seed in SEEDS:
        assert verdict(seed, [], True)[0] == "accepted", seed
