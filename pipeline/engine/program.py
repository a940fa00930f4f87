"""Fused per-block evaluation of a chain (or small DAG) of per-block steps.

A :class:`Program` computes one node on a box from the boxes of its *leaves*
(nodes whose blocks are produced by other tasks: the source, stitched labels).
Each node is evaluated on the box grown by the halos of everything downstream
of it, clipped to the volume; at the volume edge the op's own boundary mode
applies, exactly as on the whole volume. Halos add up along a chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.engine.blocks import Box, assemble, crop, grow


@dataclass(frozen=True)
class Step:
    """One node of a program: ``func(*arrays, arg)`` over its inputs."""

    name: str
    func: Callable
    arg: object
    inputs: tuple[str, ...]
    halo: tuple[int, ...]
    with_box: bool = False  # func also gets the box its inputs cover
    trims: bool = False  # func also gets the trim per axis and gives the trimmed result


@dataclass(frozen=True)
class Program:
    """How to compute ``target`` on a box (grown by ``margins[target]``) from the leaves."""

    target: str
    steps: tuple[Step, ...]
    margins: dict[str, tuple[int, ...]]
    leaves: tuple[str, ...]

    def out_box(self, box: Box, shape: tuple[int, ...]) -> Box:
        """Box of the program's result for block ``box``."""
        return grow(box, self.margins[self.target], shape)

    def leaf_box(self, leaf: str, box: Box, shape: tuple[int, ...]) -> Box:
        """Box of ``leaf`` needed to compute ``target`` on ``box``."""
        return grow(box, self.margins[leaf], shape)


def make_program(
    target: str,
    step_of: Callable[[str], Step | None],
    ndim: int,
    out_margin: tuple[int, ...] | None = None,
) -> Program:
    """Build the program of ``target``; ``step_of(name)`` is None for a leaf.

    With ``out_margin`` the program gives ``target`` on the block grown by it.
    """
    steps: list[Step] = []
    leaves: list[str] = []
    margins: dict[str, tuple[int, ...]] = {target: out_margin or (0,) * ndim}
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        step = step_of(name)
        if step is not None:
            for i in step.inputs:
                visit(i)
        order.append(name)

    visit(target)
    # Margins flow from the target back to the leaves (reverse topological order).
    for name in reversed(order):
        step = step_of(name)
        if step is None:
            leaves.append(name)
            continue
        need = tuple(m + h for m, h in zip(margins[name], step.halo, strict=True))
        for i in step.inputs:
            prev = margins.get(i, (0,) * ndim)
            margins[i] = tuple(max(a, b) for a, b in zip(prev, need, strict=True))
    for name in order:
        step = step_of(name)
        if step is not None:
            steps.append(step)
    return Program(target, tuple(steps), margins, tuple(leaves))


def run_program(
    program: Program,
    box: Box,
    shape: tuple[int, ...],
    pieces: dict[str, list[tuple[Box, np.ndarray]]],
) -> np.ndarray:
    """Evaluate ``program`` on ``box`` given the leaf blocks that cover it."""
    values: dict[str, tuple[Box, np.ndarray]] = {}
    for leaf in program.leaves:
        want = program.leaf_box(leaf, box, shape)
        values[leaf] = (want, assemble(pieces[leaf], want))
    for step in program.steps:
        out_box = grow(box, program.margins[step.name], shape)
        in_box = grow(out_box, step.halo, shape)
        args = [crop(values[i][1], values[i][0], in_box) for i in step.inputs]
        extra = [in_box] if step.with_box else []
        if step.trims:  # the op gives the result on out_box itself
            trim = tuple((o[0] - i[0], i[1] - o[1]) for i, o in zip(in_box, out_box, strict=True))
            values[step.name] = (out_box, step.func(*args, step.arg, *extra, trim))
            continue
        result = step.func(*args, step.arg, *extra)
        values[step.name] = (out_box, crop(result, in_box, out_box))
    have, arr = values[program.target]
    return np.ascontiguousarray(crop(arr, have, program.out_box(box, shape)))
