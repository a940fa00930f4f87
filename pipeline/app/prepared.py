"""The prepared input of a run: the config's input opened lazily (metadata only), checked
against the steps, resized where the pipeline starts with a resize step, and cut into blocks.

Every way to run a config (a run, a batch item, a dry run, one block, a plan) starts from
one :class:`Prepared`, made by :func:`prepare`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from pipeline.config.loader import LoadedConfig
from pipeline.engine.blocks import BlockPlan, auto_block
from pipeline.engine.engine import Engine
from pipeline.errors import ConfigError, DataError
from pipeline.graph.dag import Dag, with_input_spacing, without_resample
from pipeline.io import storage
from pipeline.io.inputs import BatchInput, batch_inputs, input_name, per_timepoint
from pipeline.io.readers import Source, open_source
from pipeline.io.resized import ResizedSource
from pipeline.ops.resample import convert, output_shape, plan_resize

MAX_BLOCKS = 10**8  # blocks of one run: past this, planning alone takes hours


def plan_for(cfg: LoadedConfig, source: Source, auto_only: bool = False) -> BlockPlan:
    """The block plan of a config on its source (``auto_only``: ignore input.chunks)."""
    chunks = "auto" if auto_only else cfg.spec.input.chunks
    shape = source.shape
    if chunks == "auto":
        block = auto_block(shape, source.storage_chunks, 8)
    else:
        if len(chunks) != len(shape):
            raise DataError(
                f"input.chunks: expected {len(shape)} values for an image of shape {shape}, "
                f"got {list(chunks)}"
            )
        block = tuple(chunks)
    blocks = BlockPlan.count(shape, block)
    if blocks > MAX_BLOCKS:
        raise DataError(
            f"input.chunks: an image of shape {tuple(shape)} in blocks of {tuple(block)} "
            f"gives {blocks:.3g} blocks; a run takes at most {MAX_BLOCKS:,}: give larger "
            "input.chunks (or, after a resize step, resize less)"
        )
    return BlockPlan.regular(shape, block)


def register_locations(cfg: LoadedConfig) -> None:
    """Make the config's storage options those of its object-store locations (input,
    output, scratch) in this process and the processes of its run."""
    i, o = cfg.spec.input, cfg.spec.output
    for path in i.path if isinstance(i.path, list) else [i.path]:
        if storage.is_url(path):
            storage.register(path, i.storage_options)
    for key, path in (("output.path", o.path), ("engine.scratch", cfg.spec.engine.scratch)):
        if path is not None and storage.is_url(path):
            storage.check_output_url(path.replace("{name}", "x"), key)
            # (a batch's pattern: the part before {name} holds every input's output)
            head = path.split("{name}")[0].rpartition("/")[0] if "{name}" in path else path
            storage.register(head, o.storage_options)


def open_input(cfg: LoadedConfig, path: str | None = None, timepoint: int | None = None) -> Source:
    """Open the config's input (or ``path`` with the config's selection) lazily."""
    i = cfg.spec.input
    where = i.path if path is None else path
    if isinstance(where, str) and storage.is_url(where):
        storage.register(where, i.storage_options)
    if timepoint is None and isinstance(i.timepoint, int):
        timepoint = i.timepoint
    # Relative paths are relative to the working directory, as on the command line.
    return open_source(
        i.path if path is None else path,
        i.channel,
        timepoint,
        i.dataset,
        i.spacing,
        i.unit,
        series=i.series,
        level=i.level,
        region=i.region,
        pattern=i.pattern,
        allow_missing_chunks=i.allow_missing_chunks,
    )


def input_items(cfg: LoadedConfig) -> list[BatchInput] | None:
    """The inputs of a batch (one per volume, or per timepoint), or None for one input."""
    i = cfg.spec.input

    def timepoints(path: str) -> int:  # (opening timepoint 0 fails without a time axis)
        src = open_input(cfg, path, timepoint=0)
        return src.native_shape[src.native_axes.index("t")]

    return per_timepoint(batch_inputs(i.path, i.batch), i.path, i.timepoint, timepoints)


def check_roles(cfg: LoadedConfig, source: Source) -> None:
    """Raise DataError where a step cannot take the input (colour, dtype)."""
    for node in cfg.dag.nodes.values():
        if node.op is None:
            continue
        if node.op.name == "grayscale" and "c" not in source.axes:
            raise DataError(
                f"step {node.name!r}: grayscale needs an RGB(A) image, "
                f"the input has axes {source.axes!r}"
            )
        if "color" not in node.op.accepts and source.color and node.inputs[0] == "input":
            if "C" in source.axes:
                raise DataError(
                    f"step {node.name!r}: takes one channel, the input keeps all "
                    f"{source.samples} (input.channel: all; axes {source.axes!r}): choose "
                    "one with input.channel, or read them with a model or kmeans step"
                )
            raise DataError(
                f"step {node.name!r}: the input is RGB (axes {source.axes!r}); "
                "add a grayscale step first"
            )
    dtype = np.dtype(source.dtype)
    if dtype.kind not in "uifb":
        raise DataError(f"{source.path}: cannot segment dtype {dtype}")


def opened(cfg: LoadedConfig) -> Source:
    """The config's input, opened and checked against the steps (metadata only)."""
    source = open_input(cfg)
    check_roles(cfg, source)
    return source


