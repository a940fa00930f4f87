"""Connected components stitched across blocks (``label``), and the filter of objects by
their stitched size (``remove_small_objects``).

Each block is labelled locally (:mod:`pipeline.kernels.labels`); the engine stitches
the local labels so that the result equals ``skimage.measure.label`` on the whole volume.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pipeline.ops.registry import OpInfo, register


class LabelParams(BaseModel):
    """Parameters of the ``label`` op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connectivity: int | None = Field(
        None,
        ge=1,
        le=3,
        description="Maximum number of orthogonal hops between neighbours (1..ndim); "
        "default ndim, as skimage.",
    )


class RemoveSmallObjectsParams(BaseModel):
    """Parameters of the ``remove_small_objects`` op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_size: int = Field(..., ge=1, description="Objects with fewer voxels than this are removed.")
    connectivity: int | None = Field(
        None, ge=1, le=3, description="Connectivity used to find objects in a mask input."
    )
    renumber: bool = Field(True, description="Renumber the remaining objects 1..N in raster order.")


register(
    OpInfo(
        name="label",
        kind="labelling",
        params=LabelParams,
        accepts=("mask", "labels", "image"),
        produces="labels",
        summary="Connected components (skimage.measure.label), stitched across blocks.",
        exact="exact: equals skimage.measure.label on the whole volume at any chunking",
    )
)
register(
    OpInfo(
        name="remove_small_objects",
        kind="object_filter",
        params=RemoveSmallObjectsParams,
        accepts=("labels", "mask"),
        produces="labels",
        summary="Drop objects smaller than min_size voxels, by their stitched global size.",
        exact="exact: skimage.morphology.remove_small_objects(x, max_size=min_size - 1)",
        role=lambda params, roles: "mask" if roles and roles[0] == "mask" else "labels",
        decide=lambda params, objects: objects.sizes >= params.min_size,
    )
)
