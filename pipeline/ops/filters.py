"""Per-block filters: Gaussian smoothing and RGB to grayscale."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage as ndi

from pipeline.ops.registry import OpInfo, register

PositiveFloat = float


class GaussianParams(BaseModel):
    """Parameters of :func:`gaussian`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sigma: float | list[float] = Field(
        1.0, description="Standard deviation in voxels, one number or one per axis (z, y, x)."
    )
    truncate: float = Field(4.0, gt=0, le=20, description="Kernel radius in sigmas.")
    mode: Literal["nearest", "reflect", "mirror", "constant"] = Field(
        "nearest", description="How values beyond the volume edge are filled."
    )
    dtype: Literal["float64", "float32"] = Field(
        "float64", description="Output dtype (float64 matches the whole-volume reference)."
    )

    def sigmas(self, ndim: int) -> tuple[float, ...]:
        """Sigma per axis for an image of ``ndim`` dimensions."""
        s = self.sigma if isinstance(self.sigma, list) else [self.sigma] * ndim
        if len(s) != ndim:
            raise ValueError(f"sigma has {len(s)} values, the image has {ndim} axes")
        return tuple(float(v) for v in s)


def gaussian(image: np.ndarray, params: GaussianParams) -> np.ndarray:
    """Gaussian smoothing, as ``scipy.ndimage.gaussian_filter`` on the whole image.

    Parameters
    ----------
    image : (M, N[, P]) ndarray
        Grayscale image.
    params : GaussianParams
        ``sigma`` (per axis), ``truncate``, ``mode`` and output ``dtype``.

    Returns
    -------
    smoothed : (M, N[, P]) ndarray of float64 or float32
        Equal, voxel for voxel, to
        ``gaussian_filter(image.astype(dtype), sigma, mode=mode, truncate=truncate)``
        on the whole image when the block carries the halo of :func:`gaussian_halo`.
    """
    dtype = np.dtype(params.dtype)
    # scipy converts each line as it reads it; where every input value is exact in the
    # output dtype this equals converting the whole input first, without the copy.
    if image.dtype == np.bool_ or not np.can_cast(image.dtype, dtype, "safe"):
        image = image.astype(dtype)
    return ndi.gaussian_filter(
        image,
        params.sigmas(image.ndim),
        mode=params.mode,
        truncate=params.truncate,
        output=dtype,
    )


def gaussian_halo(params: GaussianParams, ndim: int) -> tuple[int, ...]:
    """Kernel radius per axis: ``int(truncate * sigma + 0.5)``, as scipy computes it."""
    return tuple(int(params.truncate * s + 0.5) for s in params.sigmas(ndim))


class GrayscaleParams(BaseModel):
    """Parameters of :func:`grayscale` (none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ITU-R BT.709 luma weights, as skimage.color.rgb2gray uses.
_LUMA = np.array([0.2125, 0.7154, 0.0721])


def grayscale(image: np.ndarray, params: GrayscaleParams) -> np.ndarray:
    """Luminance of an RGB(A) image, as ``skimage.color.rgb2gray``.

    Parameters
    ----------
    image : (..., 3) or (..., 4) ndarray
        Colour image with channels last; alpha is ignored.
    params : GrayscaleParams
        No parameters.

    Returns
    -------
    gray : (...) ndarray of float64
        Values scaled to [0, 1] for integer input, as skimage does.
    """
    rgb = image[..., :3]
    if np.issubdtype(rgb.dtype, np.integer):
        rgb = rgb.astype(np.float64) / np.iinfo(image.dtype).max
    else:
        rgb = rgb.astype(np.float64, copy=False)
    return rgb @ _LUMA


register(
    OpInfo(
        name="gaussian",
        kind="neighbourhood",
        params=GaussianParams,
        func=gaussian,
        halo=gaussian_halo,
        accepts=("image",),
        produces="image",
        summary="Gaussian smoothing (scipy.ndimage.gaussian_filter).",
    )
)
register(
    OpInfo(
        name="grayscale",
        kind="pointwise",
        params=GrayscaleParams,
        func=grayscale,
        accepts=("color", "image"),
        produces="image",
        summary="RGB(A) to luminance (skimage.color.rgb2gray).",
    )
)
