"""Opt-in per-object properties measured on the written label image, in parallel.

Objects whose bounding box lies inside one block are measured together on that block
(one read per block); the others each on their own bounding-box crop, in batches. No
task per object, and no task reads more than a block or one object's box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.io.ome_zarr import read_region
from pipeline.measure.crops import crop_properties
from pipeline.measure.objects import Partial


def _measure_block(path: str, box, ids, properties, spacing) -> dict:
    return crop_properties(read_region(path, box), ids, properties, spacing)


def _measure_crops(path: str, boxes, ids, properties, spacing) -> dict:
    parts = [
        crop_properties(read_region(path, box), np.array([i]), properties, spacing)
        for box, i in zip(boxes, ids, strict=True)
    ]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def crop_pass(
    engine,
    labels: Path,
    merged: Partial,
    properties: tuple[str, ...],
    spacing: tuple[float, ...],
    batch: int = 64,
) -> dict[str, np.ndarray]:
    """Columns of ``properties`` for every object of ``merged``, in its row order."""
    plan = engine.plan
    block = np.array([c[0] for c in plan.chunks])
    first, last = merged.lo // block, (merged.hi - 1) // block
    inside = (first == last).all(axis=1)
    calls = []
    if inside.any():
        raster = np.ravel_multi_index(tuple(first[inside].T), plan.grid)
        ids = merged.ids[inside]
        order = np.argsort(raster, kind="stable")
        raster, ids = raster[order], ids[order]
        cuts = np.flatnonzero(np.diff(raster)) + 1
        for r, group in zip(raster[np.r_[0, cuts]], np.split(ids, cuts), strict=True):
            box = plan.box(tuple(int(i) for i in np.unravel_index(r, plan.grid)))
            calls.append((_measure_block, str(labels), box, group, properties, spacing))
    spanning = np.flatnonzero(~inside)
    for j in range(0, len(spanning), batch):
        rows = spanning[j : j + batch]
        boxes = [
            tuple(zip(merged.lo[r].tolist(), merged.hi[r].tolist(), strict=True)) for r in rows
        ]
        calls.append((_measure_crops, str(labels), boxes, merged.ids[rows], properties, spacing))
    parts = engine.map_calls(calls, "measure crops")
    if not parts:
        empty = crop_properties(np.zeros((1,) * len(spacing), np.int64), [], properties, spacing)
        return {k: v for k, v in empty.items() if k != "label"}
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    where = np.searchsorted(merged.ids, cols.pop("label"))
    out = {}
    for k, v in cols.items():
        out[k] = np.empty(len(merged.ids), v.dtype)
        out[k][where] = v
    return out
