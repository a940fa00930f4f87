"""Reduction passes of global ops: per-block partial results merged in a tree."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.engine import tasks


class InputStats:
    """The engine side of :class:`pipeline.kernels.reduction.Stats` for one global op.

    Each :meth:`reduce` is one pass over the blocks of the op's input; the first pass
    over a computed input keeps its blocks in scratch, so later passes read them back.
    """

    def __init__(self, engine, node) -> None:
        self._engine = engine
        self._node = node
        self.dtype = np.dtype(engine.dtype_of(node.inputs[0]))
        self.dtypes = tuple(np.dtype(engine.dtype_of(i)) for i in node.inputs)
        self.shape = tuple(engine.plan.shape)
        main = engine.dag.nodes[node.inputs[0]]
        self.colour = main.role == "color" or (
            main.kind == "source" and bool(getattr(engine.source, "color", False))
        )

    def reduce(
        self,
        func: Callable,
        combine: Callable | None = None,
        halo: tuple[int, ...] | None = None,
        name: str = "statistics",
        n_inputs: int = 1,
        stand_in=None,
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
        label = f"{name} {self._node.name}"
        engine = self._engine
        return engine.reduce(self._node, func, combine, halo, n_inputs, label, stand_in)


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
