"""
Parser-only benchmark of the sans-I/O core: no sockets, no reactor.

    python benchmarks/core_parse.py [--size MiB] [--bytewise-size MiB] [--quick]

It feeds masked client frames to L{txclws._core.connection.WebSocketConnection}
and prints:

  (a) one binary message of C{--size} MiB (default 16) fed in one chunk, then
      fed one byte per C{receiveData} call (by default only 1 MiB of it, which
      is then extrapolated from the per-byte cost), and how time grows from
      1 MiB to 4 MiB when fed one byte at a time and when sent as 1 KiB
      fragments (continuation frames, one frame per call): a linear parser
      shows a ratio near 4, a quadratic one near 16;
  (b) microseconds per message for batches of 32-byte text frames fed in one
      call.

It prints figures and ratios, never a verdict.  CPU figures are wall-clock
time of one Python thread: run it on a quiet machine, or read them as rough.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable

from txclws._core.connection import WebSocketConnection
from txclws._core.frames import Opcode, serializeFrame

MiB = 1 << 20
KiB = 1 << 10
MASK = b"abcd"


def newConnection(limit: int) -> WebSocketConnection:
    """
    A connection whose frame and message limits admit C{limit} bytes.
    """
    return WebSocketConnection(limit, limit)


def oneFrame(size: int, opcode: int = Opcode.BINARY) -> bytes:
    """
    One masked, unfragmented client frame carrying C{size} bytes.
    """
    return serializeFrame(
        opcode, bytes(range(256)) * (size // 256) + b"x" * (size % 256), mask=MASK
    )


def fragments(size: int, fragmentSize: int) -> list[bytes]:
    """
    A C{size}-byte binary message as masked client frames of
    C{fragmentSize} payload bytes each.
    """
    piece = bytes(range(256)) * (fragmentSize // 256) + b"y" * (fragmentSize % 256)
    count = -(-size // fragmentSize)
    frames = [
        serializeFrame(
            Opcode.BINARY if i == 0 else Opcode.CONTINUATION,
            piece,
            fin=i == count - 1,
            mask=MASK,
        )
        for i in range(count)
    ]
    return frames


def timed(action: Callable[[], object]) -> tuple[float, object]:
    """
    Run C{action} once with the garbage collector off.

    @return: seconds taken, and what C{action} returned.
    """
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = action()
        return time.perf_counter() - start, result
    finally:
        gc.enable()


def checkOneMessage(events: object, size: int) -> None:
    """
    Fail loudly unless C{events} is one binary message of C{size} bytes.
    """
    assert isinstance(events, list), events
    assert len(events) == 1, events[:3]
    data = getattr(events[0], "data", None)
    assert isinstance(data, bytes) and len(data) == size, events[0]


def parseWhole(size: int) -> float:
    """
    Seconds to parse one C{size}-byte message fed in a single call.
    """
    frame = oneFrame(size)
    conn = newConnection(size)
    seconds, events = timed(lambda: conn.receiveData(frame))
    checkOneMessage(events, size)
    return seconds


def parseBytewise(size: int) -> float:
    """
    Seconds to parse one C{size}-byte message fed one byte per call.
    """
    frame = oneFrame(size)
    conn = newConnection(size)
    receive = conn.receiveData

    def run() -> list[object]:
        out: list[object] = []
        for i in range(len(frame)):
            events = receive(frame[i : i + 1])
            if events:
                out.extend(events)
        return out

    seconds, events = timed(run)
    checkOneMessage(events, size)
    return seconds


def loopOverhead(size: int) -> float:
    """
    Seconds the byte-by-byte loop itself takes, with a no-op parser, so
    it can be told apart from the parser's cost.
    """
    frame = oneFrame(size)

    def noop(data: bytes) -> list[object]:
        return []

    def run() -> None:
        for i in range(len(frame)):
            noop(frame[i : i + 1])

    return timed(run)[0]


def parseFragments(size: int, fragmentSize: int = KiB) -> float:
    """
    Seconds to parse a C{size}-byte message sent as C{fragmentSize}-byte
    frames, one frame per call (as if each arrived in its own read).
    """
    frames = fragments(size, fragmentSize)
    conn = newConnection(size)
    receive = conn.receiveData

    def run() -> list[object]:
        out: list[object] = []
        for frame in frames:
            events = receive(frame)
            if events:
                out.extend(events)
        return out

    seconds, events = timed(run)
    checkOneMessage(events, size)
    return seconds


def bestOf(runs: int, action: Callable[[], float]) -> float:
    """
    The least of C{runs} timings: the one least disturbed by other work.
    """
    return min(action() for _ in range(runs))


def smallMessages(batch: int, totalMessages: int) -> float:
    """
    Microseconds per message to parse 32-byte text frames, C{batch} of
    them per C{receiveData} call.
    """
    frame = serializeFrame(Opcode.TEXT, b"0123456789abcdef0123456789abcdef", mask=MASK)
    chunk = frame * batch
    calls = max(1, totalMessages // batch)
    conn = newConnection(MiB)
    receive = conn.receiveData

    def run() -> int:
        count = 0
        for _ in range(calls):
            count += len(receive(chunk))
        return count

    seconds, count = timed(run)
    assert count == calls * batch, count
    return seconds / count * 1e6


def mbPerSecond(size: int, seconds: float) -> str:
    """
    Throughput in MB/s (10**6 bytes), formatted.
    """
    return f"{size / seconds / 1e6:,.1f} MB/s" if seconds > 0 else "inf"


def reportLarge(args: argparse.Namespace) -> None:
    """
    Part (a): large messages, whole, byte by byte and fragmented.
    """
    size = int(args.size * MiB)
    bytewise = int(args.bytewise_size * MiB)
    runs = 1 if args.quick else 3
    print(f"(a) one binary message, masked, {args.size:g} MiB")
    whole = bestOf(runs, lambda: parseWhole(size))
    print(
        f"    one chunk:            {whole * 1e3:10.1f} ms   {mbPerSecond(size, whole)}"
    )

    seconds = parseBytewise(bytewise)
    overhead = loopOverhead(bytewise)
    perByte = seconds / bytewise
    print(
        f"    1-byte chunks, {args.bytewise_size:g} MiB: {seconds:8.2f} s    "
        f"{mbPerSecond(bytewise, seconds)}   {perByte * 1e6:.3f} us/byte "
        f"(of which the feeding loop itself {overhead / bytewise * 1e6:.3f})"
    )
    print(
        f"    1-byte chunks, {args.size:g} MiB extrapolated: "
        f"{perByte * size:.1f} s   "
        f"(1-byte / one-chunk cost ratio: {perByte * size / whole:,.0f}x)"
    )

    if args.bytewise_size == 1 and not args.skip_linearity:
        big = parseBytewise(4 * MiB)
        print(
            f"    1-byte chunks, 4 MiB: {big:8.2f} s    "
            f"4 MiB / 1 MiB time ratio: {big / seconds:.2f} (linear: 4)"
        )
    small = bestOf(runs, lambda: parseFragments(MiB))
    large = bestOf(runs, lambda: parseFragments(4 * MiB))
    print(
        f"    1 KiB fragments, 1 MiB: {small * 1e3:8.1f} ms   "
        f"4 MiB: {large * 1e3:8.1f} ms   "
        f"4 MiB / 1 MiB time ratio: {large / small:.2f} (linear: 4)"
    )


def reportSmall(args: argparse.Namespace) -> None:
    """
    Part (b): batches of 32-byte text frames.
    """
    total = 50_000 if args.quick else 200_000
    runs = 1 if args.quick else 3
    print("(b) 32-byte text frames (masked), N frames per receiveData call")
    baseline = None
    for batch in (1, 10, 100, 1000):
        perMessage = bestOf(runs, lambda b=batch: smallMessages(b, total))
        if baseline is None:
            baseline = perMessage
        print(
            f"    batch {batch:5d}: {perMessage:7.2f} us/msg  "
            f"{1e6 / perMessage:12,.0f} msg/s   vs batch 1: {perMessage / baseline:.2f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--size", type=float, default=16, help="MiB of the one-chunk message"
    )
    parser.add_argument(
        "--bytewise-size",
        type=float,
        default=1,
        help="MiB fed one byte per call (16 takes about a minute)",
    )
    parser.add_argument(
        "--skip-linearity",
        action="store_true",
        help="skip the 4 MiB byte-by-byte run (about 4x the 1 MiB one)",
    )
    parser.add_argument("--quick", action="store_true", help="one run per figure")
    args = parser.parse_args(argv)
    from txclws._core import mask as _mask

    numpy = getattr(_mask, "usingNumpy", lambda: False)()
    print(
        f"txclws core parser, Python {sys.version.split()[0]}, masking: "
        f"{'NumPy' if numpy else 'pure Python'}"
    )
    reportLarge(args)
    reportSmall(args)


if __name__ == "__main__":
    main()
