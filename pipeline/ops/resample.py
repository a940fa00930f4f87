"""Resizing the input image, block by block, as ``skimage.transform.resize`` does.

skimage smooths the whole image (anti-aliasing when shrinking), then samples it with
``scipy.ndimage.zoom`` on the pixel grid (``grid_mode=True``) and clips to the input's
range. Each output block here reads the input region its samples need, plus the
Gaussian's radius, smooths that region, samples it at the same coordinates with
``scipy.ndimage.map_coordinates`` (the same interpolation as zoom's) and clips to the
whole input's range. Orders 0 (nearest: labels, masks) and 1 (linear) need no spline
prefilter over the whole image, so the result equals the whole-image resize.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy import ndimage as ndi

from pipeline.ops.contract import OpParams, ResampleOp

Positive = Annotated[float, Field(gt=0)]

# numpy.pad-style modes as skimage names them, and scipy.ndimage's equivalents.
NDI_MODE = {"reflect": "mirror", "edge": "nearest", "symmetric": "reflect"}


class ResizeParams(OpParams):
    """Parameters of the ``resize`` op: exactly one of scale, shape or spacing."""

    scale: Positive | list[Positive] | None = Field(
        None, description="Factor per axis (output = round(scale × input), as rescale)."
    )
    shape: list[int] | None = Field(None, description="Output shape (z, y, x).")
    spacing: list[float] | None = Field(
        None, description="Target voxel size per axis, in the input's unit."
    )
    order: Literal[0, 1] | None = Field(
        None, description="0 nearest, 1 linear (default: 0 for masks and labels, else 1)."
    )
    anti_aliasing: bool | None = Field(
        None, description="Smooth before shrinking (default as skimage: when shrinking)."
    )
    mode: Literal["reflect", "edge", "symmetric"] = Field(
        "reflect", description="How values beyond the volume edge are filled (skimage's)."
    )
    preserve_range: bool = Field(
        True, description="Keep intensities (false: integers scaled to [0, 1] first)."
    )

    @model_validator(mode="after")
    def _one_of(self) -> ResizeParams:
        given = [k for k in ("scale", "shape", "spacing") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'scale', 'shape' or 'spacing'")
        values = self.shape or self.spacing or []
        if any(v <= 0 for v in values):
            raise ValueError(f"{given[0]} values must be positive")
        return self


def output_shape(
    in_shape: tuple[int, ...], in_spacing: tuple[float, ...], params: ResizeParams
) -> tuple[int, ...]:
    """Output shape: given, or ``max(round(scale × shape), 1)`` as ``rescale`` computes it."""
    ndim = len(in_shape)
    if params.shape is not None:
        if len(params.shape) != ndim:
            raise ValueError(f"shape has {len(params.shape)} values, the image has {ndim} axes")
        return tuple(int(v) for v in params.shape)
    if params.spacing is not None:
        if len(params.spacing) != ndim:
            raise ValueError(f"spacing has {len(params.spacing)} values, the image has {ndim} axes")
        scale = np.divide(in_spacing, params.spacing)
    else:
        scale = np.atleast_1d(params.scale).astype(float)
        if len(scale) not in (1, ndim):
            raise ValueError(f"scale has {len(scale)} values, the image has {ndim} axes")
    out = np.maximum(np.round(scale * np.asarray(in_shape)), 1)
    return tuple(int(v) for v in out)


@dataclass(frozen=True)
class Resize:
    """A resize resolved for one input: what each block computes."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    order: int
    sigma: tuple[float, ...] | None  # anti-aliasing Gaussian, or None
    mode: str  # scipy.ndimage mode
    preserve_range: bool
    in_dtype: str
    clip: tuple[float, float] | None  # the converted input's range, when clipping

    @property
    def ratios(self) -> np.ndarray:
        """Input voxels per output voxel, per axis."""
        return np.divide(self.in_shape, self.out_shape)

    @property
    def out_dtype(self) -> np.dtype:
        """dtype of the output blocks."""
        return np.dtype(self.in_dtype) if self.order == 0 else _float_type(self.in_dtype)


