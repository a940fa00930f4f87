"""Canny edges: per-block gradients and non-maximum suppression, hysteresis stitched.

Smoothing, gradients and non-maximum suppression are local: a block grown by the
kernel radius plus two voxels computes them exactly. Hysteresis (keep weak edges
connected to a strong edge) is a connected-component question over the whole
image, answered like ``label``: components stitched across blocks, kept when their
largest grade is strong.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from scipy import ndimage as ndi
from skimage.util import img_as_float

from pipeline.kernels.histogram import order_statistics, percentile_from, percentile_ranks
from pipeline.kernels.reduction import Stats
from pipeline.ops.contract import ObjectFilterOp, ObjectParams, ObjectTable, core_slices


class CannyParams(ObjectParams):
    """Parameters of the ``canny`` op."""

    sigma: float = Field(1.0, gt=0, le=50, description="Gaussian smoothing, in voxels.")
    low: float | None = Field(
        None, ge=0, description="Weak-edge gradient threshold (default 0.1 × dtype max)."
    )
    high: float | None = Field(
        None, ge=0, description="Strong-edge gradient threshold (default 0.2 × dtype max)."
    )
    mode: Literal["constant", "nearest", "reflect", "mirror"] = Field(
        "constant", description="How values beyond the volume edge are filled (skimage's)."
    )
    cval: float = Field(0.0, description="Fill value of mode constant.")
    use_quantiles: bool = Field(
        False, description="low and high are quantiles (0..1) of the whole volume's gradient."
    )
    planes: bool = Field(
        False, description="3D stack: 2D canny in each plane, edges connect within planes."
    )

    @model_validator(mode="after")
    def _order(self) -> CannyParams:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.use_quantiles and any(v is not None and v > 1 for v in (self.low, self.high)):
            raise ValueError("quantile thresholds must be between 0 and 1")
        return self

    def in_planes(self) -> bool:
        return self.planes


@dataclass(frozen=True)
class CannyArgs:
    """Resolved canny: parameters and thresholds for the image scaled to [0, 1]."""

    params: CannyParams
    low: float
    high: float


def resolve_canny(params: CannyParams, stats: Stats) -> CannyArgs:
    """Thresholds in the units of the [0, 1]-scaled image, as skimage uses them.

    Given values are divided by the dtype's maximum; quantiles become the whole
    volume's ``numpy.percentile`` of the gradient magnitude (exact order statistics).
    """
    top = 1.0 if stats.dtype.kind == "f" else float(np.iinfo(stats.dtype).max)
    if not params.use_quantiles:
        low = params.low / top if params.low is not None else 0.1
        high = params.high / top if params.high is not None else 0.2
        return CannyArgs(params, low, high)
    low = params.low if params.low is not None else 0.1
    high = params.high if params.high is not None else 0.2
    n = int(np.prod(stats.shape))
    ranks = sorted(set(percentile_ranks(n, 100.0 * low) + percentile_ranks(n, 100.0 * high)))
    halo = tuple(max(h - 1, 0) for h in canny_halo(params, len(stats.shape)))
    values = partial(_core_magnitude, params=params)
    dtype = np.float32 if stats.dtype in (np.float16, np.float32) else np.float64
    found = order_statistics(stats, ranks, values, halo, dtype)
    low = percentile_from(found.__getitem__, n, 100.0 * low)
    high = percentile_from(found.__getitem__, n, 100.0 * high)
    return CannyArgs(params, float(low), float(high))


def gradient_magnitude(image: np.ndarray, params: CannyParams) -> np.ndarray:
    """The gradient magnitude canny thresholds: of the smoothed, [0, 1]-scaled image.

    2D: as ``skimage.feature.canny`` computes it (Gaussian with edge-weight correction
    in mode constant, then Sobel); 3D: :func:`canny_3d_maxima`'s.
    """
    if image.ndim == 3 and params.planes:
        return np.stack([gradient_magnitude(plane, params) for plane in image])
    if image.ndim != 2:
        return canny_3d_maxima(image, params)[0]
    from skimage.filters import gaussian

    f = img_as_float(image)
    kw = dict(sigma=params.sigma, mode=params.mode, cval=params.cval, preserve_range=False)
    smoothed = gaussian(f, **kw)
    if params.mode == "constant":
        smoothed /= gaussian(np.ones(f.shape, f.dtype), **kw) + np.finfo(f.dtype).eps
    jsobel = ndi.sobel(smoothed, axis=1)
    isobel = ndi.sobel(smoothed, axis=0)
    magnitude = isobel * isobel
    magnitude += jsobel * jsobel
    return np.sqrt(magnitude, out=magnitude)


def _core_magnitude(block, box, core, *, params: CannyParams) -> np.ndarray:
    return gradient_magnitude(block, params)[core_slices(box, core)]


def edge_grades(image: np.ndarray, args: CannyArgs) -> np.ndarray:
    """Grade of each voxel: 0 none, 1 weak edge, 2 strong edge.

    Parameters
    ----------
    image : (M, N) or (P, M, N) ndarray
        Grayscale image.
    args : CannyArgs
        Smoothing and edge mode, and the thresholds for the [0, 1]-scaled image.

    Returns
    -------
    ndarray of uint8
        2D: weak = ``skimage.feature.canny``'s local maxima of the gradient at or above
        ``low``, strong = those at or above ``high`` (the mask canny builds before its
        hysteresis). 3D: the same from :func:`canny_3d_maxima`.
    """
    params, low, high = args.params, args.low, args.high
    if image.ndim == 3 and params.planes:
        return np.stack([edge_grades(plane, args) for plane in image])
    if image.ndim == 2:
        from skimage.feature import canny

        # canny scales an integer image to [0, 1] itself and divides its thresholds by
        # the dtype's maximum; scaling first and passing scaled thresholds is the same.
        f = img_as_float(image)
        kw = dict(sigma=params.sigma, mode=params.mode, cval=params.cval)
        # With low == high, canny's hysteresis keeps every candidate: its local maxima.
        weak = canny(f, low_threshold=low, high_threshold=low, **kw)
        strong = canny(f, low_threshold=high, high_threshold=high, **kw)
    else:
        magnitude, maxima = canny_3d_maxima(image, params)
        weak = maxima & (magnitude >= low)
        strong = maxima & (magnitude >= high)
    return weak.astype(np.uint8) + strong


# The 13 directions of a 26-neighbourhood, one of each opposite pair.
_DIRECTIONS = np.array(
    [d for d in itertools.product((-1, 0, 1), repeat=3) if d > (0, 0, 0)], dtype=float
)


def canny_3d_maxima(image: np.ndarray, params: CannyParams) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude of the smoothed volume and its maxima along the gradient.

    The image is scaled to [0, 1] as skimage does for integers, smoothed with a
    Gaussian (``mode``, ``cval``), differentiated with Sobel per axis; a voxel is a
    maximum when its magnitude is positive and not below either neighbour along the
    one of 13 neighbour directions closest to its gradient. The outermost voxels of
    the volume are never edges (as in skimage's 2D canny).
    """
    f = img_as_float(image)
    smoothed = ndi.gaussian_filter(f, params.sigma, mode=params.mode, cval=params.cval)
    grads = np.stack([ndi.sobel(smoothed, axis=a) for a in range(3)], axis=-1)
    magnitude = np.sqrt(np.sum(grads * grads, axis=-1))
    unit = _DIRECTIONS / np.linalg.norm(_DIRECTIONS, axis=1, keepdims=True)
    direction = np.argmax(np.abs(grads @ unit.T), axis=-1)
    padded = np.pad(magnitude, 1, mode="constant", constant_values=np.inf)
    maxima = magnitude > 0
    for i, d in enumerate(_DIRECTIONS.astype(int)):
        sel = direction == i
        for sign in (1, -1):
            shifted = tuple(
                slice(1 + sign * o, n + 1 + sign * o)
                for o, n in zip(d, magnitude.shape, strict=True)
            )
            neighbour = padded[shifted]
            maxima &= ~sel | (magnitude >= neighbour)
    border = np.ones(magnitude.shape, dtype=bool)
    border[1:-1, 1:-1, 1:-1] = False
    maxima &= ~border
    return magnitude, maxima


def canny_halo(params: CannyParams, ndim: int) -> tuple[int, ...]:
    """Gaussian radius, plus one voxel for the gradient and one for the suppression
    (none across planes when each plane is on its own)."""
    h = int(4.0 * params.sigma + 0.5) + 2
    return (0, *(h,) * (ndim - 1)) if params.planes and ndim == 3 else (h,) * ndim


def keep_strong(params: CannyParams, objects: ObjectTable) -> np.ndarray:
    """Weak-edge components that hold a strong edge voxel."""
    return objects.peaks == 2


CANNY = ObjectFilterOp(
    name="canny",
    params=CannyParams,
    prepare=edge_grades,
    halo_of=canny_halo,
    accepts=("image",),
    produces="mask",
    decide=keep_strong,
    resolve=resolve_canny,
    peaks=True,
    summary="Canny edges: 2D as skimage.feature.canny; 3D with 3D suppression; "
    "hysteresis stitched across blocks.",
    exact="exact: 2D equals skimage.feature.canny; 3D equals the same function on the whole volume",
)
