"""Keep the C allocator from holding freed block buffers per thread.

glibc's malloc gives each thread that contends for the heap an arena of its own (up to
eight per core) and returns little of it to the system, so with the passes' threads
allocating and freeing multi-megabyte blocks, resident memory grows with the length of
the run rather than with the blocks in flight. Two arenas keep it down; the threads'
time goes to numpy kernels, not to malloc (``benchmarks/bench_scale.py --sections size``
ran 10.9 / 87.9 / 202.2 s with two arenas against 10.8 / 101.9 / 189.1 s without, one
run each).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h
ARENAS = 2
_done = False


def limit_arenas() -> bool:
    """Cap glibc's malloc arenas for this process, once; True when the cap is set.

    Takes effect only before a second thread allocates (glibc fixes the limit when it
    makes the first extra arena), so ``pipeline`` calls it on import. Leaves the
    allocator alone off glibc, and when ``MALLOC_ARENA_MAX`` is set in the environment
    (the user's choice wins).
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(M_ARENA_MAX, ARENAS))
    return _done
