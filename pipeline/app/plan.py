"""What a run would do, without computing: the input, its blocks, the resize, and per
step its halo, the halo of its fused inputs and an estimate of memory per task."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.app.prepared import input_items, item_config, prepare, single_config
from pipeline.app.run import Config, load
from pipeline.engine.engine import Engine
from pipeline.errors import DataError


@dataclass(frozen=True)
class PlannedStep:
    """One step of a plan."""

    name: str
    op: str
    kind: str
    inputs: tuple[str, ...]
    halo: tuple[int, ...]
    fused_halo: tuple[int, ...]  # its own halo on top of the steps fused into its task
    task_bytes: int  # estimated memory of one of its tasks


@dataclass(frozen=True)
class RunPlan:
    """What a run of a config would do (for a batch: its first input)."""

    input: str
    axes: str
    shape: tuple[int, ...]
    dtype: str
    spacing: tuple[float, ...]
    unit: str | None
    block: tuple[int, ...]
    grid: tuple[int, ...]
    blocks: int
    steps: tuple[PlannedStep, ...]
    resize: str | None = None  # the first step's resize, in words
    batch: tuple[int, str] | None = None  # inputs of the batch, the first one's name

    @property
    def task_bytes(self) -> int:
        """The largest estimate of memory per task."""
        return max((s.task_bytes for s in self.steps), default=0)


def plan(config: Config, overrides: list[str] | tuple[str, ...] = ()) -> RunPlan:
    """The plan of a run of ``config``; opens the input (metadata only)."""
    cfg = load(config, overrides)
    inputs = input_items(cfg)
    batch = None
    if inputs:  # a batch: the plan of its first input
        batch = (len(inputs), inputs[0].name)
        cfg = item_config(cfg, inputs[0])
    else:
        cfg = single_config(cfg)
    prepared = prepare(cfg)
    source, plan_, dag = prepared.source, prepared.plan, prepared.dag
    resize = None
    if prepared.resize is not None:
        r, step = prepared.resize, next(n for n in cfg.dag.nodes.values() if n.kind == "resample")
        resize = (
            f"step {step.name!r}: {prepared.opened.shape} -> {source.shape}, order {r.order}, "
            f"anti-aliasing sigma {r.sigma}"
        )
    ndim = len(plan_.shape)
    block = tuple(c[0] for c in plan_.chunks)
    engine = Engine(dag, source, plan_)
    steps = []
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
        steps.append(PlannedStep(name, node.op.name, node.kind, node.inputs, halo, margin, est))
    engine.close()
    return RunPlan(
        input=str(source.path),
        axes=source.axes,
        shape=tuple(source.shape),
        dtype=str(source.dtype),
        spacing=tuple(source.spacing),
        unit=source.unit,
        block=block,
        grid=tuple(plan_.grid),
        blocks=plan_.nblocks,
        steps=tuple(steps),
        resize=resize,
        batch=batch,
    )
