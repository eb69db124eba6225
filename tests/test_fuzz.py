"""
Fuzzing the sans-I/O core: arbitrary bytes and arbitrary sequences of valid
and invalid frames, fed in arbitrary chunks, against the invariants that
keep a server safe.

- No exception escapes C{receiveData}: every protocol violation becomes a
  L{ConnectionFailed} event carrying a close code (1002, 1007 or 1009).
- A L{CloseReceived} or L{ConnectionFailed} is the last event ever given.
- Memory stays within the limits: the message being assembled never
  exceeds C{maxMessageSize}, buffered header bytes never exceed 13, a
  control payload never exceeds 125.

CI runs a bounded number of examples; set C{TXCLWS_FUZZ_EXAMPLES} (e.g.
C{20000}) for a longer run by hand.
"""

from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from txclws._core.connection import ConnectionState, WebSocketConnection
from txclws._core.deflate import DeflateCodec, DeflateParameters, PerMessageDeflate
from txclws._core.errors import ConnectionClosed
from txclws._core.events import CloseReceived, ConnectionFailed

MAX_FRAME = 4096
MAX_MESSAGE = 8192
EXAMPLES = int(os.environ.get("TXCLWS_FUZZ_EXAMPLES", "300"))

#: Close codes a failure may carry (RFC 6455 7.4.1).
FAILURE_CODES = {1002, 1007, 1009}


def rawFrame(
    opcode: int, payload: bytes, fin: bool, rsv: int, mask: bytes | None
) -> bytes:
    """
    Build a frame by hand, whatever the RFC says about its fields.
    """
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    maskBit = 0x80 if mask is not None else 0
    if length < 126:
        header = struct.pack("!BB", first, maskBit | length)
    elif length < 0x10000:
        header = struct.pack("!BBH", first, maskBit | 126, length)
    else:
        header = struct.pack("!BBQ", first, maskBit | 127, length)
    if mask is None:
        return header + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


frames = st.builds(
    rawFrame,
    opcode=st.sampled_from([0, 1, 2, 8, 9, 10, 3, 11]),
    payload=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=60).map(lambda s: s.encode("utf-8")),
        st.sampled_from([b"\x03\xe8", b"\x03\xe8ok", b"\xff\xff", b"\x03", b""]),
        # Large enough for a few fragments to approach the message limit.
        st.integers(1000, MAX_FRAME + 10).map(lambda n: b"a" * n),
    ),
    fin=st.booleans(),
    rsv=st.sampled_from([0, 0, 0, 4, 2, 1]),
    mask=st.one_of(st.binary(min_size=4, max_size=4), st.none()),
)


class CoreFuzzer(RuleBasedStateMachine):
    """
    Drives one L{WebSocketConnection} (optionally with permessage-deflate)
    with hostile input and checks the invariants after every step.
    """

    def __init__(self) -> None:
        super().__init__()
        self.connection: WebSocketConnection | None = None
        self.ended = False

    @rule(deflate=st.booleans())
    @precondition(lambda self: self.connection is None)
    def start(self, deflate: bool) -> None:
        """Open a connection, with or without compression negotiated."""
        codec = None
        if deflate:
            codec = DeflateCodec(DeflateParameters(), PerMessageDeflate())
        self.connection = WebSocketConnection(MAX_FRAME, MAX_MESSAGE, codec)

    @rule(data=st.binary(max_size=300))
    @precondition(lambda self: self.connection is not None)
    def feedBytes(self, data: bytes) -> None:
        """Arbitrary bytes."""
        self._feed(data)

    @rule(frameList=st.lists(frames, max_size=6), cut=st.integers(0, 40))
    @precondition(lambda self: self.connection is not None)
    def feedFrames(self, frameList: list[bytes], cut: int) -> None:
        """Valid and invalid frames, cut into two pieces anywhere."""
        stream = b"".join(frameList)
        self._feed(stream[:cut])
        self._feed(stream[cut:])

    @rule(
        opcode=st.sampled_from([0, 1, 2]),
        payload=st.one_of(
            st.binary(max_size=50), st.integers(1, 5000).map(lambda n: b"b" * n)
        ),
    )
    @precondition(lambda self: self.connection is not None)
    def feedOpenFragment(self, opcode: int, payload: bytes) -> None:
        """
        A fragment without FIN, so that a message stays open between steps
        and the invariants see it half assembled.
        """
        self._feed(rawFrame(opcode, payload, False, 0, b"\x01\x02\x03\x04"))

    @rule(size=st.integers(MAX_MESSAGE - 10, MAX_MESSAGE * 3))
    @precondition(lambda self: self.connection is not None)
    def feedLargeHeader(self, size: int) -> None:
        """A frame header that announces a payload near or over the limit."""
        header = rawFrame(2, b"", False, 0, b"abcd")[:1]
        header += struct.pack("!BQ", 0x80 | 127, size) + b"abcd"
        self._feed(header + b"\x00" * 100)

    @rule(
        kind=st.sampled_from(["text", "binary", "ping", "pong", "close"]),
        payload=st.binary(max_size=140),
    )
    @precondition(lambda self: self.connection is not None)
    def send(self, kind: str, payload: bytes) -> None:
        """Our own sends either work or fail with the documented errors."""
        connection = self.connection
        assert connection is not None
        try:
            if kind == "text":
                connection.frameText(payload.decode("latin-1"))
            elif kind == "binary":
                connection.frameBinary(payload)
            elif kind == "ping":
                connection.framePing(payload)
            elif kind == "pong":
                connection.framePong(payload)
            else:
                connection.frameClose(1000, payload.decode("latin-1")[:40])
        except ConnectionClosed:
            assert connection.state in (
                ConnectionState.LOCAL_CLOSING,
                ConnectionState.CLOSED,
            )
        except ValueError:
            assert kind in ("ping", "pong", "close")

    def _feed(self, data: bytes) -> None:
        connection = self.connection
        assert connection is not None
        events = connection.receiveData(data)
        for index, event in enumerate(events):
            terminal = isinstance(event, (CloseReceived, ConnectionFailed))
            if terminal:
                assert index == len(events) - 1, "a terminal event must be last"
                self.ended = True
            if isinstance(event, ConnectionFailed):
                assert event.code in FAILURE_CODES
        if self.ended:
            assert events == [] or isinstance(
                events[-1], (CloseReceived, ConnectionFailed)
            )
            # Input after the end is ignored.
            assert connection.receiveData(b"\x81\x80abcd") == []

    @invariant()
    def memoryWithinLimits(self) -> None:
        """The reader buffers no more than the limits allow."""
        if self.connection is None:
            return
        reader = self.connection._reader
        if not reader._compressed and not reader._done:
            # What is buffered is exactly what was counted against the limit.
            buffered = sum(map(len, reader._message._parts))
            assert buffered + len(reader._message._small) == reader._message.size
        assert reader._message.size <= MAX_MESSAGE
        assert len(reader._pending) <= 13
        assert len(reader._control) <= 125


CoreFuzzer.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCoreFuzzer = CoreFuzzer.TestCase
