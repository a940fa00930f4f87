"""The last pass: a function on every block of the resolved pipeline (writing it), and
parallel calls after it."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

from pipeline.engine.passes.reduce import tree_reduce

if TYPE_CHECKING:
    from pipeline.engine.engine import Engine


def for_each_block(
    engine: Engine,
    target: str,
    func: Callable,
    label: str,
    *args,
    also: tuple[str, ...] = (),
    merge: Callable | None = None,
) -> list | tuple[list, object]:
    """``func(box, block, *args, *also_blocks)`` on every block of ``target``.

    ``also`` names further steps whose blocks ``func`` gets too. Kept blocks this pass
    does not read are deleted while it runs: it is the run's last. Returns the results in
    raster order of the blocks. With ``merge``, ``func`` returns a pair: the first items
    are returned per block, the second are merged in a tree by ``merge(list)`` and
    returned once, as ``(firsts, merged)``.
    """
    graph = engine.new_pass(label)
    keys = {}
    for i, k in graph.keys.blocks(target).items():
        key = ("each-" + target, *i)
        extra = [graph.keys.program(name, i) for name in also]
        graph.dsk[key] = (func, engine.plan.box(i), k, *args, *extra)
        keys[i] = key
    graph.checkpoint(keys)
    keys = list(keys.values())
    graph.last()
    if merge is None:
        return graph.compute(keys)
    firsts, seconds = [], []
    for key in keys:
        firsts.append(("first", *key))
        seconds.append(("second", *key))
        graph.dsk[firsts[-1]] = (operator.getitem, key, 0)
        graph.dsk[seconds[-1]] = (operator.getitem, key, 1)
    total = tree_reduce(graph.dsk, seconds, "merge-" + target, merge, many=True)
    *out, merged = graph.compute([*firsts, total])
    return out, merged


def map_calls(engine: Engine, calls: list[tuple], label: str) -> list:
    """Each ``(func, *args)`` of ``calls`` as a parallel task; the results in order."""
    graph = engine.new_pass(label)
    keys = []
    for i, call in enumerate(calls):
        keys.append(("call-" + label, i))
        graph.dsk[keys[-1]] = call
    return graph.compute(keys) if keys else []
