"""Per-block filters: Gaussian, median, Sobel, local threshold and RGB to grayscale."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from scipy import ndimage as ndi

from pipeline.kernels.compiled import gaussian_float64
from pipeline.ops.contract import NeighbourhoodOp, NonNegative, OpParams, PointwiseOp, one_voxel


class GaussianParams(OpParams):
    """Parameters of :func:`gaussian`."""

    sigma: NonNegative | list[NonNegative] = Field(
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


def gaussian(
    image: np.ndarray, params: GaussianParams, trim: tuple[tuple[int, int], ...] | None = None
) -> np.ndarray:
    """Gaussian smoothing, as ``scipy.ndimage.gaussian_filter`` on the whole image.

    Parameters
    ----------
    image : (M, N[, P]) ndarray
        Grayscale image.
    params : GaussianParams
        ``sigma`` (per axis), ``truncate``, ``mode`` and output ``dtype``.
    trim : tuple of (int, int), optional
        Voxels to leave out of the result at the start and end of each axis; a trim
        smaller than the kernel radius means the image ends there.

    Returns
    -------
    smoothed : ndarray of float64 or float32
        Equal, voxel for voxel, to
        ``gaussian_filter(image.astype(dtype), sigma, mode=mode, truncate=truncate)``
        on the whole image when the block carries the halo of :func:`gaussian_halo`
        (less ``trim``). Float64 results come from a compiled loop that does scipy's
        arithmetic (:mod:`pipeline.kernels.compiled`).
    """
    dtype = np.dtype(params.dtype)
    # scipy converts each line as it reads it; where every input value is exact in the
    # output dtype this equals converting the whole input first, without the copy.
    if image.dtype == np.bool_ or not np.can_cast(image.dtype, dtype, "safe"):
        image = image.astype(dtype)
    sigmas = params.sigmas(image.ndim)
    if dtype == np.float64:
        out = gaussian_float64(image, sigmas, params.mode, params.truncate, trim)
        if out is not None:
            return out
    mode, truncate = params.mode, params.truncate
    out = ndi.gaussian_filter(image, sigmas, mode=mode, truncate=truncate, output=dtype)
    if trim is None:
        return out
    return out[tuple(slice(b, n - e) for n, (b, e) in zip(out.shape, trim, strict=True))]


def gaussian_halo(params: GaussianParams, ndim: int) -> tuple[int, ...]:
    """Kernel radius per axis: ``int(truncate * sigma + 0.5)``, as scipy computes it."""
    return tuple(int(params.truncate * s + 0.5) for s in params.sigmas(ndim))


class GrayscaleParams(OpParams):
    """Parameters of :func:`grayscale` (none)."""


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


GAUSSIAN = NeighbourhoodOp(
    name="gaussian",
    params=GaussianParams,
    func=gaussian,
    halo_of=gaussian_halo,
    trims=True,
    accepts=("image",),
    produces="image",
    summary="Gaussian smoothing (scipy.ndimage.gaussian_filter).",
)
GRAYSCALE = PointwiseOp(
    name="grayscale",
    params=GrayscaleParams,
    func=grayscale,
    accepts=("color", "image"),
    produces="image",
    summary="RGB(A) to luminance (skimage.color.rgb2gray).",
)


def _per_axis(value: int | list[int], ndim: int, name: str) -> tuple[int, ...]:
    v = value if isinstance(value, list) else [value] * ndim
    if len(v) != ndim:
        raise ValueError(f"{name} has {len(v)} values, the image has {ndim} axes")
    return tuple(int(x) for x in v)


Mode = Literal["reflect", "nearest", "mirror", "constant", "wrap"]


class MedianParams(OpParams):
    """Parameters of :func:`median`."""

    size: int | list[int] = Field(3, description="Window size in voxels, one or one per axis.")
    mode: Literal["reflect", "nearest", "mirror", "constant"] = Field(
        "reflect", description="How values beyond the volume edge are filled."
    )

    @model_validator(mode="after")
    def _positive(self) -> MedianParams:
        sizes = self.size if isinstance(self.size, list) else [self.size]
        if any(s < 1 for s in sizes):
            raise ValueError("size must be at least 1")
        return self


def median(image: np.ndarray, params: MedianParams) -> np.ndarray:
    """Median filter, as ``scipy.ndimage.median_filter(image, size, mode=mode)``.

    Parameters
    ----------
    image : ndarray
        Grayscale image (any dtype; the output keeps it).
    params : MedianParams
        Window ``size`` per axis and edge ``mode``.

    Returns
    -------
    ndarray
        Equal to the whole-image filter when the block carries :func:`median_halo`.
    """
    return ndi.median_filter(
        image, size=_per_axis(params.size, image.ndim, "size"), mode=params.mode
    )


def median_halo(params: MedianParams, ndim: int) -> tuple[int, ...]:
    """Half the window per axis (the window of an even size reaches ``size // 2`` back)."""
    return tuple(s // 2 for s in _per_axis(params.size, ndim, "size"))


class SobelParams(OpParams):
    """Parameters of :func:`sobel`."""

    mode: Mode = Field("reflect", description="How values beyond the volume edge are filled.")


def sobel(image: np.ndarray, params: SobelParams) -> np.ndarray:
    """Sobel gradient magnitude over all axes, as ``skimage.filters.sobel(image, mode=mode)``.

    Parameters
    ----------
    image : ndarray
        Grayscale image; integers are scaled to [0, 1] first, as skimage does.
    params : SobelParams
        Edge ``mode``.

    Returns
    -------
    ndarray of float
        ``sqrt(sum of squared axis derivatives) / sqrt(ndim)``, one voxel of halo.
    """
    from skimage import filters

    return filters.sobel(image, mode=params.mode)


class LocalThresholdParams(OpParams):
    """Parameters of :func:`threshold_local`."""

    block_size: int | list[int] = Field(
        ..., description="Odd size of the neighbourhood, one or one per axis."
    )
    method: Literal["gaussian", "mean", "median"] = Field(
        "gaussian", description="How the neighbourhood is weighted."
    )
    offset: float = Field(0.0, description="Subtracted from the local threshold.")
    mode: Mode = Field("reflect", description="How values beyond the volume edge are filled.")
    cval: float = Field(0.0, description="Fill value of mode constant.")

    @model_validator(mode="after")
    def _odd(self) -> LocalThresholdParams:
        sizes = self.block_size if isinstance(self.block_size, list) else [self.block_size]
        if any(s < 3 or s % 2 == 0 for s in sizes):
            raise ValueError(f"block_size must be odd and at least 3, got {self.block_size}")
        return self


def threshold_local(image: np.ndarray, params: LocalThresholdParams) -> np.ndarray:
    """Mask of voxels above their local threshold (``skimage.filters.threshold_local``).

    Parameters
    ----------
    image : ndarray
        Grayscale image.
    params : LocalThresholdParams
        ``block_size``, ``method``, ``offset``, edge ``mode`` and ``cval``.

    Returns
    -------
    ndarray of bool
        ``image > threshold_local(image, block_size, method, offset, mode, cval=cval)``
        of the whole image, voxel for voxel (the halo holds each neighbourhood).
    """
    from skimage import filters

    sizes = _per_axis(params.block_size, image.ndim, "block_size")
    t = filters.threshold_local(
        image, sizes, params.method, params.offset, params.mode, cval=params.cval
    )
    return image > t


def threshold_local_halo(params: LocalThresholdParams, ndim: int) -> tuple[int, ...]:
    """Gaussian: the kernel radius of sigma (b - 1) / 6; mean, median: b // 2."""
    sizes = _per_axis(params.block_size, ndim, "block_size")
    if params.method == "gaussian":
        return tuple(int(4.0 * ((b - 1) / 6.0) + 0.5) for b in sizes)
    return tuple(b // 2 for b in sizes)


MEDIAN = NeighbourhoodOp(
    name="median",
    params=MedianParams,
    func=median,
    halo_of=median_halo,
    accepts=("image",),
    produces="image",
    summary="Median filter (scipy.ndimage.median_filter), size per axis.",
)
SOBEL = NeighbourhoodOp(
    name="sobel",
    params=SobelParams,
    func=sobel,
    halo_of=one_voxel,
    accepts=("image",),
    produces="image",
    summary="Sobel gradient magnitude (skimage.filters.sobel).",
)
THRESHOLD_LOCAL = NeighbourhoodOp(
    name="threshold_local",
    params=LocalThresholdParams,
    func=threshold_local,
    halo_of=threshold_local_halo,
    accepts=("image",),
    produces="mask",
    summary="Adaptive threshold: image > skimage.filters.threshold_local(image, ...).",
)
