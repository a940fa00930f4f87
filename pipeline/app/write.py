"""The write pass: each block's labels, image, measurements and overview, in one visit.

Every block is written into every pyramid level of the label image (and of the image,
when one is written); its objects' partial measurements are merged in a tree; the
client gets back per block only what is small: the ids it holds (for images whose
objects were not stitched) and its piece of the overview projections.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.io import ome_zarr
from pipeline.measure import objects as measure
from pipeline.measure.objects import Written
from pipeline.measure.projection import block_projection


@dataclass(frozen=True)
class Outputs:
    """What the write pass writes and gathers (picklable: it travels with each task)."""

    labels: str  # label image group
    levels: int
    dtype: str
    block: tuple[int, ...]  # the plan's regular block shape
    grid: tuple[int, ...]  # blocks per axis
    count_ids: bool = False  # gather the ids (and voxel counts) of each block
    measure: bool = False  # gather partial measurements
    intensity: int | None = None  # which extra input is the intensity image
    image: str | None = None  # image group to write
    image_input: int | None = None  # which extra input is the image
    image_dtype: str | None = None
    projection: int | None = None  # overview cell size; None: no overview
    overview_input: int | None = None  # which extra input the overview shows
    version: str | None = None  # names the arrays this run created (object stores)


def write_block(box, data: np.ndarray, out: Outputs, *extra: np.ndarray):
    """Write one block and gather its results: ``(Written, Partial or None)``."""
    data = data.astype(out.dtype, copy=False)
    ome_zarr.write_block(out.labels, out.levels, box, data, out.version)
    res = Written()
    if out.count_ids:
        res.ids, res.counts = np.unique(data[data != 0], return_counts=True)
    if out.image is not None:
        image = extra[out.image_input].astype(out.image_dtype, copy=False)
        ome_zarr.write_image_block(out.image, out.levels, box, image, out.version)
    if out.projection is not None:
        res.label_piece = block_projection(data, box, out.projection)
        if out.overview_input is not None:
            res.image_piece = block_projection(extra[out.overview_input], box, out.projection)
    part = None
    if out.measure:
        idx = tuple(lo // b for (lo, _), b in zip(box, out.block, strict=True))
        raster = int(np.ravel_multi_index(idx, out.grid))
        intensity = extra[out.intensity] if out.intensity is not None else None
        part = measure.block_partial(data, intensity, box, raster)
    return res, part


def write_pass(
    engine,
    target: str,
    path: Path,
    dtype,
    axes: str,
    *,
    count_ids: bool = False,
    measures: bool = False,
    intensity: str | None = None,
    image: tuple[Path, str] | None = None,
    projection: int | None = None,
    overview: str | None = None,
    levels: int | None = None,
    label: str = "write labels",
) -> tuple[int, list[Written], measure.Partial | None]:
    """Create the label image of ``target`` (and the image) and write every block.

    ``image`` is the image group and the step written into it; ``overview`` the step
    whose projection the overview shows. Returns the number of pyramid levels, each
    block's :class:`Written` in raster order, and the merged measurements.
    """
    plan = engine.plan
    block = tuple(c[0] for c in plan.chunks)
    levels = levels or ome_zarr.pyramid_levels(plan.shape, block)
    also: list[str] = []

    def slot(name: str | None) -> int | None:
        if name is None:
            return None
        if name not in also:
            also.append(name)
        return also.index(name)

    image_dtype = None
    if image is not None:
        image_dtype = np.dtype(engine.dtype_of(image[1]))
        image_dtype = np.dtype(np.uint8) if image_dtype == np.bool_ else image_dtype
        ome_zarr.create_image(image[0], plan.shape, block, image_dtype, levels, axes)
    ome_zarr.create_labels(path, plan.shape, block, dtype, levels, axes)
    out = Outputs(
        labels=str(path),
        levels=levels,
        dtype=np.dtype(dtype).str,
        block=block,
        grid=plan.grid,
        count_ids=count_ids,
        measure=measures,
        intensity=slot(intensity),
        image=None if image is None else str(image[0]),
        image_input=None if image is None else slot(image[1]),
        image_dtype=None if image_dtype is None else image_dtype.str,
        projection=projection,
        overview_input=slot(overview),
        version=uuid.uuid4().hex,
    )
    written, merged = engine.for_each_block(
        target, write_block, label, out, also=tuple(also), merge=measure.merge
    )
    return levels, written, merged


def voxels_per_id(written: list[Written]) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct non-zero id written and its voxel count over all blocks."""
    ids = np.concatenate([np.zeros(0, np.int64), *(w.ids for w in written)])
    counts = np.concatenate([np.zeros(0, np.int64), *(w.counts for w in written)])
    uniq, inv = np.unique(ids, return_inverse=True)
    return uniq, np.bincount(inv, weights=counts, minlength=len(uniq)).astype(np.int64)
