"""Instance tiles stitched by overlap: ids of neighbouring tiles that cover the same
object (IoU >= a threshold in the overlap) join; objects are then numbered in raster
order like ``label``'s.

Each block keeps its own part of its own tile's instances (compacted to 1..n); the
pairs of matched ids come from comparing two neighbouring tiles where they overlap.
"""

from __future__ import annotations

import numpy as np

from pipeline.engine import scratch
from pipeline.engine.blocks import Box, crop, intersect
from pipeline.engine.stitch import SHIFT, packed, unique_pairs


def local_block(tile_path: str, tile_box: Box, box: Box, path: str):
    """The block's instances from its own tile, as local labels 1..n (kept in scratch)."""
    core = crop(scratch.load(tile_path), tile_box, box)
    ids, local = np.unique(core, return_inverse=True)
    local = local.reshape(core.shape).astype(np.uint32)
    if ids.size and ids[0] == 0:
        ids = ids[1:]
    else:  # no background in the block: shift so that 0 stays background
        local += 1
    scratch.save(path, local, compress=True)
    return local, None, None, ids


def summarise_local(local, box: Box, shape):
    """Summary of a block's instances, as a labelling pass makes it."""
    from pipeline.kernels.labels import summarise_block

    return packed(summarise_block(local[0], None, tuple(lo for lo, _ in box), shape))


def ids_of(local) -> np.ndarray:
    """The tile ids behind a block's local labels 1..n."""
    return local[3]


def matched_pairs(
    tile_a: str, box_a: Box, ids_a, linear_a: int,
    tile_b: str, box_b: Box, ids_b, linear_b: int,
    min_iou: float,
) -> np.ndarray:  # fmt: skip
    """Composite ids of instances of two tiles whose IoU in their overlap is high enough."""
    region = intersect(box_a, box_b)
    if any(lo >= hi for lo, hi in region):
        return np.zeros((0, 2), np.int64)
    a = crop(scratch.load(tile_a), box_a, region).ravel().astype(np.int64)
    b = crop(scratch.load(tile_b), box_b, region).ravel().astype(np.int64)
    both = (a > 0) & (b > 0)
    if not both.any():
        return np.zeros((0, 2), np.int64)
    pairs, inter = np.unique(np.stack([a[both], b[both]], axis=1), axis=0, return_counts=True)
    na = dict(zip(*np.unique(a[a > 0], return_counts=True), strict=True))
    nb = dict(zip(*np.unique(b[b > 0], return_counts=True), strict=True))
    out = []
    for (i, j), n in zip(pairs, inter, strict=True):
        if n / (na[i] + nb[j] - n) < min_iou:
            continue
        ka, kb = np.searchsorted(ids_a, i), np.searchsorted(ids_b, j)
        if ka < len(ids_a) and ids_a[ka] == i and kb < len(ids_b) and ids_b[kb] == j:
            out.append(
                [(np.int64(linear_a) << SHIFT) | (ka + 1), (np.int64(linear_b) << SHIFT) | (kb + 1)]
            )
    return unique_pairs(np.array(out, dtype=np.int64).reshape(-1, 2))
