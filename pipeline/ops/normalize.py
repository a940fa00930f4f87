"""Percentile normalisation with percentiles of the whole volume, not of each block."""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator
from skimage.exposure import rescale_intensity

from pipeline.kernels.histogram import order_statistics, percentile_from, percentile_ranks
from pipeline.kernels.reduction import Stats
from pipeline.ops.contract import GlobalOp, OpParams


class NormalizeParams(OpParams):
    """Parameters of the ``normalize`` op."""

    low: float = Field(1.0, ge=0, le=100, description="Percentile mapped to 0.")
    high: float = Field(99.8, ge=0, le=100, description="Percentile mapped to 1.")
    clip: bool = Field(True, description="Clip values outside the percentiles to 0..1.")

    @model_validator(mode="after")
    def _ordered(self) -> NormalizeParams:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


def normalize(image: np.ndarray, in_range: tuple[float, float, bool]) -> np.ndarray:
    """Scale ``image`` so the volume's low and high percentiles map to 0 and 1.

    Parameters
    ----------
    image : ndarray
        Grayscale block.
    in_range : (float, float, bool)
        The whole volume's ``numpy.percentile`` values for ``low`` and ``high``, and
        whether to clip.

    Returns
    -------
    ndarray of float
        With clipping, ``skimage.exposure.rescale_intensity(image, in_range=(lo, hi),
        out_range=(0.0, 1.0))``; without, ``(image - lo) / (hi - lo)`` in float64.
        On the whole volume ``lo, hi = numpy.percentile(volume, (low, high))``.
    """
    lo, hi, clip = in_range
    if clip:
        return rescale_intensity(image, in_range=(lo, hi), out_range=(0.0, 1.0))
    return (image.astype(np.float64) - lo) / (hi - lo)


def resolve_normalize(params: NormalizeParams, stats: Stats) -> tuple[float, float, bool]:
    """The whole volume's percentiles ``low`` and ``high``, exactly as numpy gives them."""
    n = int(np.prod(stats.shape))
    ranks = sorted(set(percentile_ranks(n, params.low) + percentile_ranks(n, params.high)))
    values = order_statistics(stats, ranks)
    lo = percentile_from(values.__getitem__, n, params.low)
    hi = percentile_from(values.__getitem__, n, params.high)
    return float(lo), float(hi), params.clip


NORMALIZE = GlobalOp(
    name="normalize",
    params=NormalizeParams,
    func=normalize,
    resolve=resolve_normalize,
    placeholder=lambda params: (0.0, 1.0, params.clip),
    accepts=("image",),
    produces="image",
    summary="Percentile clip-and-scale to 0..1 with the whole volume's percentiles.",
    exact="exact: percentiles equal numpy.percentile of the whole volume",
)
