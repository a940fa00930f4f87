"""Pydantic models of the config file (steps are validated against the op registry)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from pipeline.ops.measure import PROPERTIES
from pipeline.ops.registry import all_ops
from pipeline.ops.shape import CROP_PROPERTIES


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Frozen):
    """Where the image comes from and how it is cut into blocks."""

    path: str = Field(..., description="TIFF file, folder or glob of TIFF slices, Zarr, .npy.")
    chunks: list[Annotated[int, Field(ge=1)]] | Literal["auto"] = Field(
        "auto", description="Block shape in voxels (z, y, x), or auto (~64 MiB per block)."
    )
    channel: int | None = Field(None, ge=0, description="Channel to use of a multi-channel image.")
    timepoint: int | None = Field(None, ge=0, description="Timepoint to use of a time series.")
    dataset: str | None = Field(None, description="Array inside a Zarr group.")
    spacing: list[Annotated[float, Field(gt=0)]] | None = Field(
        None, description="Voxel size per axis; overrides the file's metadata."
    )
    unit: str | None = Field(None, description="Unit of the spacing, e.g. micrometer.")


class TableSpec(_Frozen):
    """A table of the written objects (one row each), like skimage's regionprops_table."""

    format: Literal["parquet", "csv"] = Field("parquet", description="File format.")
    intensity: str | None = Field(
        None, description="Image step whose values intensity_* columns measure."
    )
    properties: list[Literal[PROPERTIES + CROP_PROPERTIES]] | None = Field(  # type: ignore[valid-type]
        None,
        description="Columns to compute (default: all that apply, except those measured on "
        "each object's crop, which are computed only when listed).",
    )


class OutputSpec(_Frozen):
    """What is written where."""

    path: str = Field(..., description="Output folder (labels as OME-Zarr, summary.json).")
    labels: str = Field(..., description="Step whose labels are written.")
    overwrite: bool = Field(False, description="Replace an existing output folder.")
    table: TableSpec | None = Field(None, description="Also write a table of the objects.")
    image: str | None = Field(
        None,
        description="Step (or input) written as an OME-Zarr image pyramid (image.ome.zarr), "
        "with the labels in its labels/ group.",
    )
    report: bool = Field(
        False, description="Write report/: overview, size histogram, objects per block, HTML."
    )


class EngineSpec(_Frozen):
    """How the work is scheduled."""

    scheduler: Literal["threads", "sync", "processes"] = "threads"
    workers: int | None = Field(None, ge=1, description="Threads or processes (default: cores).")
    scratch: str | None = Field(
        None,
        description="Folder for intermediate blocks kept between passes, removed at the end "
        "(default: .scratch in the output folder; must be visible to all workers).",
    )


class PipelineSpec(_Frozen):
    """A whole pipeline: one input, named steps, one output."""

    input: InputSpec
    steps: dict[str, dict]
    output: OutputSpec
    engine: EngineSpec = EngineSpec()


def step_model(op_name: str) -> type[BaseModel]:
    """The model of one step using ``op_name``: op, input and the op's parameters."""
    op = all_ops()[op_name]
    return create_model(
        f"Step_{op_name}",
        __base__=op.params,
        op=(Literal[op_name], ...),
        input=(str | None, Field(None, description="Input step (default: the step before).")),
    )


def json_schema() -> dict:
    """JSON schema of the config file, for editors."""
    steps = [step_model(name) for name in sorted(all_ops())]
    union = Annotated[
        steps[0] if len(steps) == 1 else __import__("typing").Union[tuple(steps)],  # noqa: UP007
        Field(discriminator="op"),
    ]
    model = create_model(
        "SegpipeConfig",
        __config__=ConfigDict(extra="forbid"),
        input=(InputSpec, ...),
        steps=(dict[str, union], ...),
        output=(OutputSpec, ...),
        engine=(EngineSpec, EngineSpec()),
    )
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "segpipe pipeline"
    return schema
