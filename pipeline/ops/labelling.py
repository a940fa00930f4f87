"""Connected components stitched across blocks (``label``), and the filter of objects by
their stitched size (``remove_small_objects``).

Each block is labelled locally (:mod:`pipeline.kernels.labels`); the engine stitches
the local labels so that the result equals ``skimage.measure.label`` on the whole volume.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from pipeline.ops.contract import ConnectedParams, LabellingOp, ObjectFilterOp, ObjectTable


class LabelParams(ConnectedParams):
    """Parameters of the ``label`` op."""


class RemoveSmallObjectsParams(ConnectedParams):
    """Parameters of the ``remove_small_objects`` op."""

    min_size: int = Field(..., ge=1, description="Objects with fewer voxels than this are removed.")
    connectivity: int | None = Field(
        None, ge=1, le=3, description="Connectivity used to find objects in a mask input."
    )
    renumber: bool = Field(True, description="Renumber the remaining objects 1..N in raster order.")

    def renumbered(self) -> bool:
        return self.renumber


def keep_large(params: RemoveSmallObjectsParams, objects: ObjectTable) -> np.ndarray:
    """Objects of at least ``min_size`` voxels."""
    return objects.sizes >= params.min_size


def mask_or_labels(params: RemoveSmallObjectsParams, roles: list[str]) -> str:
    """A mask stays a mask; labels stay labels."""
    return "mask" if roles and roles[0] == "mask" else "labels"


LABEL = LabellingOp(
    name="label",
    params=LabelParams,
    accepts=("mask", "labels", "image"),
    produces="labels",
    summary="Connected components (skimage.measure.label), stitched across blocks.",
    exact="exact: equals skimage.measure.label on the whole volume at any chunking",
)
REMOVE_SMALL_OBJECTS = ObjectFilterOp(
    name="remove_small_objects",
    params=RemoveSmallObjectsParams,
    accepts=("labels", "mask"),
    produces="labels",
    summary="Drop objects smaller than min_size voxels, by their stitched global size.",
    exact="exact: skimage.morphology.remove_small_objects(x, max_size=min_size - 1)",
    role=mask_or_labels,
    decide=keep_large,
)
