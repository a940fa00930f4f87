"""Keep the C allocator from holding freed block buffers per thread, and reuse them.

glibc's malloc gives each thread that contends for the heap an arena of its own (up to
eight per core) and returns little of it to the system, so with the passes' threads
allocating and freeing multi-megabyte blocks, resident memory grows with the length of
the run rather than with the blocks in flight. Two arenas keep it down; the threads'
time goes to numpy kernels, not to malloc.

Within those two arenas, block buffers (a few to a few tens of megabytes) are kept for
reuse instead of being mapped afresh for each block and handed back when freed (a fresh
mapping is zeroed page by page by the kernel on first touch). The measurements behind
both: ``docs/design/measured-choices.md``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers in glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 1 << 28  # buffers below 256 MiB come from (and go back to) the arenas
TRIM_THRESHOLD = 1 << 29  # free memory at an arena's top is kept up to 512 MiB
_done = False


def limit_arenas() -> bool:
    """Cap glibc's malloc arenas for this process, once; True when segpipe set the cap.

    Also keeps block buffers for reuse (see the module notes). Takes effect only before
    a second thread allocates (glibc fixes the limit when it makes the first extra
    arena), so the engine calls it when it is made, and each Dask worker when it starts
    (:class:`pipeline.engine.worker_plugin.ArenaLimit`). Leaves the allocator alone off glibc,
    and each setting alone when its ``MALLOC_*`` variable is set in the environment (the
    user's choice wins).
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for variable, parameter, value in (
        ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD, TRIM_THRESHOLD),
    ):
        if variable not in os.environ:
            mallopt(parameter, value)
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    _done = bool(mallopt(M_ARENA_MAX, ARENAS))
    return _done
