"""Global thresholds: a fixed value or a method computed from the whole volume.

Histogram methods (Otsu, Yen, isodata, triangle, multi-Otsu) get the histogram of
the whole volume, summed from per-block partial histograms, and give exactly what
the scikit-image function gives on the whole image. ``mean`` and ``li`` use sums
over the volume: exact for integer images, equal within float rounding for float
images (block sums add up in a different order than numpy's whole-array sum).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from skimage import filters

from pipeline.kernels.histogram import Histogram, global_histogram, value_range
from pipeline.kernels.reduction import Stats
from pipeline.ops.contract import GlobalOp, OpParams

Method = Literal["otsu", "li", "yen", "triangle", "isodata", "mean", "multi_otsu"]
CENTRE_METHODS = ("otsu", "yen", "isodata", "triangle")  # their threshold is a bin centre


class ThresholdParams(OpParams):
    """Parameters of the ``threshold`` op: exactly one of ``value`` or ``method``."""

    value: float | None = Field(None, description="Fixed threshold; voxels above it are kept.")
    method: Method | None = Field(
        None, description="Method computed from the whole volume (skimage.filters.threshold_*)."
    )
    nbins: int = Field(256, ge=2, le=65536, description="Histogram bins for float images.")
    classes: int = Field(3, ge=2, le=32, description="Classes of multi_otsu.")
    tolerance: float | None = Field(
        None, gt=0, description="Stopping tolerance of li (default as skimage)."
    )

    @model_validator(mode="after")
    def _one_of(self) -> ThresholdParams:
        if (self.value is None) == (self.method is None):
            raise ValueError("give exactly one of 'value' or 'method'")
        if self.method == "multi_otsu":
            check_multiotsu_search(self.nbins, self.classes)
        return self


MAX_MULTIOTSU_SEARCH = 10**9  # threshold combinations (10^8 take skimage 2 to 5 s)


def check_multiotsu_search(nbins: int, classes: int, integer: bool = False) -> None:
    """Refuse a multi-Otsu search too long to finish: skimage tries every choice of
    ``classes - 1`` thresholds among the ``nbins - 1`` gaps between bins."""
    n = math.comb(max(nbins - 1, 0), classes - 1)
    if n > MAX_MULTIOTSU_SEARCH:
        raise ValueError(
            f"multi_otsu with {classes} classes over {nbins} histogram bins tries {n:.3g} "
            f"threshold combinations, more than {MAX_MULTIOTSU_SEARCH:.0e} (minutes of search): "
            + (
                "use fewer classes (an integer image has a bin per value; nbins applies to "
                "float images)"
                if integer
                else "use fewer classes or nbins"
            )
        )


def apply_threshold(image: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Mask ``image > t``; with several thresholds the class image ``np.digitize(image, t)``.

    Parameters
    ----------
    image : ndarray
        Grayscale block.
    t : float or (n,) ndarray
        Threshold, or ascending thresholds of ``multi_otsu``.

    Returns
    -------
    ndarray of bool, or of uint8 class ids 0..n
    """
    if np.ndim(t):
        return np.digitize(image, bins=t).astype(np.uint8)
    return image > t


def triangle_from_histogram(counts: np.ndarray, centers: np.ndarray):
    """The triangle threshold of a histogram, as ``skimage.filters.threshold_triangle``.

    The line from the histogram's peak to the far end of its longer tail; the threshold
    is the bin farthest below that line.
    """
    n = len(counts)
    peak = int(np.argmax(counts))
    height = counts[peak]
    nonzero = np.flatnonzero(counts)
    low, high = int(nonzero[0]), int(nonzero[-1])
    if low == high:
        return centers[low]
    flip = peak - low < high - peak
    if flip:  # work on the longer tail, always to the left of the peak
        counts = counts[::-1]
        low, peak = n - high - 1, n - peak - 1
    width = peak - low
    x = np.arange(width)
    y = counts[x + low]
    norm = np.sqrt(float(int(height) * int(height) + width * width))
    distance = (height / norm) * x - (width / norm) * y
    level = int(np.argmax(distance)) + low
    return centers[n - level - 1 if flip else level]


def li_from_histogram(h: Histogram, tolerance: float | None):
    """Li's minimum cross-entropy threshold of an integer image, from its histogram.

    Iterates as ``skimage.filters.threshold_li`` does on integer images: on the
    histogram of ``image - image.min()``, from the image mean.
    """
    counts = h.counts
    centers = np.arange(len(counts))
    total = int(np.dot(counts, centers.astype(np.int64)))
    t_next = np.float64(total) / np.float64(counts.sum())
    tolerance = tolerance or 0.5
    weights = counts.astype(np.float32)
    t_curr = -2 * tolerance
    while abs(t_next - t_curr) > tolerance:
        t_curr = t_next
        fore = centers > t_curr
        mean_fore = np.average(centers[fore], weights=weights[fore])
        mean_back = np.average(centers[~fore], weights=weights[~fore])
        if mean_back == 0:
            break
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return t_next + h.vmin


