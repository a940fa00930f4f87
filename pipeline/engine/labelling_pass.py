"""The labelling pass: local labels per block, touching pairs, stitched relabel tables."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from pipeline.engine import stitch, tasks
from pipeline.engine.blocks import BlockPlan, grow
from pipeline.errors import DataError
from pipeline.graph.dag import Node
from pipeline.ops.registry import ObjectTable


@dataclass
class Labelling:
    """The stitched result of a labelling node."""

    connectivity: int
    local_of: str  # node whose local labels this node relabels
    luts: list[np.ndarray]
    count: int
    sizes: np.ndarray
    offsets: np.ndarray  # start of each block's local labels in the list of all
    # The rest serve the filters and checks of later steps (None once released).
    final: np.ndarray | None  # object id of every local label
    border: np.ndarray | None  # per object: touches the volume border
    peaks: np.ndarray | None = None  # per object: largest input value, when asked for
    bbox: np.ndarray | None = None  # per object: start per axis, then stop per axis

    def release_object_tables(self) -> None:
        """Drop what only filters and checks of later steps read (the relabel tables,
        count and sizes stay): the final pass, once built, needs no more of it, and at
        10⁶ objects it is tens of MiB."""
        self.final = self.border = self.peaks = self.bbox = None


def resolve_labelling(engine, node: Node, local_of: str) -> Labelling:
    """Label ``node`` block by block, stitch, and record its relabel tables."""
    conn = engine._connectivity(node)
    planar = bool(getattr(node.params, "planes", False))
    in_dtype = engine._dtype_probe(node.inputs[0])
    if in_dtype.kind == "f" and node.op.func is None:
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
            engine.inlined(engine.local_key(node.name, i, keep=True)),
            engine.plan.box(i),
            engine.plan.shape,
        )
        summary[i] = sk
    count_keys, pair_keys = [], []
    for i in indices:
        ck = ("counts-" + node.name, *i)
        engine._dsk[ck] = (tasks.counts_part, summary[i])
        count_keys.append(ck)
        nbs = lower_neighbours(engine.plan, i, conn, planar)
        if nbs:
            pk = ("pairs-" + node.name, *i)
            engine._dsk[pk] = (
                tasks.pairs,
                engine.plan,
                i,
                conn,
                planar,
                summary[i],
                nbs,
                *[summary[n] for n in nbs],
            )
            pair_keys.append(pk)
    engine.checkpoint(summary, f"label {node.name}")
    out = engine.compute(count_keys + pair_keys, f"label {node.name}")
    return _stitched(engine, node.name, conn, local_of, out, len(count_keys))


def _stitched(engine, name: str, conn: int, local_of: str, out: list, n_blocks: int):
    """Merge a pass's block summaries and touching pairs into ``name``'s Labelling.

    ``out`` holds each block's counts part, then the pairs; the local labels the pass
    kept in scratch are read back by later passes.
    """
    engine._kept_local.add(name)
    engine.reset_graph()
    parts, pair_list = out[:n_blocks], out[n_blocks:]
    offsets, final, sizes, _ = stitch.resolve(
        engine.plan,
        [p[0] for p in parts],
        [p[1] for p in parts],
        [p[2] for p in parts],
        list(pair_list),
    )
    dtype = np.uint32 if len(sizes) < 2**32 else np.uint64
    luts = [stitch.block_lut(final, offsets, b, dtype) for b in range(engine.plan.nblocks)]
    border = _per_object(final, len(sizes), [p[3] for p in parts], np.logical_or, False)
    peaks = None
    if parts and parts[0][4] is not None:
        low = _lowest(parts[0][4].dtype)
        peaks = _per_object(final, len(sizes), [p[4] for p in parts], np.maximum, low)
    bbox = _object_boxes(final, len(sizes), [p[5] for p in parts], engine.plan.shape)
    lab = Labelling(conn, local_of, luts, len(sizes), sizes, offsets, final, border, peaks, bbox)
    engine.labellings[name] = lab
    return lab


def _object_boxes(final: np.ndarray, n: int, parts: list, shape: tuple[int, ...]) -> np.ndarray:
    """Bounding boxes (n, 2·ndim) of objects 1..n from their local labels' boxes (per
    block an array or :class:`~pipeline.engine.stitch.BlockBoxes`); int32 where the
    volume's sides allow (the client keeps the boxes for the whole run), else int64."""
    ndim = len(shape)
    dtype = np.int32 if max(shape, default=0) < 2**31 else np.int64
    box = np.empty((n + 1, 2 * ndim), dtype=dtype)
    box[:, :ndim] = np.iinfo(dtype).max
    box[:, ndim:] = np.iinfo(dtype).min
    at = 0
    for part in parts:  # one block at a time: no copy of every block's boxes at once
        if len(part):
            own = part.boxes(dtype) if isinstance(part, stitch.BlockBoxes) else part
            ids = final[at : at + len(part)].astype(np.intp)
            for c in range(2 * ndim):  # column by column: numpy's fast path (3× here)
                (np.minimum if c < ndim else np.maximum).at(box[:, c], ids, own[:, c])
        at += len(part)
    return box[1:]


