"""Tiled ops: predictions on tiles, kept in scratch and put together per block.

Tiles come in two layouts.

*Block tiles* (a network given as a bare file): each tile is a block grown by the
overlap, clipped to the volume, predicted once; a block's output combines the tiles that
cover it with weights that fall towards each tile's inner edges (``linear`` or
``gaussian``), or takes its own tile's centre (``crop``). Weights do not fall at the
volume edge, where no other tile takes over.

*A tile grid* (a network of its own input size, a bioimage.io package): tiles of the
network's size laid over the volume whatever the blocks, overlapping by twice the
output halo, each keeping its prediction less the halo (and, at the volume's edge,
up to the edge: the network's own border there, as in a run on the whole image). The
grid depends only on the volume's shape and the network, so every block size gives
the same tiles and the same bytes. Tiles run several at a time (a batch), in groups of
neighbours along one axis; each group's prediction is one scratch file.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pipeline.engine import scratch
from pipeline.engine.blocks import Box, assemble, crop, intersect
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


# ---- a tile grid of the network's own size ----------------------------------------
AxisTile = tuple[
    int, int, int, int
]  # input start, input stop (may pass the edge), kept start, kept stop


def axis_tiles(n: int, size: int, halo: int) -> list[AxisTile]:
    """Tiles of ``size`` along an axis of ``n`` voxels, whose predictions are kept less
    ``halo`` voxels at each inner edge.

    A first tile starts at 0, the next ones ``size - 2 * halo`` further, and the last
    one ends at ``n``; along an axis shorter than ``size`` one tile runs past the edge
    (its input is padded there).
    """
    if n <= size:
        return [(0, size, 0, n)]
    stride = size - 2 * halo
    if stride <= 0:
        raise ValueError(f"a tile of {size} voxels keeps nothing within a halo of {halo}")
    starts = list(range(0, n - size, stride)) + [n - size]
    out = []
    kept = 0
    for k, start in enumerate(starts):
        stop = n if k == len(starts) - 1 else start + size - halo
        out.append((start, start + size, kept, stop))
        kept = stop
    return out


@dataclass(frozen=True)
class TileGrid:
    """Tiles of ``size`` (per volume axis) over a volume of ``shape``, kept less ``halo``,
    predicted ``batch`` at a time along ``group_axis`` (the axis with the most tiles);
    ``pad`` fills a tile where it passes the volume's edge (a ``numpy.pad`` mode, or
    ``zeros``)."""

    shape: tuple[int, ...]
    size: tuple[int, ...]
    halo: tuple[int, ...]
    batch: int
    pad: str = "reflect"

    @cached_property
    def axes(self) -> tuple[list[AxisTile], ...]:
        """The tiles along each axis."""
        return tuple(axis_tiles(*a) for a in zip(self.shape, self.size, self.halo, strict=True))

    @cached_property
    def group_axis(self) -> int:
        counts = [len(t) for t in self.axes]
        return counts.index(max(counts))

    @cached_property
    def _group_bounds(self) -> list[int]:
        # kept-region boundaries of the groups along the group axis
        tiles = self.axes[self.group_axis]
        return [tiles[k][2] for k in range(0, len(tiles), self.batch)] + [tiles[-1][3]]

    def groups(self) -> list[tuple[int, ...]]:
        """Every group's index: the tile index along each axis, the group's number along
        the group axis."""
        g = self.group_axis
        counts = [len(t) for t in self.axes]
        counts[g] = len(self._group_bounds) - 1
        return list(itertools.product(*(range(c) for c in counts)))

    def tiles(self, group: tuple[int, ...]) -> list[tuple[tuple, tuple]]:
        """``(input box, kept box)`` of each tile of ``group``; an input box may pass the
        volume's edge (the part outside is padded)."""
        g = self.group_axis
        first = group[g] * self.batch
        along = range(first, min(first + self.batch, len(self.axes[g])))
        out = []
        for k in along:
            index = [*group[:g], k, *group[g + 1 :]]
            picked = [axes[i] for axes, i in zip(self.axes, index, strict=True)]
            out.append((tuple((t[0], t[1]) for t in picked), tuple((t[2], t[3]) for t in picked)))
        return out

    def kept_box(self, group: tuple[int, ...]) -> tuple:
        """The part of the volume ``group`` gives (its tiles' kept boxes side by side)."""
        g = self.group_axis
        box = [(tiles[i][2], tiles[i][3]) for tiles, i in zip(self.axes, group, strict=True)]
        box[g] = (self._group_bounds[group[g]], self._group_bounds[group[g] + 1])
        return tuple(box)

    def input_box(self, group: tuple[int, ...]) -> tuple:
        """The part of the volume ``group``'s tiles read (clipped to the volume)."""
        boxes = [t[0] for t in self.tiles(group)]
        return tuple(
            (min(b[a][0] for b in boxes), min(max(b[a][1] for b in boxes), n))
            for a, n in enumerate(self.shape)
        )

    def groups_meeting(self, box: tuple) -> list[tuple[int, ...]]:
        """The groups whose kept boxes meet ``box``."""
        g = self.group_axis
        ranges = []
        for a, (lo, hi) in enumerate(box):
            stops = self._group_bounds[1:] if a == g else [t[3] for t in self.axes[a]]
            starts = self._group_bounds[:-1] if a == g else [t[2] for t in self.axes[a]]
            ranges.append([i for i, (s, e) in enumerate(zip(starts, stops, strict=True))
                           if s < hi and e > lo])  # fmt: skip
        return list(itertools.product(*ranges))


