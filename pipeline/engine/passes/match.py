"""The matching pass of instance tiles: ids of neighbouring tiles that cover the same
object (IoU in their overlap) join, and objects are numbered as ``label`` numbers them
(see :mod:`pipeline.engine.instances`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.engine import instances, tasks
from pipeline.engine.blocks import grow
from pipeline.engine.passes.label import Labelling, stitched
from pipeline.graph.dag import Node

if TYPE_CHECKING:
    from pipeline.engine.engine import Engine


def match_pass(engine: Engine, node: Node) -> Labelling:
    """Stitch a tiled node's instance tiles: match ids by IoU in the tiles' overlaps."""
    graph = engine.new_pass(f"match {node.name}")
    keys = graph.keys
    plan = engine.plan
    local, ids, summary = {}, {}, {}
    for i in plan.indices():
        lk = ("local-" + node.name, *i)
        path = engine.scratch.path("local-" + node.name, i)
        box = plan.box(i)
        graph.dsk[lk] = (
            instances.local_block,
            keys.tile(node, i),
            keys.tile_box(node, i),
            box,
            path,
        )
        ids[i] = ("ids-" + node.name, *i)
        graph.dsk[ids[i]] = (instances.ids_of, lk)
        summary[i] = ("summary-" + node.name, *i)
        graph.dsk[summary[i]] = (instances.summarise_local, lk, box, plan.shape)
        local[i] = lk
    count_keys, pair_keys = [], []
    for i in plan.indices():
        ck = ("counts-" + node.name, *i)
        graph.dsk[ck] = (tasks.counts_part, summary[i])
        count_keys.append(ck)
        ones = (1,) * engine.ndim
        for j in plan.blocks_in(grow(plan.box(i), ones, plan.shape)):
            if plan.linear(j) >= plan.linear(i):
                continue
            pk = ("pairs-" + node.name, *i, *j)
            graph.dsk[pk] = (
                instances.matched_pairs,
                keys.tile(node, j), keys.tile_box(node, j), ids[j], plan.linear(j),
                keys.tile(node, i), keys.tile_box(node, i), ids[i], plan.linear(i),
                node.params.min_iou,
            )  # fmt: skip
            pair_keys.append(pk)
    graph.checkpoint(summary)
    out = graph.compute(count_keys + pair_keys)
    return stitched(engine, node.name, engine.ndim, node.name, out, len(count_keys))
