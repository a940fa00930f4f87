"""Canny edges: per-block gradients and non-maximum suppression, hysteresis stitched.

Smoothing, gradients and non-maximum suppression are local: a block grown by the
kernel radius plus two voxels computes them exactly. Hysteresis (keep weak edges
connected to a strong edge) is a connected-component question over the whole
image, answered like ``label``: components stitched across blocks, kept when their
largest grade is strong.
"""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import ndimage as ndi

from pipeline.ops.registry import ObjectTable, OpInfo, register


class CannyParams(BaseModel):
    """Parameters of the ``canny`` op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    @model_validator(mode="after")
    def _order(self) -> CannyParams:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


def edge_grades(image: np.ndarray, params: CannyParams) -> np.ndarray:
    """Grade of each voxel: 0 none, 1 weak edge, 2 strong edge.

    Parameters
    ----------
    image : (M, N) or (P, M, N) ndarray
        Grayscale image.
    params : CannyParams
        Smoothing, thresholds and edge mode.

    Returns
    -------
    ndarray of uint8
        2D: weak = ``skimage.feature.canny``'s local maxima of the gradient at or above
        ``low``, strong = those at or above ``high`` (the mask canny builds before its
        hysteresis). 3D: the same from :func:`canny_3d_maxima`.
    """
    if image.ndim == 2:
        from skimage.feature import canny

        low, high = _thresholds(image.dtype, params)
        # With low == high, canny's hysteresis keeps every candidate: its local maxima.
        kw = dict(sigma=params.sigma, mode=params.mode, cval=params.cval)
        weak = canny(image, low_threshold=low, high_threshold=low, **kw)
        strong = canny(image, low_threshold=high, high_threshold=high, **kw)
    else:
        magnitude, maxima = canny_3d_maxima(image, params)
        low, high = _thresholds(image.dtype, params, scaled=True)
        weak = maxima & (magnitude >= low)
        strong = maxima & (magnitude >= high)
    return weak.astype(np.uint8) + strong


def _thresholds(dtype: np.dtype, params: CannyParams, scaled: bool = False):
    """Thresholds as skimage takes them (image units); ``scaled``: for a [0, 1] image."""
    top = 1.0 if dtype.kind == "f" else float(np.iinfo(dtype).max)
    low = params.low if params.low is not None else 0.1 * top
    high = params.high if params.high is not None else 0.2 * top
    return (low / top, high / top) if scaled else (low, high)


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
    from skimage.util import img_as_float

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
    """Gaussian radius, plus one voxel for the gradient and one for the suppression."""
    return (int(4.0 * params.sigma + 0.5) + 2,) * ndim


def keep_strong(params: CannyParams, objects: ObjectTable) -> np.ndarray:
    """Weak-edge components that hold a strong edge voxel."""
    return objects.peaks == 2


register(
    OpInfo(
        name="canny",
        kind="object_filter",
        params=CannyParams,
        func=edge_grades,
        halo=canny_halo,
        accepts=("image",),
        produces="mask",
        decide=keep_strong,
        peaks=True,
        summary="Canny edges: 2D as skimage.feature.canny; 3D with 3D suppression; "
        "hysteresis stitched across blocks.",
        exact="exact: 2D equals skimage.feature.canny; 3D equals the same function on the "
        "whole volume",
    )
)
