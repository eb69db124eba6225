"""
Tests for L{txclws.tuneAllocatorForMessages}: the thresholds it computes,
what it sets on glibc, and that it does nothing elsewhere.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

import txclws
from txclws import _allocator
from txclws._allocator import (
    MAX_MMAP_THRESHOLD,
    AllocatorTuning,
    thresholdsFor,
    tuneAllocatorForMessages,
)

MiB = 1 << 20

onGlibc = pytest.mark.skipif(
    _allocator._glibc() is None, reason="glibc only (mallopt, gnu_get_libc_version)"
)


def test_thresholdsForOneMiB() -> None:
    """
    For 1 MiB messages the mmap threshold is two buffers and 64 KiB above
    them, the trim threshold its floor of 16 MiB (twice the mmap threshold
    is less).
    """
    assert thresholdsFor(MiB) == (2 * MiB + 65536, 16 * MiB)


def test_trimThresholdTwiceAboveFloor() -> None:
    """
    Once twice the mmap threshold is over 16 MiB, the trim threshold is
    twice the mmap threshold.
    """
    assert thresholdsFor(8 * MiB) == (16 * MiB + 65536, 32 * MiB + 131072)


def test_thresholdsCapped() -> None:
    """
    The mmap threshold is at most glibc's own maximum, 32 MiB (also for
    no limit at all), and the trim threshold at most twice that.
    """
    assert MAX_MMAP_THRESHOLD == 32 * MiB
    assert thresholdsFor(16 * MiB) == (32 * MiB, 64 * MiB)
    assert thresholdsFor(1 << 40) == (32 * MiB, 64 * MiB)
    assert thresholdsFor(None) == (32 * MiB, 64 * MiB)


def test_thresholdsSmallMessages() -> None:
    """
    A zero (or negative) limit still leaves room for one frame's buffer,
    and the trim threshold its floor.
    """
    assert thresholdsFor(0) == (65536, 16 * MiB)
    assert thresholdsFor(-5) == (65536, 16 * MiB)


@onGlibc
def test_setsOnGlibc() -> None:
    """
    On glibc both thresholds are set, to L{thresholdsFor}'s values, and the
    reason names the glibc version.
    """
    libc = ctypes.CDLL(None)
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    version = libc.gnu_get_libc_version().decode()
    tuning = tuneAllocatorForMessages(MiB)
    assert tuning == AllocatorTuning(
        True, 2 * MiB + 65536, 16 * MiB, f"glibc {version}"
    )


@onGlibc
def test_twiceIsHarmless() -> None:
    """
    Calling it again sets the same values again, and memory is still
    allocated and freed normally afterwards.
    """
    first = tuneAllocatorForMessages(MiB)
    second = tuneAllocatorForMessages(MiB)
    assert first == second
    assert first.applied
    blocks = [bytearray(MiB) for _ in range(8)]
    assert sum(len(block) for block in blocks) == 8 * MiB


@onGlibc
def test_inFreshProcess() -> None:
    """
    In a process of its own (so that this one's thresholds do not matter),
    the public name tunes for 16 MiB messages to glibc's maximum.
    """
    code = (
        "import txclws; t = txclws.tuneAllocatorForMessages(16 << 20); "
        "print(t.applied, t.mmapThreshold, t.trimThreshold)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", str(32 * MiB), str(64 * MiB)]


def test_notGlibc(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Where the C library is not glibc nothing is set, and the result says so.
    """
    monkeypatch.setattr(_allocator, "_glibc", lambda: None)
    assert txclws.tuneAllocatorForMessages(MiB) == AllocatorTuning(
        False, None, None, "not glibc: nothing set"
    )


def test_detectionNeedsBothFunctions(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    A C library with C{mallopt} but no C{gnu_get_libc_version} (musl has
    the first) is not taken for glibc.
    """

    class Musl:
        mallopt = object()

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Musl())
    assert _allocator._glibc() is None


def test_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    A threshold that C{mallopt} refuses (it returns 0) is reported, not
    taken as set.
    """

    class Function:
        def __init__(self, result: object) -> None:
            self.result = result

        def __call__(self, *args: object) -> object:
            return self.result

    class Libc:
        mallopt = Function(0)
        gnu_get_libc_version = Function(b"2.99")

    monkeypatch.setattr(_allocator, "_glibc", lambda: Libc())
    assert tuneAllocatorForMessages(MiB) == AllocatorTuning(
        False, None, None, f"glibc 2.99: M_MMAP_THRESHOLD {2 * MiB + 65536} refused"
    )


def test_noCDLLOfNone(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Where C{ctypes.CDLL(None)} cannot open the process itself (Windows
    raises C{TypeError}, a static build C{OSError}), there is no glibc.
    """
    for error in (TypeError, OSError):

        def refuse(name: object, error: type[Exception] = error) -> object:
            raise error(name)

        monkeypatch.setattr(ctypes, "CDLL", refuse)
        assert _allocator._glibc() is None
