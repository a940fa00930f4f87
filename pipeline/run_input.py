"""The input of a run: opened lazily, checked against the steps, cut into blocks, and
resized when the pipeline starts with a resize step."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pipeline.config.loader import LoadedConfig
from pipeline.engine.blocks import BlockPlan, auto_block
from pipeline.engine.engine import Engine
from pipeline.errors import ConfigError, DataError
from pipeline.graph.dag import without_resample
from pipeline.io.inputs import BatchInput, batch_inputs, per_timepoint
from pipeline.io.readers import Source, open_source
from pipeline.io.resized import ResizedSource
from pipeline.ops.resample import convert, output_shape, plan_resize


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
    return BlockPlan.regular(shape, block)


def open_input(cfg: LoadedConfig, path: str | None = None, timepoint: int | None = None) -> Source:
    """Open the config's input (or ``path`` with the config's selection) lazily."""
    i = cfg.spec.input
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
        if node.op.name == "grayscale" and not source.color:
            raise DataError(
                f"step {node.name!r}: grayscale needs an RGB(A) image, "
                f"the input has axes {source.axes!r}"
            )
        if "color" not in node.op.accepts and source.color and node.inputs[0] == "input":
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
    """The DAG and source to run: with a resize step, the resized input is the source."""
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
    if r.order > 0:  # skimage clips to the whole input's range
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
