"""Clean-up decided per stitched object: border objects, holes, hysteresis.

Each op labels a mask across blocks (stitched, as ``label``) and keeps or drops
whole objects by what is known of them over the whole volume: size, whether they
touch the volume border, their largest value. So the result equals the scikit-image
or SciPy function on the whole image at any chunking.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from pipeline.ops.contract import ConnectedParams, ObjectFilterOp, ObjectTable, OpParams, one_voxel


class ClearBorderParams(ConnectedParams):
    """Parameters of the ``clear_border`` op."""

    connectivity: int | None = Field(
        None, ge=1, le=3, description="Connectivity of objects in a mask input (default ndim)."
    )
    renumber: bool = Field(False, description="Renumber the remaining objects 1..N.")

    def renumbered(self) -> bool:
        return self.renumber


class HolesParams(ConnectedParams):
    """Parameters of the ``remove_small_holes`` op."""

    max_size: int = Field(..., ge=0, description="Holes of at most this many voxels are filled.")
    connectivity: int = Field(1, ge=1, le=3, description="Connectivity of the background.")


class FillHolesParams(ConnectedParams):
    """Parameters of the ``fill_holes`` op."""

    connectivity: int = Field(
        1, ge=1, le=3, description="Connectivity of the background (scipy's default 1)."
    )


class HysteresisParams(ConnectedParams):
    """Parameters of the ``hysteresis_threshold`` op."""

    low: float = Field(..., description="Voxels above this form the candidate objects.")
    high: float = Field(..., description="Objects with a voxel above this are kept.")
    inclusive: bool = Field(False, description="Compare with >= instead of >.")
    connectivity: int = Field(1, ge=1, le=3, description="Connectivity of the objects.")

    @model_validator(mode="after")
    def _order(self) -> HysteresisParams:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


def background(mask: np.ndarray, params: OpParams) -> np.ndarray:
    """The background of a mask, whose components are the holes and the outside."""
    return ~mask.astype(bool, copy=False)


def background_and_neighbours(image: np.ndarray, params: FillHolesParams):
    """The background, and what fill_holes decides on.

    For a mask: its background. For labels: the background, and per voxel the largest
    and (negated) smallest label among its neighbours, so that each background
    component learns which objects enclose it.
    """
    if image.dtype == np.bool_:
        return ~image
    from scipy import ndimage as ndi

    footprint = ndi.generate_binary_structure(image.ndim, params.connectivity)
    labels = image.astype(np.int64)
    largest = ndi.maximum_filter(labels, footprint=footprint, mode="constant", cval=0)
    none = np.iinfo(np.int64).max
    smallest = ndi.minimum_filter(
        np.where(labels == 0, none, labels), footprint=footprint, mode="constant", cval=none
    )
    return labels == 0, np.stack([largest, -smallest], axis=-1)


def fill_enclosed(params: FillHolesParams, objects: ObjectTable) -> np.ndarray:
    """Mask input: keep the background that reaches the border (the rest are holes).
    Labels input: each background component enclosed by one object only, and not on the
    border, takes that object's id (others stay background)."""
    if objects.peaks is None:
        return objects.border
    largest, smallest = objects.peaks[:, 0], -objects.peaks[:, 1]
    hole = ~objects.border & (largest > 0) & (largest == smallest)
    return np.where(hole, largest, 0)


def keep_labels_fill_holes(original: np.ndarray, filled: np.ndarray, params) -> np.ndarray:
    """The input labels, with the filled holes' ids where the input is background."""
    return np.where(original == 0, filled.astype(original.dtype), original)


def above_low(image: np.ndarray, params: HysteresisParams) -> np.ndarray:
    """Candidate voxels of hysteresis: ``image > low`` (``>=`` when inclusive)."""
    return image >= params.low if params.inclusive else image > params.low


def keep_inner(params: ClearBorderParams, objects: ObjectTable) -> np.ndarray:
    """``skimage.segmentation.clear_border``: objects that do not touch the border."""
    return ~objects.border


def keep_large_background(params: HolesParams, objects: ObjectTable) -> np.ndarray:
    """Background components larger than ``max_size`` stay background; smaller fill."""
    return objects.sizes > params.max_size


def keep_strong(params: HysteresisParams, objects: ObjectTable) -> np.ndarray:
    """Objects whose largest value passes ``high``."""
    return objects.peaks >= params.high if params.inclusive else objects.peaks > params.high


def same_role(params: OpParams, roles: list[str]) -> str:
    """The output takes the input's role (labels stay labels, a mask a mask)."""
    return roles[0]


CLEAR_BORDER = ObjectFilterOp(
    name="clear_border",
    params=ClearBorderParams,
    accepts=("labels", "mask"),
    produces="labels",
    role=same_role,
    decide=keep_inner,
    summary="Remove objects touching the volume border (skimage.segmentation.clear_border).",
    exact="exact: decided on stitched objects",
)
REMOVE_SMALL_HOLES = ObjectFilterOp(
    name="remove_small_holes",
    params=HolesParams,
    prepare=background,
    accepts=("mask",),
    produces="mask",
    decide=keep_large_background,
    negate=True,
    summary="Fill holes of at most max_size voxels "
    "(skimage.morphology.remove_small_holes(mask, max_size=...)).",
    exact="exact: background components stitched across blocks",
)
FILL_HOLES = ObjectFilterOp(
    name="fill_holes",
    params=FillHolesParams,
    prepare=background_and_neighbours,
    halo_of=one_voxel,
    accepts=("mask", "labels"),
    produces="mask",
    role=same_role,
    decide=fill_enclosed,
    negate=True,
    finish=keep_labels_fill_holes,
    summary="Fill background enclosed by foreground (scipy.ndimage.binary_fill_holes); "
    "for labels, background enclosed by one object takes its id.",
    exact="exact: a hole may span any number of blocks",
)
HYSTERESIS_THRESHOLD = ObjectFilterOp(
    name="hysteresis_threshold",
    params=HysteresisParams,
    prepare=above_low,
    accepts=("image",),
    produces="mask",
    decide=keep_strong,
    peaks=True,
    summary="Keep components of image > low that hold a voxel > high "
    "(skimage.filters.apply_hysteresis_threshold).",
    exact="exact: components stitched across blocks",
)
