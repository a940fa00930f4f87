"""Label stitching kernels: border pairs per block, and the global resolution.

Ids that cross block borders are composite: ``(block_linear << 32) | local_label``.
The client only ever sees per-block summaries (first voxel, size per local label)
and the de-duplicated pairs of touching labels; never voxels.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import imagecodecs
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipeline.engine.blocks import BlockPlan
from pipeline.kernels.labels import BlockLabels

SHIFT = np.int64(32)


def _composite(face: np.ndarray, block_linear: int) -> np.ndarray:
    ids = face.astype(np.int64)
    return np.where(ids != 0, ids | (np.int64(block_linear) << SHIFT), 0)


def _offsets(ndim_perp: int, connectivity: int) -> list[tuple[int, ...]]:
    # Neighbours across a face: one hop along the face normal, up to
    # connectivity - 1 more hops along the other axes.
    return [
        d
        for d in itertools.product((-1, 0, 1), repeat=ndim_perp)
        if sum(x != 0 for x in d) <= connectivity - 1
    ]


class PackedFaces(Sequence):
    """One face per axis, each compressed (LZ4), unpacked when read.

    A block's summary waits for the summaries of the blocks above it, up to a plane of
    blocks later; its faces are most of it (six 128² faces of a 128³ block: 192 KiB as
    uint16) and mostly background, so they wait compressed.
    """

    def __init__(self, faces: Sequence[np.ndarray]) -> None:
        self.dtypes = [f.dtype.str for f in faces]
        self.shapes = [f.shape for f in faces]
        self.blobs = [imagecodecs.lz4_encode(np.ascontiguousarray(f)) for f in faces]

    def __len__(self) -> int:
        return len(self.blobs)

    def __getitem__(self, axis: int) -> np.ndarray:
        data = imagecodecs.lz4_decode(self.blobs[axis])
        return np.frombuffer(data, dtype=self.dtypes[axis]).reshape(self.shapes[axis])


def packed(summary: BlockLabels) -> BlockLabels:
    """``summary`` with its faces (and face values) compressed while they wait."""

    def pack(faces):
        return None if faces is None else PackedFaces(faces)

    return dataclasses.replace(
        summary,
        lo_faces=pack(summary.lo_faces),
        hi_faces=pack(summary.hi_faces),
        lo_values=pack(summary.lo_values),
        hi_values=pack(summary.hi_values),
    )


@dataclasses.dataclass(frozen=True)
class BlockBoxes:
    """A block's label boxes as uint16 offsets from a corner: ``origin`` (per axis) plus
    ``offsets`` (start per axis, then stop per axis). The client holds every block's boxes
    until all blocks are labelled; this is half the int32 boxes' size."""

    origin: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets)

    def boxes(self, dtype) -> np.ndarray:
        """The boxes in ``dtype``."""
        corner = np.concatenate([self.origin, self.origin]).astype(dtype)
        return self.offsets.astype(dtype) + corner


def compact_boxes(bbox: np.ndarray) -> BlockBoxes | np.ndarray:
    """``bbox`` (labels × 2·ndim) as :class:`BlockBoxes` where its extent fits uint16."""
    if len(bbox) == 0:
        return bbox
    ndim = bbox.shape[1] // 2
    origin = bbox[:, :ndim].min(axis=0).astype(np.int64)
    offsets = bbox - np.concatenate([origin, origin])
    if offsets.max() > np.iinfo(np.uint16).max:
        return bbox
    return BlockBoxes(origin, offsets.astype(np.uint16))


def narrow(values: np.ndarray, dtype) -> np.ndarray:
    """``values`` (non-negative integers) as ``dtype`` where they all fit, else as they are."""
    if values.size and values.max() > np.iinfo(dtype).max:
        return values
    return values.astype(dtype)


