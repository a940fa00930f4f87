"""Per-object measurements from per-block partial aggregates.

Each block reports, for each object id in it: voxel count, coordinate sums, bounding
box, and intensity sum, sum of squares, minimum and maximum. Merging the partials of
all blocks gives what ``skimage.measure.regionprops_table`` gives on the whole array:
exactly for counts, boxes, centroids and integer intensities; within float rounding
for sums of float intensities (added block by block rather than in one pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PROPERTIES = (
    "label",
    "num_pixels",
    "area",
    "centroid",
    "centroid_index",
    "bbox",
    "equivalent_diameter_area",
    "intensity_mean",
    "intensity_min",
    "intensity_max",
    "intensity_std",
)
INTENSITY = {"intensity_mean", "intensity_min", "intensity_max", "intensity_std"}


@dataclass
class Partial:
    """One block's aggregates per object id present in it (rows sorted by id)."""

    ids: np.ndarray  # (k,) int64
    counts: np.ndarray  # (k,) int64
    coord_sums: np.ndarray  # (k, ndim) int64
    lo: np.ndarray  # (k, ndim) int64, first voxel per axis
    hi: np.ndarray  # (k, ndim) int64, one past the last
    i_sum: np.ndarray | None = None  # (k,) float64
    i_sumsq: np.ndarray | None = None
    i_min: np.ndarray | None = None
    i_max: np.ndarray | None = None
    # (object id, block index) for every object in every block merged so far
    touch_ids: np.ndarray | None = None
    touch_blocks: np.ndarray | None = None


def block_partial(labels: np.ndarray, intensity: np.ndarray | None, box, block: int = 0) -> Partial:
    """The aggregates of every object in one block of a label image.

    Parameters
    ----------
    labels : ndarray of int
        The block of the label image (0 is background).
    intensity : ndarray or None
        The same block of the intensity image.
    box : tuple of (start, stop)
        The block's place in the volume.
    block : int
        The block's raster index (recorded for each object: the blocks it touches).
    """
    ndim = labels.ndim
    flat = labels.ravel()
    fg = np.flatnonzero(flat)
    ids, inv = np.unique(flat[fg], return_inverse=True)
    k = len(ids)
    counts = np.bincount(inv, minlength=k).astype(np.int64)
    coord_sums = np.zeros((k, ndim), np.int64)
    lo = np.full((k, ndim), np.iinfo(np.int64).max, np.int64)
    hi = np.full((k, ndim), np.iinfo(np.int64).min, np.int64)
    for a, c in enumerate(np.unravel_index(fg, labels.shape)):
        c = c.astype(np.int64) + box[a][0]
        np.add.at(coord_sums[:, a], inv, c)
        np.minimum.at(lo[:, a], inv, c)
        np.maximum.at(hi[:, a], inv, c + 1)
    ids = ids.astype(np.int64)
    part = Partial(ids, counts, coord_sums, lo, hi)
    part.touch_ids, part.touch_blocks = ids, np.full(k, block, np.int64)
    if intensity is not None:
        v = intensity.ravel()[fg].astype(np.float64)
        part.i_sum = np.bincount(inv, weights=v, minlength=k)
        part.i_sumsq = np.bincount(inv, weights=v * v, minlength=k)
        part.i_min = np.full(k, np.inf)
        part.i_max = np.full(k, -np.inf)
        np.minimum.at(part.i_min, inv, v)
        np.maximum.at(part.i_max, inv, v)
    return part


