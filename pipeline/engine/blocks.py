"""Block plans: how a volume is cut into blocks, and the boxes blocks cover."""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

Box = tuple[tuple[int, int], ...]  # (start, stop) per axis


def _clamped(shape: tuple[int, ...], block: tuple[int, ...]) -> list[int]:
    """Block sizes of 1 to the axis's length (1 along an empty axis)."""
    return [max(1, min(int(b), n)) if n else 1 for n, b in zip(shape, block, strict=True)]


@dataclass(frozen=True)
class BlockPlan:
    """A volume of ``shape`` cut along each axis at the boundaries given by ``chunks``."""

    shape: tuple[int, ...]
    chunks: tuple[tuple[int, ...], ...]

    @classmethod
    def regular(cls, shape: tuple[int, ...], block: tuple[int, ...]) -> BlockPlan:
        """Blocks of ``block`` voxels per axis, the last one along each axis smaller."""
        chunks = []
        for n, b in zip(shape, _clamped(shape, block), strict=True):
            full, rest = divmod(n, b)
            chunks.append((b,) * full + ((rest,) if rest else ()))
        return cls(tuple(shape), tuple(chunks))

    @staticmethod
    def count(shape: tuple[int, ...], block: tuple[int, ...]) -> int:
        """The number of blocks :meth:`regular` would cut (without cutting them)."""
        return math.prod(-(-n // b) for n, b in zip(shape, _clamped(shape, block), strict=True))

    @cached_property
    def bounds(self) -> tuple[np.ndarray, ...]:
        """Boundary positions per axis (``[0, c0, c0+c1, ..., shape]``)."""
        return tuple(np.concatenate([[0], np.cumsum(c)]).astype(np.int64) for c in self.chunks)

    @property
    def grid(self) -> tuple[int, ...]:
        """Number of blocks per axis."""
        return tuple(len(c) for c in self.chunks)

    @property
    def nblocks(self) -> int:
        """Total number of blocks."""
        return math.prod(self.grid)

    def indices(self) -> list[tuple[int, ...]]:
        """Every block index, in raster order."""
        return list(itertools.product(*(range(g) for g in self.grid)))

    def linear(self, index: tuple[int, ...]) -> int:
        """Raster position of block ``index``."""
        return int(np.ravel_multi_index(index, self.grid))

    @cached_property
    def _spans(self) -> tuple[list[tuple[int, int]], ...]:
        # (start, stop) of every block along each axis, as plain ints.
        return tuple([(int(b[i]), int(b[i + 1])) for i in range(len(b) - 1)] for b in self.bounds)

    @cached_property
    def _edges(self) -> tuple[list[int], ...]:
        return tuple([int(v) for v in b] for b in self.bounds)

    def box(self, index: tuple[int, ...]) -> Box:
        """Voxel box of block ``index``."""
        return tuple(spans[i] for spans, i in zip(self._spans, index, strict=True))

    def blocks_in(self, box: Box) -> list[tuple[int, ...]]:
        """Indices of the blocks that intersect ``box``."""
        ranges = []
        for edges, (lo, hi) in zip(self._edges, box, strict=True):
            first = bisect.bisect_right(edges, lo) - 1
            last = bisect.bisect_left(edges, hi) - 1
            ranges.append(range(max(first, 0), last + 1))
        return list(itertools.product(*ranges))

    def grown_voxels(self, margin: tuple[int, ...]) -> int:
        """Voxels of all blocks, each grown by ``margin`` within the volume, summed."""
        return math.prod(
            sum(min(hi + m, n) - max(lo - m, 0) for lo, hi in spans)
            for spans, m, n in zip(self._spans, margin, self.shape, strict=True)
        )

    def is_regular(self) -> bool:
        """True when every block but the last along each axis has the same size."""
        return all(len(set(c[:-1])) <= 1 and (len(c) < 2 or c[-1] <= c[0]) for c in self.chunks)


def grow(box: Box, margin: tuple[int, ...], shape: tuple[int, ...]) -> Box:
    """``box`` extended by ``margin`` per axis, clipped to the volume."""
    return tuple(
        (lo - m if lo > m else 0, hi + m if hi + m < n else n)
        for (lo, hi), m, n in zip(box, margin, shape, strict=True)
    )


def intersect(a: Box, b: Box) -> Box:
    """The common part of two boxes (empty axes have ``lo >= hi``)."""
    return tuple(
        (a0 if a0 > b0 else b0, a1 if a1 < b1 else b1)
        for (a0, a1), (b0, b1) in zip(a, b, strict=True)
    )


def crop(array: np.ndarray, have: Box, want: Box) -> np.ndarray:
    """The part of ``array`` (covering ``have``) that covers ``want`` (inside ``have``)."""
    return array[
        tuple(slice(w0 - h0, w1 - h0) for (h0, _), (w0, w1) in zip(have, want, strict=True))
    ]


def assemble(pieces: list[tuple[Box, np.ndarray]], want: Box) -> np.ndarray:
    """Build the array covering ``want`` from block arrays covering their boxes."""
    if len(pieces) == 1 and pieces[0][0] == want:
        return pieces[0][1]
    sample = pieces[0][1]
    out = np.empty(
        tuple(hi - lo for lo, hi in want) + sample.shape[len(want) :], dtype=sample.dtype
    )
    for have, arr in pieces:
        inter = tuple(
            (max(h0, w0), min(h1, w1)) for (h0, h1), (w0, w1) in zip(have, want, strict=True)
        )
        if any(lo >= hi for lo, hi in inter):
            continue
        dst = tuple(slice(lo - w0, hi - w0) for (lo, hi), (w0, _) in zip(inter, want, strict=True))
        out[dst] = crop(arr, have, inter)
    return out


def auto_block(
    shape: tuple[int, ...],
    storage_chunks: tuple[int, ...],
    bytes_per_voxel: int,
    target_bytes: int = 64 * 2**20,
) -> tuple[int, ...]:
    """A block shape aligned to ``storage_chunks`` holding about ``target_bytes``.

    Starting from one storage chunk, the block doubles along the axis where it is
    smallest relative to the volume until it reaches the target or the volume.
    """
    block = [max(1, min(c, n)) for c, n in zip(storage_chunks, shape, strict=True)]
    while math.prod(block) * bytes_per_voxel * 2 <= target_bytes:
        growable = [a for a in range(len(shape)) if block[a] < shape[a]]
        if not growable:
            break
        a = min(growable, key=lambda ax: block[ax] / shape[ax])
        block[a] = min(block[a] * 2, shape[a])
    return tuple(block)
