"""Tiled ops: one prediction per block grown by an overlap, blended where tiles overlap.

Each tile (a block grown by the overlap, clipped to the volume) is predicted once and
kept in scratch; a block's output combines the tiles that cover it with weights that
fall towards each tile's inner edges (``linear`` or ``gaussian``), or takes its own
tile's centre (``crop``). Weights do not fall at the volume edge, where no other tile
takes over.
"""

from __future__ import annotations

import numpy as np

from pipeline.engine import scratch
from pipeline.engine.blocks import Box, crop, intersect
from pipeline.io import storage


def predict_tile(tile: np.ndarray, func, params, path: str, instances: bool = False) -> str:
    """Predict one tile and keep it in scratch (a kept tile is not predicted again).

    Instance maps are rounded to integer ids; other predictions stay float32.
    """
    if not storage.file_exists(path):
        pred = np.asarray(func(tile, params))
        pred = np.rint(pred).astype(np.int64) if instances else pred.astype(np.float32)
        scratch.save(path, pred)
    return path


def _axis_weights(lo: int, hi: int, tile: tuple[int, int], core: tuple[int, int], n: int, blend):
    """Weights along one axis for positions lo..hi of a tile spanning ``tile``."""
    x = np.arange(lo, hi) + 0.5
    t0, t1 = tile
    if blend == "gaussian":
        centre = (core[0] + core[1]) / 2
        sigma = max((t1 - t0) / 8, 1e-6)
        return np.exp(-0.5 * ((x - centre) / sigma) ** 2)
    w = np.ones(hi - lo)
    if t0 > 0:  # an inner edge: the tile before takes over
        w = np.minimum(w, (x - t0) / (2 * (core[0] - t0) or 1))
    if t1 < n:
        w = np.minimum(w, (t1 - x) / (2 * (t1 - core[1]) or 1))
    return np.clip(w, 1e-6, 1)


def blend_block(box: Box, shape, blend: str, tiles: list, tile_boxes: list, cores: list):
    """The output on ``box`` from the tiles (scratch paths) that cover it."""
    if blend == "crop":
        for path, tb, core in zip(tiles, tile_boxes, cores, strict=True):
            if core == box:
                return crop(scratch.load(path), tb, box)
    acc = None
    total = None
    for path, tb, core in zip(tiles, tile_boxes, cores, strict=True):
        part = intersect(tb, box)
        if any(lo >= hi for lo, hi in part):
            continue
        pred = crop(scratch.load(path), tb, part).astype(np.float64)
        w = np.ones(pred.shape)
        for a, ((lo, hi), t, c) in enumerate(zip(part, tb, core, strict=True)):
            wa = _axis_weights(lo, hi, t, c, shape[a], blend)
            w = w * wa.reshape([-1 if i == a else 1 for i in range(len(part))])
        if acc is None:
            acc = np.zeros(tuple(hi - lo for lo, hi in box))
            total = np.zeros_like(acc)
        idx = tuple(slice(lo - b0, hi - b0) for (lo, hi), (b0, _) in zip(part, box, strict=True))
        acc[idx] += w * pred
        total[idx] += w
    return (acc / total).astype(np.float32)