def merge(parts: list[Partial]) -> Partial:
    """One row per object from the partials of blocks (or of earlier merges)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        raise ValueError("no partial measurements to merge")
    ndim = parts[0].coord_sums.shape[1]
    ids = np.concatenate([p.ids for p in parts])
    uniq, inv = np.unique(ids, return_inverse=True)
    k = len(uniq)

    def add(name, shape_tail=()):
        out = np.zeros((k, *shape_tail), np.asarray(getattr(parts[0], name)).dtype)
        np.add.at(out, inv, np.concatenate([getattr(p, name) for p in parts]))
        return out

    def reduce(name, ufunc, start):
        vals = np.concatenate([getattr(p, name) for p in parts])
        out = np.full((k, *vals.shape[1:]), start, vals.dtype)
        ufunc.at(out, inv, vals)
        return out

    merged = Partial(
        uniq,
        add("counts"),
        add("coord_sums", (ndim,)),
        reduce("lo", np.minimum, np.iinfo(np.int64).max),
        reduce("hi", np.maximum, np.iinfo(np.int64).min),
    )
    if parts[0].i_sum is not None:
        merged.i_sum = add("i_sum")
        merged.i_sumsq = add("i_sumsq")
        merged.i_min = reduce("i_min", np.minimum, np.inf)
        merged.i_max = reduce("i_max", np.maximum, -np.inf)
    merged.touch_ids = np.concatenate([p.touch_ids for p in parts])
    merged.touch_blocks = np.concatenate([p.touch_blocks for p in parts])
    return merged


def object_blocks(merged: Partial) -> tuple[np.ndarray, np.ndarray]:
    """The raster indices of the blocks each object of ``merged`` touches.

    Returns ``(offsets, blocks)``: object ``j``'s blocks are
    ``blocks[offsets[j]:offsets[j + 1]]``, in increasing order.
    """
    order = np.lexsort((merged.touch_blocks, merged.touch_ids))
    obj, blocks = merged.touch_ids[order], merged.touch_blocks[order]
    offsets = np.searchsorted(obj, merged.ids).astype(np.int64)
    return np.append(offsets, len(obj)), blocks


def table(
    merged: Partial,
    spacing: tuple[float, ...],
    properties: tuple[str, ...] = PROPERTIES,
) -> dict[str, np.ndarray]:
    """Columns named as ``skimage.measure.regionprops_table`` names them.

    ``area`` and ``centroid-*`` are physical (voxels × spacing, as regionprops with
    ``spacing``); ``centroid_index-*`` are in voxels; ``bbox-*`` are voxel indices,
    start per axis then stop (half-open).
    """
    ndim = merged.coord_sums.shape[1]
    n = merged.counts.astype(np.float64)
    cols: dict[str, np.ndarray] = {}
    voxel = float(np.prod(spacing))
    centre = merged.coord_sums / n[:, None] if len(n) else np.zeros((0, ndim))
    for prop in properties:
        if prop == "label":
            cols["label"] = merged.ids
        elif prop == "num_pixels":
            cols["num_pixels"] = merged.counts
        elif prop == "area":
            cols["area"] = merged.counts * voxel
        elif prop == "centroid":
            for a in range(ndim):
                cols[f"centroid-{a}"] = centre[:, a] * spacing[a]
        elif prop == "centroid_index":
            for a in range(ndim):
                cols[f"centroid_index-{a}"] = centre[:, a]
        elif prop == "bbox":
            for a in range(ndim):
                cols[f"bbox-{a}"] = merged.lo[:, a]
            for a in range(ndim):
                cols[f"bbox-{ndim + a}"] = merged.hi[:, a]
        elif prop == "equivalent_diameter_area":
            area = merged.counts * voxel
            scale = math.gamma(ndim / 2 + 1) / math.pi ** (ndim / 2)
            cols[prop] = (2**ndim * area * scale) ** (1 / ndim)
        elif prop in INTENSITY:
            if merged.i_sum is None:
                raise ValueError(f"{prop} needs output.table.intensity")
            mean = merged.i_sum / n
            if prop == "intensity_mean":
                cols[prop] = mean
            elif prop == "intensity_min":
                cols[prop] = merged.i_min
            elif prop == "intensity_max":
                cols[prop] = merged.i_max
            else:
                cols[prop] = np.sqrt(np.maximum(merged.i_sumsq / n - mean * mean, 0))
        else:
            raise ValueError(f"unknown property {prop!r}")
    return cols


@dataclass
class Written:
    """What one block of the write pass gives back to the client: the ids it holds and
    their voxel counts, and its pieces of the overview projections."""

    ids: np.ndarray | None = None
    counts: np.ndarray | None = None
    label_piece: tuple | None = None
    image_piece: tuple | None = None
