"""The labelling pass: local labels per block, touching pairs, stitched relabel tables.

Each block labels itself and sends a small summary (first voxel, size, faces, border,
box per local label); each block's touching pairs with its lower neighbours come from
their faces. The client unites the pairs and numbers the objects in raster order of
their first voxels (see :mod:`pipeline.engine.stitch`); each block then gets its slice
of the relabel table. The local labels are kept in scratch for the passes after it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.engine import stitch, tasks
from pipeline.engine.blocks import BlockPlan
from pipeline.errors import DataError
from pipeline.graph.dag import Node

if TYPE_CHECKING:
    from pipeline.engine.engine import Engine


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


def label_pass(engine: Engine, node: Node, local_of: str) -> Labelling:
    """Label ``node`` block by block, stitch, and record its relabel tables."""
    conn = engine.connectivity(node)
    planar = node.params.in_planes()
    in_dtype = engine.dtype_of(node.inputs[0])
    if in_dtype.kind == "f" and engine.kind(node).prepare(engine, node) is None:
        raise DataError(
            f"step {node.name!r}: labelling needs a mask or an integer image, "
            f"step {node.inputs[0]!r} gives {in_dtype}"
        )
    graph = engine.new_pass(f"label {node.name}")
    keys = graph.keys
    indices = engine.plan.indices()
    summary = {}
    for i in indices:
        sk = ("summary-" + node.name, *i)
        graph.dsk[sk] = (
            tasks.summarise,
            keys.inlined(keys.local(node.name, i, keep=True)),
            engine.plan.box(i),
            engine.plan.shape,
        )
        summary[i] = sk
    count_keys, pair_keys = [], []
    for i in indices:
        ck = ("counts-" + node.name, *i)
        graph.dsk[ck] = (tasks.counts_part, summary[i])
        count_keys.append(ck)
        nbs = lower_neighbours(engine.plan, i, conn, planar)
        if nbs:
            pk = ("pairs-" + node.name, *i)
            graph.dsk[pk] = (
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
    graph.checkpoint(summary)
    out = graph.compute(count_keys + pair_keys)
    return stitched(engine, node.name, conn, local_of, out, len(count_keys))


def stitched(engine: Engine, name: str, conn: int, local_of: str, out: list, n_blocks: int):
    """Merge a pass's block summaries and touching pairs into ``name``'s Labelling.

    ``out`` holds each block's counts part, then the pairs; the local labels the pass
    kept in scratch are read back by later passes.
    """
    engine.kept.local.add(name)
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
            for c in range(2 * ndim):  # column by column: numpy's fast path of ufunc.at
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
