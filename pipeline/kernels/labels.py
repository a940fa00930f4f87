"""Connected-component labelling of one block and the summary stitching needs.

A block labels itself locally; the engine stitches local labels across block
borders (see ``pipeline.engine.stitch``) so that the result equals
``skimage.measure.label`` on the whole volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np
from skimage.measure import label as sk_label

from pipeline.kernels.compiled import apply_table, label_extents, label_mask

_CC3D_CONNECTIVITY = {2: {1: 4, 2: 8}, 3: {1: 6, 2: 18, 3: 26}}


def local_label(block: np.ndarray, connectivity: int, planar: bool = False) -> np.ndarray:
    """Label connected components of one block.

    Parameters
    ----------
    block : ndarray of bool or integer
        Mask, or integer image whose equal-valued neighbours join (0 is background).
    connectivity : int
        1..ndim, as ``skimage.measure.label``.

    Returns
    -------
    labels : ndarray of uint32
        The same partition as ``skimage.measure.label(block, connectivity=connectivity)``;
        label order is not necessarily raster order (it is for a boolean mask labelled by
        the compiled loop).
    """
    if planar and block.ndim > 2:  # each plane on its own; ids stay distinct
        out = np.zeros(block.shape, dtype=np.uint32)
        offset = 0
        for z in range(block.shape[0]):
            plane = local_label(block[z], min(connectivity, block.ndim - 1))
            out[z] = np.where(plane > 0, plane + np.uint32(offset), 0)
            offset += int(plane.max()) if plane.size else 0
        return out
    if block.dtype == np.bool_:
        labels = label_mask(block, connectivity)  # compiled, without the GIL
        if labels is not None:
            return labels
    conn = _CC3D_CONNECTIVITY.get(block.ndim, {}).get(connectivity)
    if conn is not None and block.size:
        src = block if block.dtype != np.bool_ else block.view(np.uint8)
        out = cc3d.connected_components(src, connectivity=conn, out_dtype=np.uint32)
        return out
    return sk_label(block, connectivity=connectivity, background=0).astype(np.uint32)


@dataclass
class BlockLabels:
    """Summary of one locally labelled block.

    Attributes
    ----------
    n : int
        Number of local labels (1..n).
    first : (n,) ndarray of int64
        Global raster index of each local label's first voxel.
    sizes : (n,) ndarray of int64
        Voxel count of each local label.
    lo_faces, hi_faces : list of ndarray
        Local labels on the first / last slab of the block along each axis.
    lo_values, hi_values : list of ndarray or None
        Input values on those slabs (integer input only: equal values join).
    border : (n,) ndarray of bool
        Whether each local label touches the border of the volume.
    peaks : (n,) ndarray or None
        Largest input value of each local label, when asked for.
    bbox : (n, 2 * ndim) ndarray of int32 (int64 for axes of 2³¹ voxels or more) or None
        Global bounding box of each local label: first voxel per axis, then one past
        the last (half-open, as skimage's ``bbox``).
    """

    n: int
    first: np.ndarray
    sizes: np.ndarray
    lo_faces: list[np.ndarray]
    hi_faces: list[np.ndarray]
    lo_values: list[np.ndarray] | None
    hi_values: list[np.ndarray] | None
    border: np.ndarray
    peaks: np.ndarray | None = None
    bbox: np.ndarray | None = None


def summarise_block(
    labels: np.ndarray,
    values: np.ndarray | None,
    offset: tuple[int, ...],
    volume_shape: tuple[int, ...],
    peak_source: np.ndarray | None = None,
) -> BlockLabels:
    """Summarise locally labelled ``labels`` of the block at ``offset``.

    ``values`` is the integer input (or None for a mask), kept on the faces so that
    the engine joins only equal values across borders. With ``peak_source``, the
    summary holds each label's largest value of it.
    """
    n = int(labels.max()) if labels.size else 0
    sizes, first_local, bbox = label_extents(labels, n)
    first = _local_to_global(first_local, labels.shape, offset, volume_shape)
    bbox += np.asarray(offset * 2, dtype=np.int64)
    if max(volume_shape, default=0) < 2**31:  # boxes wait on the client for all blocks
        bbox = bbox.astype(np.int32)
    # Faces wait for the neighbours' summaries: keep them in the smallest dtype.
    face = np.uint16 if n < 2**16 else labels.dtype
    lo = [np.take(labels, 0, axis=a).astype(face) for a in range(labels.ndim)]
    hi = [np.take(labels, -1, axis=a).astype(face) for a in range(labels.ndim)]
    lo_v = hi_v = None
    if values is not None:
        lo_v = [np.ascontiguousarray(np.take(values, 0, axis=a)) for a in range(values.ndim)]
        hi_v = [np.ascontiguousarray(np.take(values, -1, axis=a)) for a in range(values.ndim)]
    border = np.zeros(n + 1, dtype=bool)
    for a in range(labels.ndim):
        if offset[a] == 0:
            border[lo[a]] = True
        if offset[a] + labels.shape[a] == volume_shape[a]:
            border[hi[a]] = True
    peaks = None
    if peak_source is not None:
        channels = peak_source.shape[labels.ndim :]  # one peak per channel, if any
        flat = labels.ravel()
        fg = np.flatnonzero(flat)
        ids = flat[fg]
        src = peak_source.reshape(-1, *channels)[fg]
        low = -np.inf if src.dtype.kind == "f" else np.iinfo(src.dtype).min
        peaks = np.full((n + 1, *channels), low, dtype=src.dtype)
        np.maximum.at(peaks, ids, src)
        peaks = peaks[1:]
    return BlockLabels(n, first, sizes, lo, hi, lo_v, hi_v, border[1:], peaks, bbox)


def _local_to_global(
    flat_index: np.ndarray,
    block_shape: tuple[int, ...],
    offset: tuple[int, ...],
    volume_shape: tuple[int, ...],
) -> np.ndarray:
    coords = np.unravel_index(flat_index, block_shape)
    glob = [c.astype(np.int64) + o for c, o in zip(coords, offset, strict=True)]
    return np.ravel_multi_index(glob, volume_shape).astype(np.int64)


def apply_lut(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Replace each local label by ``lut[label]`` (one lookup per voxel)."""
    return apply_table(labels, lut)
