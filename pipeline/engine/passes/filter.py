"""Object filters decided on stitched objects, and pre-flight checks of a mask's objects.

A filter whose objects are an earlier step's labels decides on that labelling's
objects, with no pass of its own; otherwise its input is labelled (and stitched) first.
Each block's relabel table then maps local labels to kept, dropped or renumbered ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.engine import stitch
from pipeline.engine.passes.label import Labelling, label_pass
from pipeline.graph.dag import Node
from pipeline.ops.contract import ObjectTable
from pipeline.ops.labelling import LABEL, LabelParams

if TYPE_CHECKING:
    from pipeline.engine.engine import Engine


def filter_objects(engine: Engine, node: Node) -> None:
    """Decide per stitched object of ``node``'s input which to keep."""
    src = engine.dag.nodes[node.inputs[0]]
    if node.op.prepare is None and engine.kind(src).stitched and src.role == "labels":
        base = engine.labellings[src.name]  # objects are the input's labels
    else:
        base = label_pass(engine, node, node.name)
    objects = ObjectTable(base.sizes, base.border, base.peaks, base.bbox)
    decided = np.asarray(node.op.decide(node.params, objects))
    keep = decided.astype(bool)
    negate = node.op.negate
    mapping = np.zeros(len(base.sizes) + 1, dtype=np.int64)
    if decided.dtype != np.bool_:  # new ids, given per object
        mapping[1:] = decided
        dtype = np.uint32 if decided.max(initial=0) < 2**32 else np.uint64
    elif node.role == "mask":
        mapping[0] = negate
        mapping[1:] = keep ^ negate
        dtype = np.bool_
    elif node.params.renumbered():
        mapping[1:][keep] = np.arange(1, int(keep.sum()) + 1)
        dtype = np.uint32 if keep.sum() < 2**32 else np.uint64
    else:
        mapping[1:] = np.where(keep, np.arange(1, len(keep) + 1), 0)
        dtype = np.uint32 if len(keep) < 2**32 else np.uint64
    final = mapping[base.final] if len(base.final) else base.final
    luts = []
    for b in range(engine.plan.nblocks):
        lut = stitch.block_lut(final, base.offsets, b, dtype)
        lut[0] = mapping[0]
        luts.append(lut)
    count = int(keep.sum())
    if node.op.finish is not None and node.role == "labels" and src.name in engine.labellings:
        count = engine.labellings[src.name].count  # the input's objects, completed
    engine.labellings[node.name] = Labelling(
        base.connectivity,
        base.local_of,
        luts,
        count,
        base.sizes[keep],
        base.offsets,
        final,
        base.border[keep],
        None if base.peaks is None else base.peaks[keep],
        None if base.bbox is None else base.bbox[keep],
    )


def preflight(engine: Engine, node: Node) -> str | None:
    """Run ``node``'s pre-flight check on the objects of the mask it names, if any."""
    mask = node.op.preflight.mask(node.params)
    if mask is None:
        return None
    name = f"{node.name}:mask-objects"
    if name not in engine.dag.nodes:
        engine.dag.nodes[name] = Node(name, LABEL, LabelParams(connectivity=1), (mask,), "labels")
    lab = engine.labellings.get(name) or label_pass(engine, engine.dag.nodes[name], name)
    return node.op.preflight.check(
        node.params, ObjectTable(lab.sizes, lab.border, lab.peaks, lab.bbox)
    )
