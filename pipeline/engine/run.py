"""Turn the DAG into Dask passes: statistics, labelling, stitching, final blocks."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import dask
import dask.threaded
import numpy as np

from pipeline.engine import stitch, tasks
from pipeline.engine.blocks import BlockPlan
from pipeline.engine.program import Program, Step, make_program
from pipeline.engine.scratch import Scratch
from pipeline.errors import DataError
from pipeline.graph.dag import Dag, Node
from pipeline.ops import threshold as th

PRODUCER_KINDS = ("source", "labelling", "object_filter")


@dataclass
class Labelling:
    """The stitched result of a labelling node."""

    connectivity: int
    local_of: str  # node whose local labels this node relabels
    luts: list[np.ndarray]
    count: int
    sizes: np.ndarray


@dataclass
class Engine:
    """Runs a DAG over a block plan with the current Dask scheduler."""

    dag: Dag
    source: object
    plan: BlockPlan
    scheduler: str | None = None
    num_workers: int | None = None
    progress: Callable | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    labellings: dict[str, Labelling] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    scratch: Scratch = field(default_factory=Scratch)
    _dsk: dict = field(default_factory=dict)
    _programs: dict = field(default_factory=dict)
    # Nodes whose blocks an earlier pass kept in scratch; those the current graph reads.
    _kept: set[str] = field(default_factory=set)
    _kept_local: set[str] = field(default_factory=set)  # labelling nodes' local labels
    _loaded: set[str] = field(default_factory=set)
    _halo_slots: set[str] = field(default_factory=set)  # halo files of the current graph

    @property
    def ndim(self) -> int:
        return len(self.plan.shape)

    # ---- graph construction -------------------------------------------------
    def _step_of(self, name: str) -> Step | None:
        if name in self._kept:
            return None
        return self._op_step(name)

    def _op_step(self, name: str) -> Step | None:
        node = self.dag.nodes[name]
        if node.kind in PRODUCER_KINDS:
            return None
        if node.op.name == "threshold":
            value = node.params.value
            if value is None:
                value = self.thresholds[name]
            return Step(name, _threshold, value, node.inputs[0], (0,) * self.ndim)
        return Step(name, node.op.func, node.params, node.inputs[0], node.halo(self.ndim))

    def _step_of_static(self, name: str) -> Step | None:
        # For planning: thresholds whose value is not known yet count as pointwise.
        node = self.dag.nodes[name]
        if node.kind == "global":
            return Step(name, _threshold, 0.0, node.inputs[0], (0,) * self.ndim)
        return self._op_step(name)

    def program(self, target: str) -> Program:
        """The fused program computing ``target`` from its producers."""
        key = (target, frozenset(self._kept), frozenset(self.thresholds.items()))
        prog = self._programs.get(key)
        if prog is None:
            prog = self._programs[key] = make_program(target, self._step_of, self.ndim)
        return prog

    def _pieces(self, program: Program, index) -> list:
        """What a program task needs of each leaf: boxes and their data.

        The block's own data is computed inside the task (a read, a load from scratch,
        a relabel); parts of neighbouring blocks come from their halo tasks, which keep
        only thin slabs, so no whole block waits in memory for its neighbours.
        """
        box = self.plan.box(index)
        boxes, items = [], []
        for leaf in program.leaves:
            margin = program.margins[leaf]
            want = program.leaf_box(leaf, box, self.plan.shape)
            leaf_boxes, leaf_items = [], []
            for nb in self.plan.blocks_in(want):
                leaf_boxes.append(self.plan.box(nb))
                if nb == index:
                    leaf_items.append(self.producer_task(leaf, nb))
                else:
                    leaf_items.append(self._halo_key(leaf, margin, nb))
            boxes.append(leaf_boxes)
            items.append(leaf_items)
        # Keys and tasks go in plain lists so that Dask substitutes their results.
        return [boxes, items]

    def _halo_key(self, name: str, margin: tuple[int, ...], index) -> tuple:
        """Key of the slabs of block ``index`` of ``name`` that blocks within ``margin`` need."""
        key = ("halo-" + name, margin, *index)
        if key not in self._dsk:
            slot = f"halo-{name}-{'_'.join(map(str, margin))}"
            self._halo_slots.add(slot)
            self._dsk[key] = (
                tasks.halo_out,
                self.producer_task(name, index),
                self.plan,
                index,
                margin,
                self.scratch.path(slot, index),
            )
        return key

    def producer_task(self, name: str, index) -> tuple:
        """The task (not yet a key) giving producer ``name`` on block ``index``."""
        box = self.plan.box(index)
        node = self.dag.nodes[name]
        if name in self._kept:
            self._loaded.add(name)
            return (tasks.load_block, self.scratch.path(name, index))
        if node.kind == "source":
            return (tasks.read_block, self.source, box)
        lab = self.labellings[name]
        lut = lab.luts[self.plan.linear(index)]
        return (tasks.relabel, self.local_key(lab.local_of, index), lut)

    def producer_key(self, name: str, index) -> tuple:
        """Key of the task giving producer ``name`` on block ``index``."""
        key = ("out-" + name, *index)
        if key not in self._dsk:
            self._dsk[key] = self.producer_task(name, index)
        return key

    def program_key(self, target: str, index) -> tuple:
        """Key of the task computing ``target`` on block ``index``."""
        return self._program_key(target, index, keep=False)

    def _program_key(self, target: str, index, keep: bool) -> tuple:
        # keep: store each block in scratch, so that later passes read it back.
        if self._is_producer(target):
            return self.producer_key(target, index)
        key = ("blk-" + target, *index)
        if key not in self._dsk:
            prog = self.program(target)
            args = (prog, self.plan.box(index), self.plan.shape, self._pieces(prog, index))
            if keep:
                self._dsk[key] = (tasks.program_block_kept, *args, self.scratch.path(target, index))
            else:
                self._dsk[key] = (tasks.program_block, *args)
        return key

    def local_key(self, name: str, index, keep: bool = False) -> tuple:
        """Key of the locally labelled block of labelling node ``name``.

        With ``keep``, the task also stores the local labels in scratch; once a pass
        has done so, the key reads them back instead of labelling again.
        """
        key = ("local-" + name, *index)
        if key not in self._dsk:
            node = self.dag.nodes[name]
            src = node.inputs[0]
            keep_values = self._role_of(src) != "mask"
            paths = (
                self.scratch.path("local-" + name, index),
                self.scratch.path("values-" + name, index),
            )
            if name in self._kept_local:
                self._loaded.add("local-" + name)
                self._dsk[key] = (tasks.load_local, paths, keep_values)
                return key
            prog = self.program(src)
            args = (
                prog,
                self.plan.box(index),
                self.plan.shape,
                self._pieces(prog, index),
                self._connectivity(node),
                keep_values,
            )
            if keep:
                self._dsk[key] = (tasks.label_block_kept, *args, paths)
            else:
                self._dsk[key] = (tasks.label_block, *args)
        return key

    def _role_of(self, name: str) -> str:
        return self.dag.nodes[name].role

    def _connectivity(self, node: Node) -> int:
        conn = node.params.connectivity or self.ndim
        if conn > self.ndim:
            raise DataError(
                f"step {node.name!r}: connectivity {conn} needs at least {conn} axes, "
                f"the image has {self.ndim}"
            )
        return conn

    def compute(self, keys: list, label: str):
        """Compute ``keys`` of the current graph with the configured scheduler."""
        t0 = time.perf_counter()
        dsk = dict(self._dsk)
        # An active distributed Client wins; otherwise threads (our kernels release the GIL).
        get = dask.base.get_scheduler(scheduler=self.scheduler) or dask.threaded.get
        if self.progress is not None:
            with self.progress(label):
                out = get(dsk, keys, num_workers=self.num_workers)
        else:
            out = get(dsk, keys, num_workers=self.num_workers)
        self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - t0
        # Halo slabs serve one pass only.
        for slot in sorted(self._halo_slots):
            self.scratch.drop_later(slot)
        self._halo_slots.clear()
        return out

    def _is_producer(self, name: str) -> bool:
        # Produced by a task of its own (read, relabel, load from scratch), not a program.
        return self.dag.nodes[name].kind in PRODUCER_KINDS or name in self._kept

    def close(self) -> None:
        """Remove the scratch files; later passes compute everything again."""
        self.scratch.remove()
        self._kept.clear()
        self._kept_local.clear()

    def reset_graph(self) -> None:
        """Forget the tasks of the previous pass (keeps results held on the client)."""
        self._dsk = {}
        self._loaded = set()

    def drop_unread(self) -> None:
        """Delete, in the background, the kept blocks the current graph does not read.

        Call with the last pass built: what it does not read, nothing reads again.
        """
        for name in sorted(self._kept - self._loaded):
            self._kept.discard(name)
            self.scratch.drop_later(name)
        for name in sorted(self._kept_local):
            if "local-" + name not in self._loaded:
                self._kept_local.discard(name)
                self.scratch.drop_later("local-" + name)
                self.scratch.drop_later("values-" + name)

    # ---- passes -------------------------------------------------------------
    def resolve(self, targets: list[str]) -> None:
        """Run the statistics and labelling passes that ``targets`` need."""
        need: list[str] = []
        for t in targets:
            for n in self.dag.upstream(t):
                if n not in need:
                    need.append(n)
        for name in self.dag.nodes:
            if name not in need:
                continue
            node = self.dag.nodes[name]
            if node.kind == "global" and node.params.method is not None:
                self._resolve_threshold(node)
            elif node.kind == "labelling":
                self._resolve_labelling(node, node.name)
            elif node.kind == "object_filter":
                self._resolve_filter(node)

    def check(self, targets: list[str]) -> None:
        """Check dtypes and dimensions against the ops before any pass runs.

        Raises
        ------
        DataError
            An op that cannot take what its input step gives.
        """
        for t in targets:
            for name in self.dag.upstream(t):
                node = self.dag.nodes[name]
                if node.kind in ("labelling", "object_filter"):
                    self._connectivity(node)
                    dtype = self._dtype_probe(node.inputs[0])
                    if dtype.kind == "f":
                        raise DataError(
                            f"step {name!r}: labelling needs a mask or an integer image, "
                            f"step {node.inputs[0]!r} gives {dtype}"
                        )
                elif node.kind == "global" and self._dtype_probe(node.inputs[0]).kind == "b":
                    raise DataError(
                        f"step {name!r}: a threshold needs a grayscale image, got a mask"
                    )
                elif node.op is not None and node.op.halo is not None:
                    try:
                        node.halo(self.ndim)
                    except ValueError as exc:
                        raise DataError(f"step {name!r}: {exc}") from None

    def _resolve_threshold(self, node: Node) -> None:
        src = node.inputs[0]
        dtype = self._dtype_probe(src)
        integer = dtype.kind in "iub"
        if dtype.kind == "b":
            raise DataError(f"step {node.name!r}: Otsu needs a grayscale image, got a mask")
        # The first pass keeps the blocks of a computed input; later passes read them back.
        keep = not self._is_producer(src)
        self.reset_graph()
        if integer and dtype.itemsize <= 2:
            lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
        else:
            mm_keys = []
            for i in self.plan.indices():
                mk = ("minmax-" + node.name, *i)
                self._dsk[mk] = (tasks.minmax, self._program_key(src, i, keep))
                mm_keys.append(mk)
            parts = [p for p in self.compute(mm_keys, f"range {node.name}") if p is not None]
            lo = min(p[0] for p in parts)
            hi = max(p[1] for p in parts)
            if keep:
                self._kept.add(src)
            self.reset_graph()
        keys = [self._program_key(src, i, keep) for i in self.plan.indices()]
        hist_keys = []
        for i, k in zip(self.plan.indices(), keys, strict=True):
            hk = ("hist-" + node.name, *i)
            self._dsk[hk] = (tasks.histogram, k, lo, hi, node.params.nbins, integer)
            hist_keys.append(hk)
        total_key = _tree_sum(self._dsk, hist_keys, "hsum-" + node.name)
        total = self.compute([total_key], f"histogram {node.name}")[0]
        if keep:
            self._kept.add(src)
        self.reset_graph()
        if integer:
            nz = np.flatnonzero(total)
            vmin, vmax = lo + int(nz[0]), lo + int(nz[-1])
            counts = total[nz[0] : nz[-1] + 1]
            centers = np.arange(vmin, vmax + 1)
        else:
            vmin, vmax = lo, hi
            counts, centers = total, th.float_bin_centers(float(lo), float(hi), node.params.nbins)
        if vmin == vmax:
            value = float(vmin)  # skimage returns the single value of a flat image
        else:
            value = th.otsu_from_histogram(counts, centers)
        self.thresholds[node.name] = value

    def _dtype_probe(self, name: str) -> np.dtype:
        """Dtype of node ``name``, from computing it on a tiny box."""
        node = self.dag.nodes[name]
        if node.kind == "source":
            return np.dtype(self.source.dtype)
        if node.kind in ("labelling", "object_filter"):
            return np.dtype(np.uint32) if node.role == "labels" else np.dtype(bool)
        probe = np.zeros((1,) * self.ndim, dtype=self._dtype_probe(node.inputs[0]))
        step = self._step_of_static(name)
        return step.func(probe, step.arg).dtype if step.func is not _threshold else np.dtype(bool)

    def _resolve_labelling(self, node: Node, local_of: str) -> Labelling:
        conn = self._connectivity(node)
        in_dtype = self._dtype_probe(node.inputs[0])
        if in_dtype.kind == "f":
            raise DataError(
                f"step {node.name!r}: labelling needs a mask or an integer image, "
                f"step {node.inputs[0]!r} gives {in_dtype}"
            )
        self.reset_graph()
        indices = self.plan.indices()
        summary = {}
        for i in indices:
            sk = ("summary-" + node.name, *i)
            self._dsk[sk] = (
                tasks.summarise,
                self.local_key(node.name, i, keep=True),
                self.plan.box(i),
                self.plan.shape,
            )
            summary[i] = sk
        count_keys, pair_keys = [], []
        for i in indices:
            ck = ("counts-" + node.name, *i)
            self._dsk[ck] = (tasks.counts_part, summary[i])
            count_keys.append(ck)
            nbs = _lower_neighbours(self.plan, i, conn)
            if nbs:
                pk = ("pairs-" + node.name, *i)
                self._dsk[pk] = (
                    tasks.pairs,
                    self.plan,
                    i,
                    conn,
                    summary[i],
                    nbs,
                    *[summary[n] for n in nbs],
                )
                pair_keys.append(pk)
        out = self.compute(count_keys + pair_keys, f"label {node.name}")
        self._kept_local.add(node.name)
        self.reset_graph()
        parts, pair_list = out[: len(count_keys)], out[len(count_keys) :]
        offsets, final, sizes, _ = stitch.resolve(
            self.plan,
            [p[0] for p in parts],
            [p[1] for p in parts],
            [p[2] for p in parts],
            list(pair_list),
        )
        dtype = np.uint32 if len(sizes) < 2**32 else np.uint64
        luts = [stitch.block_lut(final, offsets, b, dtype) for b in range(self.plan.nblocks)]
        lab = Labelling(conn, local_of, luts, len(sizes), sizes)
        self.labellings[node.name] = lab
        # Block-local work keeps the offsets and the per-local-label ids.
        lab._offsets, lab._final = offsets, final  # type: ignore[attr-defined]
        return lab

    def _resolve_filter(self, node: Node) -> None:
        src = self.dag.nodes[node.inputs[0]]
        if src.kind == "labelling":
            base = self.labellings[src.name]
            local_of = base.local_of
        else:
            base = self._resolve_labelling(node, node.name)
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
        luts = [stitch.block_lut(new_final, offsets, b, dtype) for b in range(self.plan.nblocks)]
        lab = Labelling(base.connectivity, local_of, luts, int(keep.sum()), base.sizes[keep])
        lab._offsets, lab._final = offsets, new_final  # type: ignore[attr-defined]
        self.labellings[node.name] = lab

    # ---- final pass ---------------------------------------------------------
    def block_keys(self, target: str) -> dict[tuple[int, ...], tuple]:
        """Keys computing ``target`` on every block (in the current graph)."""
        return {i: self.program_key(target, i) for i in self.plan.indices()}

    def for_each_block(self, target: str, func: Callable, label: str, *args) -> list:
        """The last pass: ``func(box, block, *args)`` on every block of ``target``.

        Runs after :meth:`resolve`; kept blocks this pass does not read are deleted
        while it runs. Returns the results in raster order of the blocks.
        """
        self.reset_graph()
        keys = []
        for i, k in self.block_keys(target).items():
            key = ("each-" + target, *i)
            self._dsk[key] = (func, self.plan.box(i), k, *args)
            keys.append(key)
        self.drop_unread()
        return self.compute(keys, label)

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
        from pipeline.engine.blocks import assemble

        return assemble(pieces, tuple((0, n) for n in self.plan.shape))


@contextmanager
def tty_progress(label: str):
    """A Dask progress bar on stderr, headed by ``label``."""
    from dask.diagnostics import ProgressBar

    sys.stderr.write(f"{label}\n")
    with ProgressBar(out=sys.stderr):
        yield


def _threshold(block: np.ndarray, value: float) -> np.ndarray:
    return block > value


def _lower_neighbours(plan: BlockPlan, index, conn: int) -> list[tuple[int, ...]]:
    """Blocks whose last slabs touch the first slabs of ``index``."""
    import itertools

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


def _tree_sum(dsk: dict, keys: list, name: str, fan_in: int = 8) -> tuple:
    level = 0
    while len(keys) > 1:
        nxt = []
        for j in range(0, len(keys), fan_in):
            k = (name, level, j)
            dsk[k] = (tasks.add, *keys[j : j + fan_in])
            nxt.append(k)
        keys, level = nxt, level + 1
    return keys[0]
