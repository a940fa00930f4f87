"""Global histograms and order statistics from per-block partial results.

Everything here is exact: the partial results of all blocks combine into what
``skimage.exposure.histogram`` and ``numpy.percentile`` give on the whole image.
The block functions are plain numpy; a :class:`pipeline.kernels.reduction.Stats` runs
them over the blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import numpy as np

from pipeline.kernels.compiled import ABOVE_CODE, OUTSIDE_CODE, histogram_codes, histogram_counts
from pipeline.kernels.reduction import Stats

# Values gathered in one pass to settle an order statistic; wider intervals are split.
GATHER_LIMIT = 1 << 20
SPLIT_BINS = 4096


def block_range(block: np.ndarray, box=None, core=None) -> tuple | None:
    """Minimum and maximum of a block (None for an empty block)."""
    if block.size == 0:
        return None
    return block.min(), block.max()


def merge_range(a: tuple, b: tuple) -> tuple:
    """Range of two ranges."""
    return min(a[0], b[0]), max(a[1], b[1])


def integer_counts(block: np.ndarray, box=None, core=None, *, low: int, high: int) -> np.ndarray:
    """Counts of each integer value in ``[low, high]`` (``np.bincount`` with an offset)."""
    a = block.ravel()
    if low != 0:
        a = a.astype(np.int64) - low
    return np.bincount(a, minlength=high - low + 1).astype(np.int64)


def float_histogram(block: np.ndarray, box=None, core=None, *, lo, hi, nbins: int) -> np.ndarray:
    """Counts of ``block`` in ``nbins`` equal bins over ``[lo, hi]``.

    Bin assignment follows ``numpy.histogram`` value by value, so the sum over blocks
    equals ``numpy.histogram(whole, nbins, (lo, hi))[0]``.
    """
    counts = histogram_counts(block, bin_edges(lo, hi, nbins, block.dtype))
    if counts is None:
        counts, _ = np.histogram(block, bins=nbins, range=(lo, hi))
    return counts.astype(np.int64, copy=False)


def bin_edges(lo, hi, nbins: int, dtype: np.dtype) -> np.ndarray:
    """Bin edges as ``numpy.histogram`` makes them for an image of ``dtype`` over lo..hi."""
    edge_type = np.result_type(np.asarray(lo, dtype), np.asarray(hi, dtype), dtype)
    return np.linspace(lo, hi, nbins + 1, endpoint=True, dtype=edge_type)


@dataclass(frozen=True, eq=False)
class BinCodes:
    """Each voxel's histogram bin and side of its bin's centre: ``2 * bin + (v > centre)``.

    For a threshold at a bin centre, ``t = centres[k]`` (what Otsu, Yen, isodata and
    triangle give), the mask ``image > t`` is ``code >= 2k + 1``: a voxel of a higher bin
    lies at or above ``edges[k + 1]``, past the centre; one of a lower bin below
    ``edges[k]``; for bin ``k`` the low bit says. So the pass that histograms a float64
    image can keep these codes (uint16, a quarter of the image) for the pass that
    thresholds it, which then need not compute the image again. (A
    :class:`pipeline.kernels.reduction.StandIn`.)
    """

    edges: np.ndarray
    centres: np.ndarray
    dtype: ClassVar[np.dtype] = np.dtype(np.uint16)

    @classmethod
    def over(cls, edges: np.ndarray) -> BinCodes | None:
        """Codes over float64 ``edges``; None for too many bins, or bins so narrow that a
        centre might not lie inside its bin in floating point or ``numpy.histogram``'s
        bin estimate be off by more than the one bin it corrects (not within 2^20 ulps
        of the edges' magnitude)."""
        centres = (edges[:-1] + edges[1:]) / 2.0
        if edges.dtype != np.float64 or 2 * centres.size > ABOVE_CODE:
            return None
        ulp = np.spacing(max(abs(edges[0]), abs(edges[-1])))
        if not (np.isfinite(ulp) and np.min(np.diff(edges)) > 2.0**20 * ulp):
            return None
        if not (np.all(edges[:-1] <= centres) and np.all(centres < edges[1:])):
            return None
        return cls(edges, centres)

    def with_stand_in(self, block: np.ndarray, box=None, core=None) -> tuple:
        """The block's histogram (as :func:`float_histogram`) and its codes."""
        codes, counts = histogram_codes(block, self.edges, self.centres)
        return counts, codes

    def decoder(self, t) -> tuple | None:
        """``(above_code, first)`` giving ``image > t`` from the codes, when ``t`` is one
        of the centres; None otherwise."""
        if np.ndim(t) != 0:
            return None
        k = int(np.searchsorted(self.centres, t))
        if k >= self.centres.size or self.centres[k] != t:
            return None
        return above_code, 2 * k + 1


def above_code(codes: np.ndarray, first: int) -> np.ndarray:
    """Mask of codes from ``first`` up (values above the range in, below it and NaN out)."""
    return (codes >= first) & (codes != OUTSIDE_CODE)


@dataclass(frozen=True)
class Histogram:
    """A whole-image histogram as ``skimage.exposure.histogram(image, nbins)`` gives it.

    Attributes
    ----------
    counts, centers : ndarray
        Voxels per bin and bin centres; for integer images one bin per value from the
        image's minimum to its maximum.
    integer : bool
        Whether the image is of an integer dtype.
    vmin, vmax : scalar
        The image's minimum and maximum.
    """

    counts: np.ndarray
    centers: np.ndarray
    integer: bool
    vmin: object
    vmax: object

    @property
    def flat(self) -> bool:
        """Whether the image holds a single value."""
        return bool(self.vmin == self.vmax)


def _derived(block, box, core, *, values, func, **kw):
    """``func`` applied to the values ``values(block, box, core)`` derives from a block."""
    return func(values(block, box, core), **kw)


def value_range(stats: Stats, values=None, halo=None) -> tuple:
    """The input's minimum and maximum (one pass).

    With ``values(block, box, core) -> array``, of the values derived from each block
    (grown by ``halo``) instead.
    """
    if values is None:
        out = stats.reduce(block_range, merge_range, name="range")
    else:
        func = partial(_derived, values=values, func=block_range)
        out = stats.reduce(func, merge_range, halo=halo, name="range")
    if out is None:
        raise ValueError("the image is empty")
    return out


def global_histogram(stats: Stats, nbins: int = 256, codes: bool = False) -> Histogram:
    """The input's histogram, equal to ``skimage.exposure.histogram`` of the whole image.

    Integer images of up to 16 bits take one pass (counts over the dtype's range);
    others first find the range. With ``codes``, the pass that histograms a float64
    image offers the engine its :class:`BinCodes` to keep.
    """
    dtype = stats.dtype
    if dtype.kind == "b":
        raise ValueError("needs a grayscale image, got a mask")
    if dtype.kind in "iu":
        if dtype.itemsize <= 2:
            lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
        else:
            lo, hi = (int(v) for v in value_range(stats))
        total = stats.reduce(partial(integer_counts, low=lo, high=hi), name="histogram")
        nz = np.flatnonzero(total)
        vmin, vmax = lo + int(nz[0]), lo + int(nz[-1])
        return Histogram(total[nz[0] : nz[-1] + 1], np.arange(vmin, vmax + 1), True, vmin, vmax)
    lo, hi = value_range(stats)
    if lo == hi:
        return Histogram(np.array([np.prod(stats.shape)]), np.array([lo]), False, lo, hi)
    edges = bin_edges(lo, hi, nbins, dtype)
    func = partial(float_histogram, lo=lo, hi=hi, nbins=nbins)
    coded = BinCodes.over(edges) if codes else None
    total = stats.reduce(func, name="histogram", stand_in=coded)
    return Histogram(total, (edges[:-1] + edges[1:]) / 2.0, False, lo, hi)


def _interval_parts(
    block: np.ndarray, box=None, core=None, *, intervals: tuple, gather: tuple, values=None
) -> list:
    """Per interval ``[a, b]``: its values (when gathered) or counts in equal sub-bins."""
    flat = (block if values is None else values(block, box, core)).ravel()
    return [interval_part(flat, a, b, take) for (a, b), take in zip(intervals, gather, strict=True)]


def interval_part(flat: np.ndarray, a, b, take: bool, bins: int = SPLIT_BINS) -> np.ndarray:
    """The values of ``flat`` in ``[a, b]`` (``take``), or their counts in ``bins``
    equal sub-bins."""
    sel = flat[(flat >= a) & (flat <= b)]
    if take:
        return sel
    idx = np.searchsorted(np.linspace(a, b, bins + 1), sel, side="right") - 1
    np.minimum(idx, bins - 1, out=idx)  # b itself falls in the last sub-bin
    return np.bincount(idx, minlength=bins)


def narrowed(interval: tuple, counts: np.ndarray, k: int, dtype: np.dtype) -> tuple:
    """The sub-bin of ``interval`` (``(a, b, voxels below a, voxels in it)``) holding
    rank ``k``, from its sub-bin ``counts``, as such an interval."""
    a, b, below, _ = interval
    bins = len(counts)
    edges = np.linspace(a, b, bins + 1)
    cum = np.cumsum(counts)
    j = int(np.searchsorted(cum, k - below, side="right"))
    new_a = a if j == 0 else _at_least(edges[j], dtype)
    new_b = b if j == bins - 1 else _below(edges[j + 1], dtype)
    return new_a, new_b, below + (int(cum[j - 1]) if j else 0), int(counts[j])


def _merge_parts(a: list, b: list, *, gather: tuple) -> list:
    return [
        np.concatenate([x, y]) if take else x + y for x, y, take in zip(a, b, gather, strict=True)
    ]


def order_statistics(
    stats: Stats, ranks: list[int], values=None, halo=None, dtype=None
) -> dict[int, object]:
    """The ``k``-th smallest value of the input (0-based) for each ``k`` in ``ranks``.

    Exact for any dtype: integer images of up to 16 bits use one counting pass; other
    images narrow an interval around each rank with sub-bin counts until the values
    in it are few enough to gather and sort (about three passes). With
    ``values(block, box, core)`` (of ``dtype``, from blocks grown by ``halo``), of
    those derived values instead, one per voxel.
    """
    if values is not None:
        return _narrow(stats, ranks, values, halo, np.dtype(dtype))
    dtype = stats.dtype
    if dtype.kind == "b":
        raise ValueError("needs a grayscale image, got a mask")
    if dtype.kind in "iu" and dtype.itemsize <= 2:
        h = global_histogram(stats)
        cum = np.cumsum(h.counts)
        return {k: dtype.type(h.centers[int(np.searchsorted(cum, k, side="right"))]) for k in ranks}
    return _narrow(stats, ranks, None, None, dtype)


def _narrow(stats: Stats, ranks: list[int], values, halo, dtype: np.dtype) -> dict:
    lo, hi = value_range(stats, values, halo)
    n = int(np.prod(stats.shape))
    # Per rank: interval [a, b] holding it, voxels below a, voxels in [a, b].
    state: dict[int, tuple] = {k: (lo, hi, 0, n) for k in ranks}
    found: dict[int, object] = {}
    while True:
        for k, (a, b, _, _) in state.items():
            if k not in found and a == b:
                found[k] = a
        todo = list(dict.fromkeys(state[k] for k in ranks if k not in found))
        if not todo:
            return found
        intervals = tuple((a, b) for a, b, _, _ in todo)
        gather = tuple(count <= GATHER_LIMIT for *_, count in todo)
        parts = stats.reduce(
            partial(_interval_parts, intervals=intervals, gather=gather, values=values),
            partial(_merge_parts, gather=gather),
            halo=halo,
            name="order statistics",
        )
        for k in ranks:
            if k in found:
                continue
            i = todo.index(state[k])
            if gather[i]:
                found[k] = np.sort(parts[i])[k - todo[i][2]]
            else:
                state[k] = narrowed(todo[i], parts[i], k, dtype)


def _at_least(edge: float, dtype: np.dtype):
    """The smallest value of ``dtype`` that is >= ``edge``."""
    if dtype.kind in "iu":
        return dtype.type(np.ceil(edge))
    v = dtype.type(edge)
    return np.nextafter(v, dtype.type(np.inf)) if v < edge else v


def _below(edge: float, dtype: np.dtype):
    """The largest value of ``dtype`` that is < ``edge``."""
    if dtype.kind in "iu":
        return dtype.type(np.ceil(edge) - 1)
    v = dtype.type(edge)
    return np.nextafter(v, dtype.type(-np.inf)) if v >= edge else v


def percentile_from(order_stat, n: int, q: float) -> np.float64:
    """``numpy.percentile(whole, q)`` (linear method) from the whole image's order statistics.

    ``order_stat(k)`` is the ``k``-th smallest value; the interpolation is numpy's,
    step for step.
    """
    virtual = (n - 1) * np.true_divide(q, 100)
    previous = np.floor(virtual)
    gamma = virtual - previous
    k = int(previous)
    a = order_stat(k)
    b = order_stat(min(k + 1, n - 1))
    diff = np.subtract(b, a)  # in the image's dtype, as numpy does
    if gamma >= 0.5:
        return b - diff * (1 - gamma)
    return a + diff * gamma


def percentile_ranks(n: int, q: float) -> list[int]:
    """The order statistics :func:`percentile_from` needs for percentile ``q``."""
    k = int(np.floor((n - 1) * np.true_divide(q, 100)))
    return sorted({k, min(k + 1, n - 1)})
