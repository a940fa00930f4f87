"""Pydantic models of the config file (steps are validated against the op catalogue)."""

from __future__ import annotations

import functools
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from pipeline.measure.crops import CROP_PROPERTIES
from pipeline.measure.objects import INTENSITY, PROPERTIES
from pipeline.ops.catalogue import CATALOGUE
from pipeline.ops.contract import NoBoolNumbers, OpParams

# An object store's settings (obstore's names, or fsspec's: endpoint_url, anon, key, ...)
StorageOptions = dict[str, str | bool | int | float]


class _Frozen(NoBoolNumbers):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Frozen):
    """Where the image comes from and how it is cut into blocks."""

    path: str | Annotated[list[str], Field(min_length=1)] = Field(
        ...,
        description="TIFF file, folder or glob of TIFF files, Zarr/OME-Zarr, NIfTI, DICOM "
        "series folder, HDF5, .npy; or a batch: a list, a CSV manifest (column path, optional "
        "name), or a glob of volumes.",
    )
    batch: bool | None = Field(
        None,
        description="Treat a glob as a batch of inputs (default: a glob of 2D TIFFs is one "
        "stack of slices, any other glob a batch).",
    )
    chunks: list[Annotated[int, Field(ge=1)]] | Literal["auto"] = Field(
        "auto", description="Block shape in voxels (z, y, x), or auto (~64 MiB per block)."
    )
    channel: Annotated[int, Field(ge=0)] | Literal["all"] | None = Field(
        None,
        description="Channel to use of a multi-channel image; 'all' keeps every channel, "
        "on a last axis, for the steps that take several (model, kmeans).",
    )
    timepoint: (
        Annotated[int, Field(ge=0)] | list[Annotated[int, Field(ge=0)]] | Literal["all"] | None
    ) = Field(
        None,
        description="Timepoint to use of a time series; a list or 'all' runs each timepoint "
        "on its own (outputs named t0000, t0001, ... and a row each in batch.csv).",
    )
    dataset: str | None = Field(None, description="Array inside a Zarr group or HDF5 file.")
    series: int | str | None = Field(
        None,
        description="Series of a multi-series TIFF or OME-Zarr (number), or of a DICOM "
        "folder (SeriesInstanceUID, or number in the listed order).",
    )
    level: int = Field(0, ge=0, description="Pyramid level of a TIFF or OME-Zarr (0: full).")
    region: (
        dict[Literal["z", "y", "x"], Annotated[list[int], Field(min_length=2, max_length=2)]] | None
    ) = Field(None, description="Part of the image to use: {z: [start, stop], y: [...], x: [...]}.")
    pattern: str | None = Field(
        None,
        description="Regular expression with named groups z, c, t for the numbers in a TIFF "
        "sequence's file names, e.g. '_z(?P<z>\\d+)_c(?P<c>\\d+)' (default: axis letters "
        "followed by numbers, such as _z012_c1, are found in the names).",
    )
    spacing: list[Annotated[float, Field(gt=0)]] | None = Field(
        None, description="Voxel size per axis; overrides the file's metadata."
    )
    unit: str | None = Field(None, description="Unit of the spacing, e.g. micrometer.")
    allow_missing_chunks: bool = Field(
        False,
        description="Read chunks missing from a Zarr input as its fill value (for stores "
        "that leave out chunks that are all fill value); by default a missing chunk is an "
        "error, as the volume has a hole there.",
    )
    storage_options: StorageOptions | None = Field(
        None,
        description="Settings of the object store an s3://, gs://, az:// or https:// input "
        "is read from, beyond the standard environment and files (AWS_*, ~/.aws, "
        "GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*): e.g. {endpoint: "
        "https://minio.lab:9000, region: eu-west-1, profile: lab, anon: true}.",
    )


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

    @model_validator(mode="after")
    def _intensity_given(self) -> TableSpec:
        asked = [p for p in self.properties or () if p in INTENSITY]
        if asked and self.intensity is None:
            raise ValueError(
                f"{', '.join(asked)} need an image to measure: "
                "name its step in output.table.intensity"
            )
        return self