def block_pairs(
    plan: BlockPlan,
    index: tuple[int, ...],
    connectivity: int,
    own: BlockLabels,
    neighbours: dict[tuple[int, ...], BlockLabels],
    planar: bool = False,
) -> np.ndarray:
    """Pairs of composite ids that touch across the lower faces of block ``index``.

    ``neighbours`` holds the summaries of the blocks before ``index`` along one axis
    (and, for connectivity > 1, their neighbours along the other axes). With
    ``planar``, objects connect within planes of constant first index only.
    Returns an ``(K, 2)`` int64 array without duplicates.
    """
    ndim = len(index)
    own_linear = plan.linear(index)
    found = []
    for a in range(ndim):
        if index[a] == 0 or (planar and a == 0):
            continue
        upper = _composite(own.lo_faces[a], own_linear)
        upper_v = own.lo_values[a] if own.lo_values is not None else None
        perp = [ax for ax in range(ndim) if ax != a]
        ext_shape = tuple(upper.shape[i] + 2 for i in range(ndim - 1))
        lower = np.zeros(ext_shape, dtype=np.int64)
        lower_v = np.zeros(ext_shape, dtype=upper_v.dtype) if upper_v is not None else None
        own_box = plan.box(index)
        for shift in itertools.product((-1, 0, 1), repeat=ndim - 1):
            if connectivity == 1 and any(shift):
                continue
            if planar and shift[0]:  # perp[0] is the plane axis
                continue
            nb = list(index)
            nb[a] -= 1
            for s, ax in zip(shift, perp, strict=True):
                nb[ax] += s
            nb = tuple(nb)
            if nb not in neighbours:
                continue
            nb_box = plan.box(nb)
            src = _composite(neighbours[nb].hi_faces[a], plan.linear(nb))
            src_v = neighbours[nb].hi_values[a] if lower_v is not None else None
            # Place the part of the neighbour's face that falls in the extended plane.
            dst_sl, src_sl = [], []
            for s, ax in zip(shift, perp, strict=True):
                lo, hi = own_box[ax]
                want = (lo - 1, hi + 1)
                have = nb_box[ax]
                i0, i1 = max(want[0], have[0]), min(want[1], have[1])
                if s == 0:
                    i0, i1 = lo, hi
                dst_sl.append(slice(i0 - want[0], i1 - want[0]))
                src_sl.append(slice(i0 - have[0], i1 - have[0]))
            lower[tuple(dst_sl)] = src[tuple(src_sl)]
            if lower_v is not None:
                lower_v[tuple(dst_sl)] = src_v[tuple(src_sl)]
        for d in _offsets(ndim - 1, connectivity):
            if planar and d[0]:
                continue
            sl = tuple(slice(1 + x, 1 + x + n) for x, n in zip(d, upper.shape, strict=True))
            low = lower[sl]
            hit = (upper != 0) & (low != 0)
            if lower_v is not None:
                hit &= upper_v == lower_v[sl]
            if hit.any():
                found.append(np.stack([low[hit], upper[hit]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    return unique_pairs(np.concatenate(found))


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """The distinct rows of a ``(K, 2)`` int64 array, sorted.

    Equal to ``np.unique(pairs, axis=0)``, through 1-D sorts: each column is replaced
    by its rank among the column's distinct values, and the two ranks form one key.
    """
    if len(pairs) == 0:
        return pairs.reshape(0, 2)
    left, left_rank = np.unique(pairs[:, 0], return_inverse=True)
    right, right_rank = np.unique(pairs[:, 1], return_inverse=True)
    key = np.unique(left_rank.astype(np.int64) * len(right) + right_rank)
    return np.stack([left[key // len(right)], right[key % len(right)]], axis=1)


def resolve(
    plan: BlockPlan,
    counts: list[int],
    firsts: list[np.ndarray],
    sizes: list[np.ndarray],
    pairs: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge touching local labels and number the objects in raster order.

    Parameters
    ----------
    plan : BlockPlan
        The block plan (blocks in raster order, as the lists).
    counts, firsts, sizes : list
        Per block: number of local labels, first-voxel raster index and voxel count
        of each.
    pairs : list of (K, 2) ndarray
        Composite ids of touching local labels.

    Returns
    -------
    offsets : (B + 1,) ndarray
        Start of each block's local labels in the global node list.
    final : (L,) ndarray of uint32 (int64 past 2³² − 1 objects)
        Object id (1..N, raster order of first voxel) of every local label.
    object_sizes : (N,) ndarray of int64
        Voxel count of objects 1..N.
    object_first : (N,) ndarray of int64
        First-voxel raster index of objects 1..N.
    """
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(offsets[-1])
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return offsets, empty, empty, empty
    first = np.concatenate(firsts).astype(np.int64)  # as comp_first: numpy's fast minimum.at
    size = np.concatenate(sizes)
    edges = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    mask = np.int64(0xFFFFFFFF)
    a = offsets[edges[:, 0] >> SHIFT] + (edges[:, 0] & mask) - 1
    b = offsets[edges[:, 1] >> SHIFT] + (edges[:, 1] & mask) - 1
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(total, total))
    ncomp, comp = connected_components(graph, directed=False)
    comp_first = np.full(ncomp, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(comp_first, comp, first)
    order = np.argsort(comp_first, kind="stable")
    # Object ids of every local label, kept by the client for the whole run: 4 bytes each
    # while they fit.
    rank = np.empty(ncomp, dtype=np.uint32 if ncomp < 2**32 else np.int64)
    rank[order] = np.arange(1, ncomp + 1)
    comp_size = np.bincount(comp, weights=size, minlength=ncomp).astype(np.int64)
    return offsets, rank[comp], comp_size[order], comp_first[order]


def block_lut(final: np.ndarray, offsets: np.ndarray, linear: int, dtype) -> np.ndarray:
    """Relabel table of one block: local label -> object id (0 stays 0)."""
    lut = np.zeros(int(offsets[linear + 1] - offsets[linear]) + 1, dtype=dtype)
    lut[1:] = final[offsets[linear] : offsets[linear + 1]]
    return lut
