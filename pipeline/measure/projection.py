"""Small overview pictures of large volumes, made block by block.

A block gives its maximum-intensity projection along z, max-pooled in y and x over cells
of ``factor`` voxels that are aligned to the whole volume's grid; the maxima of all
blocks' pieces are the projection of the whole volume, max-pooled the same way. Label
images are pooled the same way (the largest id of each cell), so outlines drawn from
them line up with the image.
"""

from __future__ import annotations

import numpy as np


def lowest(dtype: np.dtype) -> float | int | bool:
    """The value that never wins a maximum in ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return False
    if dtype.kind in "iu":
        return np.iinfo(dtype).min
    return -np.inf


def projection_factor(shape: tuple[int, ...], size: int = 1024) -> int:
    """The smallest power of two that brings the last two axes within ``size`` voxels."""
    f = 1
    while max(shape[-2:]) > size * f:
        f *= 2
    return f


def block_projection(data: np.ndarray, box, factor: int) -> tuple[tuple[int, int], np.ndarray]:
    """One block's part of the pooled projection of the volume.

    Parameters
    ----------
    data : ndarray
        The block, 2D (y, x) or 3D (z, y, x).
    box : tuple of (start, stop)
        Its place in the volume.
    factor : int
        Cell size in y and x.

    Returns
    -------
    (row, column), ndarray
        The first cell the block reaches and the block's maximum over each cell it reaches.
    """
    plane = data.max(axis=0) if data.ndim == 3 else data
    if plane.dtype == np.bool_:
        plane = plane.view(np.uint8)
    (ly, hy), (lx, hx) = box[-2:]
    cy, cx = ly // factor, lx // factor
    ny, nx = -(-hy // factor) - cy, -(-hx // factor) - cx
    padded = np.full((ny * factor, nx * factor), lowest(plane.dtype), plane.dtype)
    oy, ox = ly - cy * factor, lx - cx * factor
    padded[oy : oy + plane.shape[0], ox : ox + plane.shape[1]] = plane
    pooled = padded.reshape(ny, factor, nx, factor).max(axis=(1, 3))
    return (cy, cx), pooled


def assemble_projection(
    pieces: list[tuple[tuple[int, int], np.ndarray]], shape: tuple[int, ...], factor: int
) -> np.ndarray:
    """The pooled projection of the whole volume from its blocks' pieces."""
    out_shape = tuple(-(-n // factor) for n in shape[-2:])
    dtype = pieces[0][1].dtype
    out = np.full(out_shape, lowest(dtype), dtype)
    for (cy, cx), p in pieces:
        view = out[cy : cy + p.shape[0], cx : cx + p.shape[1]]
        np.maximum(view, p, out=view)
    return out
