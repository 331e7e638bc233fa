"""A worker keeps the memory it frees for its next frame instead of handing it back.

A frame's reduction makes dozens of frame-sized arrays (16 MB for 2048x2048
float32) that live for a moment. glibc's malloc serves blocks above its mmap
threshold (at most 32 MB by default) with fresh ``mmap`` pages and returns
freed memory above its trim threshold to the system, so each new array is
faulted in page by page again: on the development machine ten 16 MB arrays
took 32 ms, 9 ms when the memory was kept, and a master's 160 MB stack of
frames cost 28 ms a frame in page faults. Raising both thresholds (glibc's
``mallopt``, M_MMAP_THRESHOLD and M_TRIM_THRESHOLD; mallopt(3)) keeps freed
blocks in the heap, where the next frame's arrays reuse them. The worker's
resident memory then stays at its peak, which the pool's worker recycling
bounds (``solver_recycle_frames``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: mallopt parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap, not from fresh mmap pages.
HEAP_BLOCK_LIMIT = 1 << 30
#: Free memory at the top of the heap kept for reuse, up to this much.
KEPT_FREE_MEMORY = 1 << 30


def keep_freed_memory() -> bool:
    """Set glibc's thresholds for this process (see the module docstring).

    Returns whether they were set: False off glibc (musl, macOS), where
    nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT)) and bool(
        mallopt(M_TRIM_THRESHOLD, KEPT_FREE_MEMORY)
    )
