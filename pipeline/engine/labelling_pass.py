"""The labelling pass: local labels per block, touching pairs, stitched relabel tables."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from pipeline.engine import stitch, tasks
from pipeline.engine.blocks import BlockPlan
from pipeline.errors import DataError
from pipeline.graph.dag import Node


@dataclass
class Labelling:
    """The stitched result of a labelling node."""

    connectivity: int
    local_of: str  # node whose local labels this node relabels
    luts: list[np.ndarray]
    count: int
    sizes: np.ndarray


def resolve_labelling(engine, node: Node, local_of: str) -> Labelling:
    """Label ``node`` block by block, stitch, and record its relabel tables."""
    conn = engine._connectivity(node)
    in_dtype = engine._dtype_probe(node.inputs[0])
    if in_dtype.kind == "f":
        raise DataError(
            f"step {node.name!r}: labelling needs a mask or an integer image, "
            f"step {node.inputs[0]!r} gives {in_dtype}"
        )
    engine.reset_graph()
    indices = engine.plan.indices()
    summary = {}
    for i in indices:
        sk = ("summary-" + node.name, *i)
        engine._dsk[sk] = (
            tasks.summarise,
            engine.local_key(node.name, i, keep=True),
            engine.plan.box(i),
            engine.plan.shape,
        )
        summary[i] = sk
    count_keys, pair_keys = [], []
    for i in indices:
        ck = ("counts-" + node.name, *i)
        engine._dsk[ck] = (tasks.counts_part, summary[i])
        count_keys.append(ck)
        nbs = lower_neighbours(engine.plan, i, conn)
        if nbs:
            pk = ("pairs-" + node.name, *i)
            engine._dsk[pk] = (
                tasks.pairs,
                engine.plan,
                i,
                conn,
                summary[i],
                nbs,
                *[summary[n] for n in nbs],
            )
            pair_keys.append(pk)
    out = engine.compute(count_keys + pair_keys, f"label {node.name}")
    engine._kept_local.add(node.name)
    engine.reset_graph()
    parts, pair_list = out[: len(count_keys)], out[len(count_keys) :]
    offsets, final, sizes, _ = stitch.resolve(
        engine.plan,
        [p[0] for p in parts],
        [p[1] for p in parts],
        [p[2] for p in parts],
        list(pair_list),
    )
    dtype = np.uint32 if len(sizes) < 2**32 else np.uint64
    luts = [stitch.block_lut(final, offsets, b, dtype) for b in range(engine.plan.nblocks)]
    lab = Labelling(conn, local_of, luts, len(sizes), sizes)
    engine.labellings[node.name] = lab
    # Block-local work keeps the offsets and the per-local-label ids.
    lab._offsets, lab._final = offsets, final  # type: ignore[attr-defined]
    return lab


def resolve_filter(engine, node: Node) -> None:
    """Decide per stitched object of ``node``'s input which to keep."""
    src = engine.dag.nodes[node.inputs[0]]
    if src.kind == "labelling":
        base = engine.labellings[src.name]
        local_of = base.local_of
    else:
        base = resolve_labelling(engine, node, node.name)
        local_of = node.name
    offsets, final = base._offsets, base._final  # type: ignore[attr-defined]
    keep = base.sizes >= node.params.min_size
    mapping = np.zeros(len(base.sizes) + 1, dtype=np.int64)
    if node.role == "mask":
        mapping[1:] = keep
        dtype = np.bool_
    elif node.params.renumber:
        mapping[1:][keep] = np.arange(1, int(keep.sum()) + 1)
        dtype = np.uint32 if keep.sum() < 2**32 else np.uint64
    else:
        mapping[1:] = np.where(keep, np.arange(1, len(keep) + 1), 0)
        dtype = np.uint32 if len(keep) < 2**32 else np.uint64
    new_final = mapping[final] if len(final) else final
    luts = [stitch.block_lut(new_final, offsets, b, dtype) for b in range(engine.plan.nblocks)]
    lab = Labelling(base.connectivity, local_of, luts, int(keep.sum()), base.sizes[keep])
    lab._offsets, lab._final = offsets, new_final  # type: ignore[attr-defined]
    engine.labellings[node.name] = lab


def lower_neighbours(plan: BlockPlan, index, conn: int) -> list[tuple[int, ...]]:
    """Blocks whose last slabs touch the first slabs of ``index``."""
    out = set()
    ndim = len(index)
    for a in range(ndim):
        if index[a] == 0:
            continue
        for shift in itertools.product((-1, 0, 1), repeat=ndim - 1):
            if conn == 1 and any(shift):
                continue
            nb = list(index)
            nb[a] -= 1
            perp = [ax for ax in range(ndim) if ax != a]
            for s, ax in zip(shift, perp, strict=True):
                nb[ax] += s
            if all(0 <= v < g for v, g in zip(nb, plan.grid, strict=True)):
                out.add(tuple(nb))
    return sorted(out)
