"""Exact order statistics of each plane of a stack, all planes in the same passes.

The narrowing of :func:`pipeline.kernels.histogram.order_statistics`, with an interval per
plane and rank: a pass finds each plane's range, then each pass counts the values of
every plane's open intervals in equal sub-bins (or gathers them once they are few) and
narrows each interval to the sub-bin holding its rank. The passes do not grow with the
number of planes; the sub-bins per interval shrink with it so that a pass's partial
results stay bounded.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from pipeline.kernels.histogram import GATHER_LIMIT, SPLIT_BINS, interval_part, narrowed
from pipeline.kernels.reduction import Stats

MIN_BINS = 16


def order_statistics_per_plane(
    stats: Stats, ranks: list[int], values, planes: int
) -> list[dict[int, float]]:
    """The ``k``-th smallest value (0-based) of each plane, for each ``k`` in ``ranks``.

    Parameters
    ----------
    stats : Stats
        Passes over the input (a stack of ``planes`` planes along its first axis).
    ranks : list of int
        Ranks wanted, each below the voxels of one plane.
    values : callable
        ``values(block, box, core)``: float64 values of the block's planes, shaped
        (planes of the block, ...).
    planes : int
        Planes of the stack.

    Returns
    -------
    list of dict
        Per plane, rank -> value.
    """
    n = int(np.prod(stats.shape[1:]))
    bins = max(MIN_BINS, SPLIT_BINS // planes)
    gather_limit = max(MIN_BINS * 64, GATHER_LIMIT // planes)
    lo, hi = stats.reduce(
        partial(_plane_ranges, values=values, planes=planes), _merge_ranges, name="range"
    )
    state = {(z, k): (lo[z], hi[z], 0, n) for z in range(planes) for k in ranks}
    found: list[dict[int, float]] = [{} for _ in range(planes)]
    while True:
        for (z, k), (a, b, _, _) in state.items():
            if k not in found[z] and a == b:
                found[z][k] = float(a)
        todo: dict[int, list[tuple]] = {}
        for (z, k), interval in state.items():
            if k not in found[z] and interval not in todo.setdefault(z, []):
                todo[z].append(interval)
        todo = {z: t for z, t in todo.items() if t}
        if not todo:
            return found
        asked = {
            z: tuple((a, b, count <= gather_limit) for a, b, _, count in t) for z, t in todo.items()
        }
        parts = stats.reduce(
            partial(_interval_parts, asked=asked, bins=bins, values=values),
            partial(_merge_parts, asked=asked),
            name="order statistics",
        )
        for (z, k), interval in list(state.items()):
            if k in found[z]:
                continue
            i = todo[z].index(interval)
            take = asked[z][i][2]
            part = parts.get((z, i), np.zeros(0 if take else bins))
            if take:
                found[z][k] = float(np.sort(part)[k - interval[2]])
            else:
                state[(z, k)] = narrowed(interval, part, k, np.dtype(np.float64))


def _plane_ranges(block, box, core, *, values, planes: int):
    x = values(block, box, core)
    lo, hi = np.full(planes, np.inf), np.full(planes, -np.inf)
    flat = x.reshape(x.shape[0], -1)
    z0 = box[0][0]
    lo[z0 : z0 + len(flat)], hi[z0 : z0 + len(flat)] = flat.min(axis=1), flat.max(axis=1)
    return lo, hi


def _merge_ranges(a, b):
    return np.minimum(a[0], b[0]), np.maximum(a[1], b[1])


def _interval_parts(block, box, core, *, asked: dict, bins: int, values) -> dict:
    """Per (plane, interval) of the block's planes: the values in it (gathered) or their
    counts in ``bins`` equal sub-bins."""
    x = values(block, box, core)
    out = {}
    for s, plane in enumerate(x.reshape(x.shape[0], -1)):
        z = box[0][0] + s
        for i, (a, b, take) in enumerate(asked.get(z, ())):
            out[(z, i)] = interval_part(plane, a, b, take, bins)
    return out


def _merge_parts(a: dict, b: dict, *, asked: dict) -> dict:
    out = dict(a)
    for key, part in b.items():
        if key not in out:
            out[key] = part
        elif asked[key[0]][key[1]][2]:
            out[key] = np.concatenate([out[key], part])
        else:
            out[key] = out[key] + part
    return out
