"""``segpipe plan``: steps, block grid, halo per step and memory per task, without computing."""

from __future__ import annotations

import math

import numpy as np

from pipeline.batch import input_config
from pipeline.config import load_config
from pipeline.engine.engine import Engine
from pipeline.errors import DataError
from pipeline.graph.dag import with_input_spacing, without_resample
from pipeline.io.resized import ResizedSource
from pipeline.ops.resample import output_shape, plan_resize
from pipeline.run_input import input_items, open_input, plan_for


def describe_plan(config, overrides=()) -> str:
    """A text description of what a run of ``config`` would do."""
    cfg = load_config(config, overrides)
    inputs = input_items(cfg)
    if inputs:  # a batch: the plan of its first input
        head = f"batch:   {len(inputs)} inputs; the plan of the first, {inputs[0].name!r}"
        return head + "\n" + describe_plan(input_config(cfg, inputs[0]))
    source = open_input(cfg)
    dag, step = without_resample(cfg.dag)
    resize_line = None
    if step is not None:  # the steps after a resize run on the resized grid
        shape = output_shape(source.shape, source.spacing, step.params)
        role = cfg.dag.nodes["input"].role
        r = plan_resize(source.shape, shape, source.dtype, role, step.params)
        resize_line = (
            f"resize:  step {step.name!r}: {source.shape} -> {shape}, order {r.order}, "
            f"anti-aliasing sigma {r.sigma}"
        )
        source = ResizedSource(source, r)
    dag = with_input_spacing(dag, source.spacing)
    plan = plan_for(cfg, source)
    ndim = len(plan.shape)
    block = tuple(c[0] for c in plan.chunks)
    engine = Engine(dag, source, plan)
    lines = [
        f"input:   {source.path}  axes {source.axes}  shape {source.shape}  {source.dtype}",
        f"spacing: {source.spacing} {source.unit or ''}",
        f"blocks:  {block} -> grid {plan.grid} = {plan.nblocks} blocks",
        "steps:",
    ]
    if resize_line:
        lines.insert(2, resize_line)
    max_bytes = 0
    for name, node in dag.nodes.items():
        if node.op is None:
            continue
        try:
            halo = node.halo(ndim)
        except ValueError as exc:
            raise DataError(f"step {name!r}: {exc}") from None
        prog = engine.planned_program(node.inputs[0])
        margin = prog.margins.get(prog.leaves[0], (0,) * ndim) if prog.leaves else (0,) * ndim
        margin = tuple(m + h for m, h in zip(margin, halo, strict=True))
        voxels = math.prod(b + 2 * m for b, m in zip(block, margin, strict=True))
        # Input, one float64 working copy and its output per fused step, plus labels.
        est = voxels * (np.dtype(source.dtype).itemsize + 8 * (1 + len(prog.steps)) + 4)
        max_bytes = max(max_bytes, est)
        lines.append(
            f"  {name:<20} {node.op.name:<22} {node.kind:<13} inputs {','.join(node.inputs):<12}"
            f" halo {halo}  fused halo {margin}  ~{est / 2**20:.0f} MiB/task"
        )
    lines.append(f"memory per task (largest): ~{max_bytes / 2**20:.0f} MiB")
    return "\n".join(lines)