def resized_input(cfg: LoadedConfig, source: Source, target: str, scheduler):
    """The DAG and source to run: with a resize step, the resized input is the source.

    A resize that interpolates clips to the whole input's range, found by one pass over
    the input on ``scheduler``; with ``scheduler`` None (a plan, a dry run) that pass is
    not made and the resize is not clipped (its grid is the same)."""
    dag, step = without_resample(cfg.dag)
    if step is None:
        return dag, source
    if step.name == target:
        raise ConfigError(f"output.labels: step {target!r} only resizes; name a later step")
    try:
        out_shape = output_shape(source.shape, source.spacing, step.params)
        r = plan_resize(
            source.shape, out_shape, source.dtype, cfg.dag.nodes["input"].role, step.params
        )
    except ValueError as exc:
        raise DataError(f"step {step.name!r}: {exc}") from None
    if r.order > 0 and scheduler is not None:  # skimage clips to the whole input's range
        lo, hi = input_range(cfg, source, scheduler)
        conv = convert(np.array([lo, hi], dtype=source.dtype), r)
        r = replace(r, clip=(conv[0].item(), conv[1].item()))
    return dag, ResizedSource(source, r)


def input_range(cfg: LoadedConfig, source, scheduler) -> tuple:
    """Minimum and maximum of the input image (one pass over its blocks)."""
    from pipeline.graph.dag import SOURCE, Dag, Node
    from pipeline.kernels.histogram import block_range, merge_range

    dag = Dag({SOURCE: Node(SOURCE, None, None, (), "image")}, {SOURCE: []})
    plan = plan_for(cfg, source, auto_only=True)
    engine = Engine(dag, source, plan, scheduler=scheduler)
    try:
        return engine.reduce_over((SOURCE,), block_range, merge_range, "range input")
    finally:
        engine.close()


def select_input(inputs: list[BatchInput] | None, only: str) -> BatchInput:
    """The one input of a batch named (or numbered, from 0) ``only``."""
    if inputs is None:
        raise ConfigError(f"--input {only}: the config's input is not a batch")
    names = [item.name for item in inputs]
    if only in names:
        return inputs[names.index(only)]
    if only.isdigit() and int(only) < len(inputs):
        return inputs[int(only)]
    raise DataError(
        f"--input {only}: expected a name or an index below {len(inputs)}, "
        f"inputs: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}"
    )


def output_pattern(path: str) -> str:
    """The output folder pattern of a batch: ``path`` with ``{name}``, or ``path/{name}``."""
    return path if "{name}" in path else os.path.join(path, "{name}")


def item_config(cfg: LoadedConfig, item: BatchInput) -> LoadedConfig:
    """The config of one input of a batch, made from the validated one: its input path
    (and timepoint) and its output folder set, nothing validated again."""
    spec = cfg.spec
    given: dict = {"path": item.path, "batch": None}
    if item.timepoint is not None:
        given["timepoint"] = item.timepoint
    out = output_pattern(spec.output.path).replace("{name}", item.name)
    one = spec.model_copy(
        update={
            "input": spec.input.model_copy(update=given),
            "output": spec.output.model_copy(update={"path": out}),
        }
    )
    return replace(cfg, spec=one)


def single_config(cfg: LoadedConfig) -> LoadedConfig:
    """``cfg`` as it runs on its one input: an output path with ``{name}`` gets the
    input's name."""
    if "{name}" not in cfg.spec.output.path:
        return cfg
    path = cfg.spec.input.path
    return item_config(cfg, BatchInput(input_name(path), path))


@dataclass(frozen=True)
class Prepared:
    """One input of a config, ready to run: what every way to run a config starts from."""

    cfg: LoadedConfig
    opened: Source  # the input as opened
    source: Source  # what the steps read: the input, or its resized view
    dag: Dag  # the steps run on ``source`` (a first resize step taken out), with its spacing
    plan: BlockPlan  # the blocks of ``source``
    target: str  # the step whose labels are written

    @property
    def resize(self):
        """The resize of the input (a ``ResizePlan``), or None."""
        return getattr(self.source, "resize", None)


def prepare(cfg: LoadedConfig, scheduler=None, source: Source | None = None) -> Prepared:
    """Open ``cfg``'s one input (unless given as ``source``, opened by :func:`opened`),
    check it against the steps, resize it where the first step resizes (``scheduler``:
    see :func:`resized_input`) and cut it into blocks."""
    source = opened(cfg) if source is None else source
    target = cfg.spec.output.labels
    dag, steps_read = resized_input(cfg, source, target, scheduler)
    dag = with_input_spacing(dag, steps_read.spacing)
    return Prepared(cfg, source, steps_read, dag, plan_for(cfg, steps_read), target)