class OutputSpec(_Frozen):
    """What is written where."""

    path: str = Field(
        ...,
        description="Output folder (labels as OME-Zarr, summary.json). For a batch, {name} "
        "stands for each input's name (default: <path>/{name}).",
    )
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
    nifti: bool = Field(
        False,
        description="Also write the labels as labels.nii.gz with the input's affine (NIfTI "
        "and DICOM inputs carry one; others get their voxel size).",
    )
    storage_options: StorageOptions | None = Field(
        None,
        description="Settings of the object store an s3://, gs:// or az:// output path (and "
        "its scratch and journal) is written to, as input.storage_options.",
    )


class EngineSpec(_Frozen):
    """How the work is scheduled."""

    scheduler: Literal["threads", "sync", "processes"] = "threads"
    workers: int | None = Field(None, ge=1, description="Threads or processes (default: cores).")
    checkpoints: bool = Field(
        True, description="Record each finished block so a rerun resumes (output/.journal)."
    )
    concurrent_inputs: int = Field(
        1, ge=1, description="Inputs of a batch run at the same time (useful on a cluster)."
    )
    scratch: str | None = Field(
        None,
        description="Folder for intermediate blocks kept between passes: each run keeps "
        "them in a subfolder of its own (segpipe-<config hash>), removed at the end "
        "(default: .scratch in the output folder; must be visible to all workers).",
    )
    wave_tasks: int = Field(
        1024,
        ge=1,
        description="Tasks handed to a local scheduler at a time: a pass with more runs in "
        "waves that follow the blocks, so the graph held stays the same size however many "
        "blocks (on a Dask cluster too).",
    )
    halo_exchange: Literal["auto", "scratch", "dask"] = Field(
        "auto",
        description="How the edges of a block (halo slabs) reach the blocks beside it: "
        "through files in scratch, or as Dask task results that Dask moves between "
        "workers (and spills to each worker's own disk), with no image kept in scratch "
        "between passes (each pass computes again what it needs). auto: dask where "
        "scratch is in an object store (an s3://, gs:// or az:// output), else scratch "
        "(see docs/object-storage.md).",
    )
    scratch_budget: str | None = Field(
        None,
        description="Largest total of intermediate images kept in scratch between passes, "
        "e.g. 8GiB; an image past it is computed again by each pass that needs it (default: "
        "what written files may take in memory before writers wait for the disk, "
        "vm.dirty_ratio of the available memory, shared by the concurrent_inputs).",
    )

    @field_validator("scratch_budget")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None:
            size_in_bytes(value)
        return value


def size_in_bytes(text: str) -> int:
    """Bytes in a size such as ``8GiB``, ``500MB`` or ``1024`` (raises ValueError)."""
    try:
        return int(TypeAdapter(ByteSize).validate_python(text))
    except ValidationError:
        raise ValueError(
            f"expected a size such as 8GiB, 500MB or 1024 (bytes), got {text!r}"
        ) from None


class LocalClusterSpec(_Frozen):
    """A Dask LocalCluster on this machine: worker processes with memory limits."""

    workers: int | None = Field(None, ge=1, description="Worker processes (default: cores).")
    threads_per_worker: int = Field(1, ge=1, description="Threads in each worker.")
    memory_limit: str | None = Field(
        None, description="Memory per worker, e.g. 4GiB (default: the machine's share)."
    )
    local_directory: str | None = Field(
        None, description="Where workers spill to disk (default: the system's temp folder)."
    )
    dashboard: bool = Field(True, description="Serve the dashboard (its link is printed).")


class AdaptSpec(_Frozen):
    """Let the number of batch jobs follow the work."""

    minimum_jobs: int = Field(0, ge=0)
    maximum_jobs: int = Field(..., ge=1)


