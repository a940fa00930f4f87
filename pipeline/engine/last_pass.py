"""The last passes of the engine (a mixin of :class:`Engine`): writing every block, and
parallel calls after it."""

from __future__ import annotations

import operator
from collections.abc import Callable

import numpy as np

from pipeline.engine.blocks import assemble
from pipeline.engine.reduce import tree_reduce


class LastPass:
    """Passes that consume the resolved pipeline: per-block writes and parallel calls."""

    def block_keys(self, target: str) -> dict[tuple[int, ...], tuple]:
        """Keys computing ``target`` on every block (in the current graph)."""
        return {i: self.program_key(target, i) for i in self.plan.indices()}

    def for_each_block(
        self,
        target: str,
        func: Callable,
        label: str,
        *args,
        also: tuple[str, ...] = (),
        merge: Callable | None = None,
    ) -> list | tuple[list, object]:
        """The last pass: ``func(box, block, *args, *also_blocks)`` on every block.

        ``also`` names further steps whose blocks ``func`` gets too. Runs after
        :meth:`resolve`; kept blocks this pass does not read are deleted while it runs.
        Returns the results in raster order of the blocks. With ``merge``, ``func``
        returns a pair: the first items are returned per block, the second are merged in
        a tree by ``merge(list)`` and returned once, as ``(firsts, merged)``.
        """
        self.reset_graph()
        keys = {}
        for i, k in self.block_keys(target).items():
            key = ("each-" + target, *i)
            extra = [self.program_key(name, i) for name in also]
            self._dsk[key] = (func, self.plan.box(i), k, *args, *extra)
            keys[i] = key
        self.checkpoint(keys, label)
        keys = list(keys.values())
        self.drop_unread()
        if merge is None:
            return self.compute(keys, label)
        firsts, seconds = [], []
        for key in keys:
            firsts.append(("first", *key))
            seconds.append(("second", *key))
            self._dsk[firsts[-1]] = (operator.getitem, key, 0)
            self._dsk[seconds[-1]] = (operator.getitem, key, 1)
        total = tree_reduce(self._dsk, seconds, "merge-" + target, merge, many=True)
        *out, merged = self.compute([*firsts, total], label)
        return out, merged

    def map_calls(self, calls: list[tuple], label: str) -> list:
        """Each ``(func, *args)`` of ``calls`` as a parallel task; the results in order."""
        self.reset_graph()
        keys = []
        for i, call in enumerate(calls):
            keys.append(("call-" + label, i))
            self._dsk[keys[-1]] = call
        return self.compute(keys, label) if keys else []

    def to_numpy(self, target: str) -> np.ndarray:
        """Compute ``target`` on the whole volume in memory (tests, small images)."""
        try:
            self.resolve([target])
            self.reset_graph()
            keys = self.block_keys(target)
            blocks = self.compute(list(keys.values()), f"compute {target}")
        finally:
            self.close()
        pieces = [(self.plan.box(i), b) for i, b in zip(keys, blocks, strict=True)]
        return assemble(pieces, tuple((0, n) for n in self.plan.shape))
