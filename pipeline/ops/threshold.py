"""Thresholds: a fixed value, or Otsu's method from a global histogram.

The histogram helpers reproduce ``skimage.exposure.histogram`` exactly when the
partial histograms of all blocks are summed, so the Otsu threshold of a chunked
image equals ``skimage.filters.threshold_otsu`` of the whole image.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.ops.registry import OpInfo, register


class ThresholdParams(BaseModel):
    """Parameters of :func:`threshold`: exactly one of ``value`` or ``method``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float | None = Field(None, description="Fixed threshold; voxels above it are kept.")
    method: Literal["otsu"] | None = Field(
        None, description="Global method computed from the whole volume's histogram."
    )
    nbins: int = Field(256, ge=2, le=65536, description="Histogram bins for float images.")

    @model_validator(mode="after")
    def _one_of(self) -> ThresholdParams:
        if (self.value is None) == (self.method is None):
            raise ValueError("give exactly one of 'value' or 'method'")
        return self


def threshold(image: np.ndarray, value: float) -> np.ndarray:
    """Foreground mask ``image > value`` (strict, as skimage's examples use)."""
    return image > value


def float_histogram(
    block: np.ndarray, first_edge: float, last_edge: float, nbins: int
) -> np.ndarray:
    """Counts of ``block`` in ``nbins`` equal bins over ``[first_edge, last_edge]``.

    Bin assignment follows ``numpy.histogram`` value by value, so the sum over blocks
    equals ``numpy.histogram(whole, nbins, (first_edge, last_edge))[0]``.
    """
    # numpy assigns each value to its bin on its own, given the range.
    counts, _ = np.histogram(block, bins=nbins, range=(first_edge, last_edge))
    return counts.astype(np.int64, copy=False)


def integer_counts(block: np.ndarray, low: int, high: int) -> np.ndarray:
    """Counts of each integer value in ``[low, high]`` (``np.bincount`` with an offset)."""
    a = block.ravel()
    if low != 0:
        a = a.astype(np.int64) - low
    return np.bincount(a, minlength=high - low + 1).astype(np.int64)


def float_bin_centers(first_edge: float, last_edge: float, nbins: int) -> np.ndarray:
    """Bin centres as ``skimage.exposure.histogram`` reports them."""
    edges = np.linspace(first_edge, last_edge, nbins + 1, endpoint=True)
    return (edges[:-1] + edges[1:]) / 2.0


def otsu_from_histogram(counts: np.ndarray, centers: np.ndarray) -> float:
    """Otsu's threshold from a histogram, as ``skimage.filters.threshold_otsu``.

    Parameters
    ----------
    counts : (K,) ndarray
        Voxels per bin, trimmed so the first and last bins are non-empty.
    centers : (K,) ndarray
        Bin centres.

    Returns
    -------
    threshold : float
        Voxels with values above it are foreground.
    """
    counts = counts.astype(np.float64)
    weight1 = np.cumsum(counts)
    weight2 = np.cumsum(counts[::-1])[::-1]
    mean1 = np.cumsum(counts * centers) / weight1
    mean2 = (np.cumsum((counts * centers)[::-1]) / weight2[::-1])[::-1]
    variance12 = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2
    return float(centers[int(np.argmax(variance12))])


register(
    OpInfo(
        name="threshold",
        kind="global",
        params=ThresholdParams,
        accepts=("image",),
        produces="mask",
        summary="Foreground mask image > t; t fixed or Otsu from the global histogram.",
        exact="exact (global histogram; equals skimage.filters.threshold_otsu on the whole)",
    )
)