def _shifted_sums(block: np.ndarray, box=None, core=None, *, shift, t) -> np.ndarray:
    """[sum, count] of ``block - shift`` above ``t`` and at or below it."""
    v = block.ravel() - shift
    fore = v > t
    return np.array([v[fore].sum(), fore.sum(), v[~fore].sum(), (~fore).sum()], np.float64)


def _sum_count(block: np.ndarray, box=None, core=None, *, shift=0) -> np.ndarray:
    v = block.ravel() - shift if shift else block.ravel()
    return np.array([v.sum(dtype=np.float64), v.size], np.float64)


def _smallest_gap(block: np.ndarray, box=None, core=None, *, shift) -> float | None:
    u = np.unique(block.ravel() - shift)
    return float(np.min(np.diff(u))) if u.size > 1 else None


def li_float(stats: Stats, tolerance: float | None):
    """Li's threshold of a float image: one pass per iteration, as ``threshold_li``.

    The default tolerance is half the smallest gap between distinct values within a
    block (skimage takes it over the whole image; that gap can only be smaller).
    """
    lo, hi = value_range(stats)
    if lo == hi:
        return lo
    if tolerance is None:
        gap = stats.reduce(partial(_smallest_gap, shift=lo), min, name="li tolerance")
        tolerance = gap / 2
    s = stats.reduce(partial(_sum_count, shift=lo), name="li mean")
    t_next = s[0] / s[1]
    t_curr = -2 * tolerance
    while abs(t_next - t_curr) > tolerance:
        t_curr = t_next
        sums = stats.reduce(partial(_shifted_sums, shift=lo, t=t_curr), name="li")
        mean_fore, mean_back = sums[0] / sums[1], sums[2] / sums[3]
        if mean_back == 0.0:
            break
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return t_next + lo


def threshold_mean(stats: Stats):
    """Mean of the volume, as ``skimage.filters.threshold_mean``."""
    if stats.dtype.kind in "iu":
        total = stats.reduce(_integer_sum, name="mean")
        return np.float64(total[0]) / np.float64(total[1])
    s = stats.reduce(_sum_count, name="mean")
    return s[0] / s[1]


def _integer_sum(block: np.ndarray, box=None, core=None) -> np.ndarray:
    return np.array([int(block.sum(dtype=np.int64)), block.size], dtype=object)


def resolve_threshold(params: ThresholdParams, stats: Stats):
    """The threshold(s) of ``params`` for the whole input, from reduction passes."""
    if params.value is not None:
        return params.value
    method = params.method
    if stats.dtype.kind == "b":
        raise ValueError(f"threshold {method} needs a grayscale image, got a mask")
    if method == "mean":
        return threshold_mean(stats)
    if method == "li" and stats.dtype.kind == "f":
        return li_float(stats, params.tolerance)
    # These methods answer with a bin centre, which the histogram's bin codes can
    # threshold without the image (see BinCodes).
    h = global_histogram(stats, params.nbins, codes=method in CENTRE_METHODS)
    if h.flat and method != "multi_otsu":
        return h.vmin  # skimage returns the single value of a flat image
    if method == "otsu":
        return filters.threshold_otsu(hist=(h.counts, h.centers))
    if method == "yen":
        return filters.threshold_yen(hist=(h.counts, h.centers))
    if method == "isodata":
        return filters.threshold_isodata(hist=(h.counts, h.centers))
    if method == "triangle":
        return triangle_from_histogram(h.counts, h.centers)
    if method == "li":
        return li_from_histogram(h, params.tolerance)
    # multi_otsu takes the normalised histogram, as skimage computes it from an image.
    check_multiotsu_search(len(h.counts), params.classes, stats.dtype.kind in "iu")
    prob = h.counts / np.sum(h.counts)
    return filters.threshold_multiotsu(classes=params.classes, hist=(prob, h.centers))


def placeholder(params: ThresholdParams):
    """A stand-in threshold of the resolved kind."""
    if params.method == "multi_otsu":
        return np.zeros(params.classes - 1)
    return 0.0


THRESHOLD = GlobalOp(
    name="threshold",
    params=ThresholdParams,
    func=apply_threshold,
    resolve=resolve_threshold,
    placeholder=placeholder,
    accepts=("image",),
    produces="mask",
    role=lambda params, roles: "labels" if params.method == "multi_otsu" else "mask",
    summary="Mask image > t, t fixed or from the whole volume (otsu, li, yen, triangle, "
    "isodata, mean); multi_otsu gives a class image 0..classes-1.",
    exact="exact: equals skimage.filters.threshold_<method> on the whole volume "
    "(mean and li of float images: within float rounding)",
)
