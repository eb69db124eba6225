# -*- test-case-name: tests.test_allocator -*-
"""
Tune glibc's C{malloc} for large WebSocket messages, at run time.

glibc serves every block at or above its mmap threshold (128 KiB at
start, raised as such blocks are freed, up to 32 MiB) with fresh pages
from C{mmap}, gives them back with C{munmap} when freed, and gives the
free top of its heap back to the kernel once it is over the trim
threshold.  A server echoing 1 MiB messages then takes every page of
every message buffer as a new minor page fault: about 300-470 faults per
MiB, most of its system time.  The environment variables
C{MALLOC_MMAP_THRESHOLD_} and C{MALLOC_TRIM_THRESHOLD_} fix that, but
glibc reads them at process start, so a daemon cannot set them for
itself; C{mallopt(3)} can, and L{tuneAllocatorForMessages} calls it.

@since: 0.2.0
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

from twisted.logger import Logger

__all__ = ["AllocatorTuning", "tuneAllocatorForMessages"]

_log = Logger()

#: C{M_TRIM_THRESHOLD} and C{M_MMAP_THRESHOLD} of glibc's C{<malloc.h>}.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: glibc's largest mmap threshold on 64-bit hosts
#: (C{DEFAULT_MMAP_THRESHOLD_MAX}, 4 MiB x C{sizeof(long)}).
MAX_MMAP_THRESHOLD = 32 << 20

#: What one message buffer may need beyond the message: frame headers,
#: the joined reply's slack, an allocator's rounding.
_SLACK = 64 << 10

#: The least trim threshold set: the free heap top kept must hold the
#: buffers of several large messages in flight at once (W2's 8 messages of
#: 1 MiB, about 10 MiB, still faulted at 4 MiB and no longer at 16 MiB).
MIN_TRIM_THRESHOLD = 16 << 20


@dataclass(frozen=True)
class AllocatorTuning:
    """
    What L{tuneAllocatorForMessages} did.

    @ivar applied: whether both thresholds were set.
    @ivar mmapThreshold: the mmap threshold set, in bytes, or C{None}.
    @ivar trimThreshold: the trim threshold set, in bytes, or C{None}.
    @ivar reason: why nothing was set, or C{"glibc X.Y"}.
    """

    applied: bool
    mmapThreshold: int | None
    trimThreshold: int | None
    reason: str


def _glibc() -> Any | None:
    """
    The C library of this process if it is glibc (it has C{mallopt} and
    C{gnu_get_libc_version}), else C{None}.
    """
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # TypeError: Windows has no CDLL(None)
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version")):
        return None
    return libc


def thresholdsFor(maxMessageSize: int | None) -> tuple[int, int]:
    """
    The mmap and trim thresholds for messages of up to C{maxMessageSize}
    bytes (C{None}: no limit): the mmap threshold just above two message
    buffers (2 x C{maxMessageSize} + 64 KiB, at most L{MAX_MMAP_THRESHOLD}),
    the trim threshold twice that but at least L{MIN_TRIM_THRESHOLD}
    (so between 16 and 64 MiB).
    """
    if maxMessageSize is None:
        mmap = MAX_MMAP_THRESHOLD
    else:
        mmap = min(2 * max(maxMessageSize, 0) + _SLACK, MAX_MMAP_THRESHOLD)
    return mmap, max(2 * mmap, MIN_TRIM_THRESHOLD)


def tuneAllocatorForMessages(maxMessageSize: int | None) -> AllocatorTuning:
    """
    Make glibc's C{malloc} keep the buffers of messages of up to
    C{maxMessageSize} bytes in its heap and reuse them, rather than map
    and unmap fresh pages for each message: C{mallopt(M_MMAP_THRESHOLD)}
    and C{mallopt(M_TRIM_THRESHOLD)} with L{thresholdsFor}'s values.  Call
    it once, at start; calling it again sets the same values again.  It
    acts on the whole process (every thread, every library), and turns off
    glibc's own raising of the thresholds.  Elsewhere than on glibc (musl,
    macOS, Windows) it does nothing.

    The memory it costs: a freed block under the mmap threshold (2.06 MiB
    for the default 1 MiB C{maxMessageSize}) stays in the heap for the
    next allocation instead of going back to the kernel, and up to the
    trim threshold (16 MiB there) of free memory at the heap's top is kept
    mapped; free space lower in the heap, between blocks still in use,
    stays mapped as it does with any threshold.  The heap grows to the
    most the process had allocated at once, and shrinks only to within the
    trim threshold of what it still uses.

    @param maxMessageSize: the largest message the process reads or
        writes (L{txclws.WebSocketFactory}'s C{maxMessageSize}), or
        C{None} for no limit (the highest threshold).
    @return: what was set, or why nothing was.
    """
    libc = _glibc()
    if libc is None:
        return AllocatorTuning(False, None, None, "not glibc: nothing set")
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    version = libc.gnu_get_libc_version().decode("ascii", "replace")
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    mmap, trim = thresholdsFor(maxMessageSize)
    if not libc.mallopt(_M_MMAP_THRESHOLD, mmap):
        return AllocatorTuning(
            False, None, None, f"glibc {version}: M_MMAP_THRESHOLD {mmap} refused"
        )
    if not libc.mallopt(_M_TRIM_THRESHOLD, trim):
        return AllocatorTuning(
            False, mmap, None, f"glibc {version}: M_TRIM_THRESHOLD {trim} refused"
        )
    _log.debug(
        "mallopt: mmap threshold {mmap}, trim threshold {trim}", mmap=mmap, trim=trim
    )
    return AllocatorTuning(True, mmap, trim, f"glibc {version}")