def predict_group(
    region: list, region_box: tuple, tiles: list, predict, arg, pad: str, path: str
) -> str:
    """Predict a group of tiles from ``region`` (per input of the op, the blocks meeting
    ``region_box``, as ``[plan, [data, ...]]``) and keep the group's kept box in scratch
    (a kept group is not predicted again).

    ``predict(batches, boxes, arg)`` gets, per input, the tiles stacked (padded by ``pad``
    where they pass the volume's edge) and their input boxes, and gives one prediction
    per tile.
    """
    if storage.file_exists(path):
        return path
    plan, inputs = region
    blocks = plan.blocks_in(region_box)
    batches = []
    for parts in inputs:
        pieces = [(plan.box(j), np.asarray(p)) for j, p in zip(blocks, parts, strict=True)]
        batches.append(np.stack(_tiles_of(assemble(pieces, region_box), region_box, tiles,
                                          plan.shape, pad)))  # fmt: skip
    preds = np.asarray(predict(batches, [t[0] for t in tiles], arg))
    kept = [crop(p, in_box, box) for p, (in_box, box) in zip(preds, tiles, strict=True)]
    axis = _side_by_side(tiles)
    scratch.save(path, np.concatenate(kept, axis=axis).astype(np.float32, copy=False))
    return path


def _tiles_of(data: np.ndarray, region_box: tuple, tiles: list, shape, pad: str) -> list:
    """Each tile's input box cut from ``data`` (on ``region_box``), padded by ``pad``
    where it passes the volume's edge."""
    out = []
    for in_box, _ in tiles:
        inside = tuple((lo, min(hi, n)) for (lo, hi), n in zip(in_box, shape, strict=True))
        piece = crop(data, region_box, inside)
        widths = [(0, hi - lo - s) for (lo, hi), s in zip(in_box, piece.shape, strict=False)]
        widths += [(0, 0)] * (piece.ndim - len(in_box))  # a trailing colour axis
        if any(w for _, w in widths):
            piece = np.pad(piece, widths, mode={"zeros": "constant"}.get(pad, pad))
        out.append(piece)
    return out


def _side_by_side(tiles: list) -> int:
    """The axis along which a group's kept boxes follow one another (0 for one tile)."""
    if len(tiles) < 2:
        return 0
    a, b = tiles[0][1], tiles[1][1]
    return next(i for i, (p, q) in enumerate(zip(a, b, strict=True)) if p != q)


def _within(part: tuple, box: tuple) -> tuple[slice, ...]:
    return tuple(slice(lo - b0, hi - b0) for (lo, hi), (b0, _) in zip(part, box, strict=True))


def grid_block(box: tuple, groups: list, kept_boxes: list) -> np.ndarray:
    """A block's output from the groups (scratch files) whose kept boxes meet it."""
    out = np.empty(tuple(hi - lo for lo, hi in box), np.float32)
    for path, kept in zip(groups, kept_boxes, strict=True):
        meet = intersect(kept, box)
        out[_within(meet, box)] = crop(scratch.load(path), kept, meet)
    return out