def _lowest(dtype: np.dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _per_object(final: np.ndarray, n: int, parts: list, ufunc, start) -> np.ndarray:
    """Reduce per-local-label values to objects 1..n with ``ufunc`` (e.g. max, or), in
    the values' own dtype.

    ``parts`` holds each block's values, in the order of ``final``; they are reduced
    block by block (not concatenated: with 10⁶ objects that copy is tens of MiB).
    """
    sized = [p for p in parts if p.size]
    dtype = np.result_type(*sized) if sized else np.asarray(start).dtype
    tail = parts[0].shape[1:] if parts else ()
    out = np.full((n + 1, *tail), start, dtype=dtype)
    at = 0
    for part in parts:
        if len(part):
            ufunc.at(out, final[at : at + len(part)].astype(np.intp), part)
        at += len(part)
    return out[1:]


def resolve_filter(engine, node: Node) -> None:
    """Decide per stitched object of ``node``'s input which to keep."""
    src = engine.dag.nodes[node.inputs[0]]
    if node.op.func is None and src.kind in ("labelling", "object_filter") and src.role == "labels":
        base = engine.labellings[src.name]  # objects are the input's labels
    else:
        base = resolve_labelling(engine, node, node.name)
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
    elif getattr(node.params, "renumber", False):
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


def lower_neighbours(
    plan: BlockPlan, index, conn: int, planar: bool = False
) -> list[tuple[int, ...]]:
    """Blocks whose last slabs touch the first slabs of ``index`` (``planar``: in plane)."""
    out = set()
    ndim = len(index)
    for a in range(ndim):
        if index[a] == 0 or (planar and a == 0):
            continue
        for shift in itertools.product((-1, 0, 1), repeat=ndim - 1):
            if conn == 1 and any(shift):
                continue
            if planar and shift[0]:
                continue
            nb = list(index)
            nb[a] -= 1
            perp = [ax for ax in range(ndim) if ax != a]
            for s, ax in zip(shift, perp, strict=True):
                nb[ax] += s
            if all(0 <= v < g for v, g in zip(nb, plan.grid, strict=True)):
                out.add(tuple(nb))
    return sorted(out)


def preflight(engine, node: Node) -> str | None:
    """Run ``node``'s pre-flight check on the objects of the mask it names, if any."""
    param, check = node.op.preflight
    mask = getattr(node.params, param, None)
    if mask is None or not getattr(node.params, "check_halo", True):
        return None
    from pipeline.ops.labelling import LabelParams
    from pipeline.ops.registry import get_op

    name = f"{node.name}:{param}-objects"
    if name not in engine.dag.nodes:
        engine.dag.nodes[name] = Node(
            name, get_op("label"), LabelParams(connectivity=1), (mask,), "labels"
        )
    lab = engine.labellings.get(name) or resolve_labelling(engine, engine.dag.nodes[name], name)
    return check(node.params, ObjectTable(lab.sizes, lab.border, lab.peaks, lab.bbox))


def resolve_instances(engine, node: Node) -> Labelling:
    """Stitch a tiled node's instance tiles: match ids by IoU in the tiles' overlaps."""
    from pipeline.engine import instances

    engine.reset_graph()
    plan = engine.plan
    local, ids, summary = {}, {}, {}
    for i in plan.indices():
        lk = ("local-" + node.name, *i)
        path = engine.scratch.path("local-" + node.name, i)
        box = plan.box(i)
        engine._dsk[lk] = (
            instances.local_block,
            engine.tile_key(node, i),
            engine.tile_box(node, i),
            box,
            path,
        )
        ids[i] = ("ids-" + node.name, *i)
        engine._dsk[ids[i]] = (instances.ids_of, lk)
        summary[i] = ("summary-" + node.name, *i)
        engine._dsk[summary[i]] = (instances.summarise_local, lk, box, plan.shape)
        local[i] = lk
    count_keys, pair_keys = [], []
    for i in plan.indices():
        ck = ("counts-" + node.name, *i)
        engine._dsk[ck] = (tasks.counts_part, summary[i])
        count_keys.append(ck)
        ones = (1,) * engine.ndim
        for j in plan.blocks_in(grow(plan.box(i), ones, plan.shape)):
            if plan.linear(j) >= plan.linear(i):
                continue
            pk = ("pairs-" + node.name, *i, *j)
            engine._dsk[pk] = (
                instances.matched_pairs,
                engine.tile_key(node, j), engine.tile_box(node, j), ids[j], plan.linear(j),
                engine.tile_key(node, i), engine.tile_box(node, i), ids[i], plan.linear(i),
                node.params.min_iou,
            )  # fmt: skip
            pair_keys.append(pk)
    engine.checkpoint(summary, f"match {node.name}")
    out = engine.compute(count_keys + pair_keys, f"match {node.name}")
    return _stitched(engine, node.name, engine.ndim, node.name, out, len(count_keys))
