"""Reduction passes: per-block partial results merged in a tree (global statistics)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from pipeline.engine import tasks
from pipeline.engine.blocks import grow
from pipeline.engine.kept import stand_in_slot
from pipeline.graph.dag import Node
from pipeline.kernels.reduction import StandIn

if TYPE_CHECKING:
    from pipeline.engine.engine import Engine


def reduce_pass(
    engine: Engine,
    owner: str,
    inputs: tuple[str, ...],
    func: Callable,
    combine: Callable | None,
    halo: tuple[int, ...] | None,
    label: str,
    stand_in: StandIn | None = None,
):
    """``combine`` of ``func(*blocks, box, core)`` over every block of ``inputs``.

    ``owner`` names the pass's tasks (the global op it serves). A computed input is kept
    in scratch by its first pass, when it fits the scratch budget; later passes read it
    (or compute it again). With ``stand_in`` (one input, no halo), a stand-in of each
    block is kept in its place when it fits (see
    :meth:`pipeline.kernels.reduction.Stats.reduce`).
    """
    graph = engine.new_pass(label)
    keys = graph.keys
    plan = engine.plan
    grown = halo is not None and any(halo)
    keep = {i: not grown and not keys.is_producer(i) and engine.fits_scratch(i) for i in inputs}
    slot = None
    if stand_in is not None and not grown and len(inputs) == 1:
        nbytes = int(np.prod(plan.shape)) * np.dtype(stand_in.dtype).itemsize
        engine.kept.make_room(nbytes)  # it spares more than kept halo files
        if engine.kept.reserve(stand_in_slot(owner), nbytes):
            slot = stand_in_slot(owner)
    n = engine.count_pass(owner)
    parts = {}
    for idx in plan.indices():
        core = plan.box(idx)
        if grown:
            in_keys = [keys.grown(i, idx, halo) for i in inputs]
            box = grow(core, halo, plan.shape)
        else:
            in_keys = [keys.program(i, idx, keep[i]) for i in inputs]
            box = core
        if len(set(in_keys)) == len(in_keys):
            in_keys = [keys.inlined(k) for k in in_keys]
        pk = (f"part-{owner}-{n}", *idx)
        if slot is None:
            graph.dsk[pk] = (tasks.partial_result, func, box, core, *in_keys)
        else:
            path = engine.kept.block_path(slot, idx)
            make = stand_in.with_stand_in
            graph.dsk[pk] = (tasks.partial_and_stand_in, make, box, core, path, *in_keys)
        parts[idx] = pk
    if any(not keep[i] and not keys.is_producer(i) for i in inputs):
        graph.keep_halos()  # a later pass computes those inputs again from them
    graph.checkpoint(parts)
    total = tree_reduce(graph.dsk, list(parts.values()), f"reduce-{owner}-{n}", combine)
    out = graph.compute([total])[0]
    engine.kept.blocks.update(i for i, k in keep.items() if k)
    if slot is not None:
        engine.kept.keep_stand_in(owner, slot, stand_in)
    return out


class InputStats:
    """The engine side of :class:`pipeline.kernels.reduction.Stats` for one global op.

    Each :meth:`reduce` is one pass over the blocks of the op's input; the first pass
    over a computed input keeps its blocks in scratch, so later passes read them back.
    """

    def __init__(self, engine: Engine, node: Node) -> None:
        self._engine = engine
        self._node = node
        self.dtype = np.dtype(engine.dtype_of(node.inputs[0]))
        self.dtypes = tuple(np.dtype(engine.dtype_of(i)) for i in node.inputs)
        self.shape = tuple(engine.plan.shape)
        self.colour = engine.has_samples(node.inputs[0])

    def reduce(
        self,
        func: Callable,
        combine: Callable | None = None,
        halo: tuple[int, ...] | None = None,
        name: str = "statistics",
        n_inputs: int = 1,
        stand_in: StandIn | None = None,
    ) -> object:
        """Merge ``func(*blocks, box, core)`` over all blocks.

        Parameters
        ----------
        func : callable
            Partial result of one block; gets the first ``n_inputs`` inputs of the op on
            ``box`` (the block grown by ``halo``), then ``box`` and the block's own box.
        combine : callable, optional
            Merges two partial results (default ``a + b``); None partials are skipped.
        halo : tuple of int, optional
            Voxels of context beyond each side of the block.
        name : str
            Names the pass in progress output and timings.
        n_inputs : int
            How many of the op's inputs ``func`` gets.
        stand_in : optional
            What the pass may keep of each block in place of the input; see
            :meth:`pipeline.kernels.reduction.Stats.reduce`.
        """
        node = self._node
        label = f"{name} {node.name}"
        inputs = node.inputs[:n_inputs]
        return reduce_pass(self._engine, node.name, inputs, func, combine, halo, label, stand_in)


def tree_reduce(
    dsk: dict,
    keys: list,
    name: str,
    combine: Callable | None,
    fan_in: int = 8,
    many: bool = False,
):
    """Add tasks merging ``keys`` ``fan_in`` at a time; the key of the result.

    ``combine(a, b)`` merges two partial results, or with ``many`` ``combine(list)``
    merges a list of them at once.
    """
    merge = tasks.merge_all if many else tasks.merge
    level = 0
    while len(keys) > 1:
        nxt = []
        for j in range(0, len(keys), fan_in):
            k = (name, level, j)
            dsk[k] = (merge, combine, *keys[j : j + fan_in])
            nxt.append(k)
        keys, level = nxt, level + 1
    if not keys:
        raise ValueError("nothing to reduce")
    if level == 0:  # a single block: still drop a None partial the same way
        k = (name, 0, 0)
        dsk[k] = (merge, combine, keys[0])
        return k
    return keys[0]
