"""Writing large buffers to files in pieces.

Given many megabytes in one ``write``, Linux fills the page cache with large folios
(up to 2 MiB each). Where the memory they need is not at hand (on a virtual machine
whose host has taken back the guest's free memory), allocating them costs several times
the copy (measured by ``benchmarks/bench_write_pieces.py``; figures in
``docs/design/measured-choices.md``). Scratch blocks and
Zarr chunks are written through :func:`write_pieces`.
"""

from __future__ import annotations

from typing import BinaryIO

PIECE = 256 * 1024  # bytes per write call


def write_pieces(fh: BinaryIO, data) -> None:
    """Write the bytes of ``data`` (any C-contiguous buffer) to ``fh``, ``PIECE`` at a time."""
    view = memoryview(data)
    if view.nbytes == 0:
        return
    view = view.cast("B")
    for start in range(0, len(view), PIECE):
        fh.write(view[start : start + PIECE])