def _float_type(dtype) -> np.dtype:
    return np.dtype(np.float32) if np.dtype(dtype).char in "fe" else np.dtype(np.float64)


def plan_resize(
    in_shape: tuple[int, ...], out_shape: tuple[int, ...], dtype, role: str, params: ResizeParams
) -> Resize:
    """Resolve defaults as ``skimage.transform.resize`` does for this input."""
    dtype = np.dtype(dtype)
    order = params.order if params.order is not None else (1 if role == "image" else 0)
    if dtype == np.bool_ and order != 0:
        raise ValueError("a mask can only be resized with order 0")
    anti = params.anti_aliasing
    if anti is None:
        anti = (
            dtype != np.bool_
            and not (dtype.kind in "iu" and order == 0)
            and any(o < i for o, i in zip(out_shape, in_shape, strict=True))
        )
    if anti and dtype == np.bool_:
        raise ValueError("anti_aliasing must be off for a mask")
    sigma = tuple(float(v) for v in np.maximum(0, (np.divide(in_shape, out_shape) - 1) / 2))
    sigma = sigma if anti else None
    return Resize(
        tuple(in_shape), tuple(out_shape), order, sigma, NDI_MODE[params.mode],
        params.preserve_range, dtype.str, None,
    )  # fmt: skip


def convert(block: np.ndarray, r: Resize) -> np.ndarray:
    """The input as skimage resamples it: float for order 1 (scaled unless preserved)."""
    if r.order == 0:
        return block
    if r.preserve_range:
        return block if block.dtype.char in "df" else block.astype(np.float64)
    from skimage.util import img_as_float

    return img_as_float(block)


def input_box(r: Resize, out_box) -> tuple[tuple[int, int], ...]:
    """The input region the output ``out_box`` samples, with the Gaussian's radius."""
    box = []
    for a, (o0, o1) in enumerate(out_box):
        ratio = r.ratios[a]
        first = (o0 + 0.5) * ratio - 0.5
        last = (o1 - 1 + 0.5) * ratio - 0.5
        radius = int(4.0 * r.sigma[a] + 0.5) if r.sigma is not None else 0
        lo = math.floor(first) - 1 - radius
        hi = math.floor(last) + 3 + radius
        box.append((max(lo, 0), min(hi, r.in_shape[a])))
    return tuple(box)


def resize_region(region: np.ndarray, region_box, out_box, r: Resize) -> np.ndarray:
    """The output block ``out_box`` from the input ``region`` it needs (see module doc).

    Equal, voxel for voxel, to ``skimage.transform.resize(whole, out_shape, order=order,
    mode=mode, anti_aliasing=..., preserve_range=...)`` on the whole image.
    """
    image = convert(region, r)
    if r.sigma is not None:
        image = ndi.gaussian_filter(image, r.sigma, mode=r.mode)
    coords = np.meshgrid(
        *[
            (np.arange(o0, o1) + 0.5) * ratio - 0.5 - s0
            for (o0, o1), ratio, (s0, _) in zip(out_box, r.ratios, region_box, strict=True)
        ],
        indexing="ij",
    )
    out = ndi.map_coordinates(image, coords, order=r.order, mode=r.mode)
    if r.clip is not None and r.order > 0:
        np.clip(out, r.clip[0], r.clip[1], out=out)
    return out


RESIZE = ResampleOp(
    name="resize",
    params=ResizeParams,
    accepts=("image", "mask", "labels"),
    produces="image",
    role=lambda params, roles: roles[0],
    summary="Resize the input by scale, to a shape or to a voxel spacing "
    "(skimage.transform.resize / rescale; order 0 or 1). Must read the input.",
    exact="exact: equals skimage.transform.resize on the whole image",
)