class JobqueueSpec(_Frozen):
    """Worker jobs on a batch system through dask-jobqueue. Keys left out come from the
    site's jobqueue.yaml (Dask config jobqueue.<system>.*)."""

    system: Literal["slurm", "pbs", "lsf"]
    cores: int | None = Field(None, ge=1, description="Cores per job.")
    memory: str | None = Field(None, description="Memory per job, e.g. 32GiB.")
    processes: int | None = Field(None, ge=1, description="Worker processes per job.")
    walltime: str | None = Field(None, description="Job time limit, e.g. 02:00:00.")
    queue: str | None = Field(None, description="Queue or partition.")
    account: str | None = Field(None, description="Account or project to charge.")
    job_extra_directives: list[str] | None = Field(
        None, description="Further scheduler directives, e.g. --gres=gpu:1."
    )
    job_script_prologue: list[str] | None = Field(
        None, description="Shell lines run before the worker starts, e.g. module load."
    )
    local_directory: str | None = Field(None, description="Worker spill folder on the node.")
    log_directory: str | None = Field(None, description="Folder for the jobs' logs.")
    interface: str | None = Field(None, description="Network interface, e.g. ib0.")
    jobs: int | None = Field(None, ge=1, description="Fixed number of jobs (default 1).")
    adapt: AdaptSpec | None = Field(None, description="Scale jobs with the work instead.")

    @field_validator("*", mode="after")
    @classmethod
    def _one_line(cls, value: object) -> object:
        # Each value becomes a line of a shell script: a line break would add commands.
        for line in value if isinstance(value, list) else [value]:
            if isinstance(line, str) and any(c in line for c in "\n\r\0"):
                raise ValueError(f"expected one line, got {line!r}: it goes into a job script")
        return value

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, value: str | None) -> str | None:
        if value is not None and not WALLTIME.fullmatch(value):
            raise ValueError(
                f"expected a time limit such as 02:00:00, 90 or 1-12:00:00, got {value!r}"
            )
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                TypeAdapter(ByteSize).validate_python(value)  # the units dask reads too
            except ValidationError:
                raise ValueError(f"expected a size such as 32GiB, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _processes_fit(self) -> JobqueueSpec:
        if self.cores is not None and self.processes is not None and self.processes > self.cores:
            raise ValueError(
                f"processes ({self.processes}) more than cores ({self.cores}): each worker "
                "process needs at least one core"
            )
        return self


# Batch systems' time limits: minutes, MM:SS, HH:MM:SS, days-HH[:MM[:SS]] (SLURM, PBS, LSF).
WALLTIME = re.compile(r"(\d+-)?\d+(:\d{1,2}){0,2}")


class ClusterSpec(_Frozen):
    """Where the tasks run: one of local, address, scheduler_file, jobqueue
    (none: threads in this process, see engine)."""

    local: LocalClusterSpec | None = None
    address: str | None = Field(None, description="An existing scheduler, tcp://host:8786.")
    scheduler_file: str | None = Field(None, description="An existing scheduler's file.")
    jobqueue: JobqueueSpec | None = None
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for the scheduler.")

    @model_validator(mode="after")
    def _one_kind(self) -> ClusterSpec:
        given = [k for k in ("local", "address", "scheduler_file", "jobqueue") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give one of local, address, scheduler_file, jobqueue, not {given}")
        return self


class PipelineSpec(_Frozen):
    """A whole pipeline: one input, named steps, one output."""

    input: InputSpec
    steps: dict[str, dict]
    output: OutputSpec
    engine: EngineSpec = EngineSpec()
    cluster: ClusterSpec | None = None


@functools.cache
def step_model(op_name: str) -> type[BaseModel]:
    """The model of one step using ``op_name``: op, input and the op's parameters."""
    op = CATALOGUE[op_name]
    return create_model(
        f"Step_{op_name}",
        __base__=op.params,
        op=(Literal[op_name], ...),
        input=(str | None, Field(None, description="Input step (default: the step before).")),
    )


def step_params(op_name: str, step: BaseModel) -> OpParams:
    """The op's parameters of a validated ``step`` (of :func:`step_model`), taken as they
    are: the step model is the parameter model with ``op`` and ``input`` added, so its
    validation was theirs."""
    params = CATALOGUE[op_name].params
    return params.model_construct(
        step.model_fields_set & set(params.model_fields),
        **{k: getattr(step, k) for k in params.model_fields},
    )


def json_schema() -> dict:
    """JSON schema of the config file, for editors."""
    steps = [step_model(name) for name in sorted(CATALOGUE)]
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
        cluster=(ClusterSpec | None, None),
    )
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "segpipe pipeline"
    return schema
