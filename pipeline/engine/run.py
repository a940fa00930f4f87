"""Turn the DAG into Dask passes: statistics, labelling, stitching, final blocks."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import dask
import dask.local
import dask.threaded
import numpy as np

from pipeline.engine import tasks
from pipeline.engine.blocks import BlockPlan
from pipeline.engine.cluster import on_cluster, scheduler_get
from pipeline.engine.halos import HaloKeys
from pipeline.engine.journal import Journal
from pipeline.engine.labelling_pass import Labelling
from pipeline.engine.last_pass import LastPass
from pipeline.engine.passes import Passes
from pipeline.engine.program import Program, Step, make_program
from pipeline.engine.scratch import Scratch
from pipeline.engine.tiled_keys import TiledKeys
from pipeline.engine.waves import compute_in_waves
from pipeline.errors import BlockError, DataError
from pipeline.graph.dag import Dag, Node

PRODUCER_KINDS = ("source", "labelling", "object_filter", "tiled")


@dataclass
class Engine(Passes, LastPass, TiledKeys, HaloKeys):
    """Runs a DAG over a block plan with the current Dask scheduler."""

    dag: Dag
    source: object
    plan: BlockPlan
    scheduler: str | Callable | None = None  # a named local scheduler, or a get function
    num_workers: int | None = None
    wave_tasks: int = 1024  # tasks handed to the scheduler at a time (see engine.waves)
    progress: Callable | None = None
    resolved: dict[str, object] = field(default_factory=dict)  # global ops' arguments
    labellings: dict[str, Labelling] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    scratch: Scratch = field(default_factory=Scratch)
    journal: Journal | None = None  # block checkpoints (resume after a kill)
    _dsk: dict = field(default_factory=dict)
    _programs: dict = field(default_factory=dict)
    # Nodes whose blocks an earlier pass kept in scratch; those the current graph reads.
    _kept: set[str] = field(default_factory=set)
    _kept_local: set[str] = field(default_factory=set)  # labelling nodes' local labels
    # Global ops whose input's stand-in a reduction pass kept: its name in _kept, and
    # what it is (see pipeline.kernels.reduction.Stats.reduce).
    _stand_ins: dict[str, tuple[str, object]] = field(default_factory=dict)
    _loaded: set[str] = field(default_factory=set)
    # Halo file slots of the current graph: the name and margin each holds slabs of.
    _halo_slots: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    _halo_reads: dict[tuple, int] = field(default_factory=dict)  # tasks reading each halo key
    _halo_keys: dict[tuple, tuple | str] = field(default_factory=dict)  # each, stored once
    _kept_halos: set[str] = field(default_factory=set)  # halo slots kept for later passes
    _halos_read: set[str] = field(default_factory=set)  # kept ones the current graph reads
    _passes: dict[str, int] = field(default_factory=dict)  # reduction passes per global op
    _checked: set[str] = field(default_factory=set)  # steps whose pre-flight check ran
    _overlaps: dict[str, tuple[int, ...]] = field(default_factory=dict)  # tiled ops' halos
    warnings: list[str] = field(default_factory=list)

    @property
    def ndim(self) -> int:
        return len(self.plan.shape)

    @property
    def thresholds(self) -> dict[str, float | list[float]]:
        """Resolved threshold values by step (a list for multi-class thresholds)."""
        out = {}
        for name, value in self.resolved.items():
            if self.dag.nodes[name].op.name == "threshold":
                out[name] = np.asarray(value).tolist()
        return out

    # ---- graph construction -------------------------------------------------
    def _step_of(self, name: str) -> Step | None:
        if name in self._kept:
            return None
        return self._from_stand_in(name) or self._op_step(name)

    def _from_stand_in(self, name: str) -> Step | None:
        """Global op ``name`` computed from its input's kept stand-in, where its resolved
        argument allows (a threshold at a bin centre, from the histogram bin codes)."""
        kept = self._stand_ins.get(name)
        if kept is None or kept[0] not in self._kept or name not in self.resolved:
            return None
        found = kept[1].decoder(self.resolved[name])
        if found is None:
            return None
        func, arg = found
        return Step(name, func, arg, (kept[0],), (0,) * self.ndim)

    def _op_step(self, name: str) -> Step | None:
        node = self.dag.nodes[name]
        if node.kind in PRODUCER_KINDS:
            return None
        arg = self.resolved[name] if node.kind == "global" else node.params
        halo = node.halo(self.ndim)
        return Step(name, node.op.func, arg, node.inputs, halo, node.op.needs_box, node.op.trims)

    def _step_of_static(self, name: str) -> Step | None:
        # For planning: global ops not resolved yet get a stand-in argument.
        node = self.dag.nodes[name]
        if node.kind == "global" and name not in self.resolved:
            arg = node.op.placeholder(node.params)
            halo = node.halo(self.ndim)
            op = node.op
            return Step(name, op.func, arg, node.inputs, halo, op.needs_box, op.trims)
        return self._op_step(name)

    def program(self, target: str, out_margin: tuple[int, ...] | None = None) -> Program:
        """The fused program computing ``target`` (on blocks grown by ``out_margin``)."""
        key = (target, frozenset(self._kept), frozenset(self.resolved), out_margin)
        prog = self._programs.get(key)
        if prog is None:
            prog = make_program(target, self._step_of, self.ndim, out_margin)
            self._programs[key] = prog
        return prog

    def producer_task(self, name: str, index) -> tuple:
        """The task (not yet a key) giving producer ``name`` on block ``index``."""
        box = self.plan.box(index)
        if name in self._kept:
            self._loaded.add(name)
            return (tasks.load_block, self.scratch.path(name, index))
        node = self.dag.nodes[name]
        if node.kind == "source":
            return (tasks.read_block, self.source, box)
        if node.kind == "tiled" and not getattr(node.params, "instances", False):
            return self._blend_task(node, index)
        lab = self.labellings[name]
        lut = lab.luts[self.plan.linear(index)]
        task = (tasks.relabel, self.local_key(lab.local_of, index), lut)
        if node.op.finish is not None and node.role == "labels":
            original = self._program_key(node.inputs[0], index, keep=False)
            return (tasks.filter_finish, task, original, node.op.finish, node.params)
        return task

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

    def grown_key(self, target: str, index, margin: tuple[int, ...]) -> tuple:
        """Key of the task computing ``target`` on block ``index`` grown by ``margin``."""
        key = ("grown-" + target, margin, *index)
        if key not in self._dsk:
            prog = self.program(target, margin)
            box = self.plan.box(index)
            self._dsk[key] = (
                tasks.program_block,
                prog,
                box,
                self.plan.shape,
                self._pieces(prog, index),
            )
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
            prepare = margin = None
            if node.op is not None and node.op.func is not None and node.kind == "object_filter":
                margin = node.halo(self.ndim) if node.op.halo is not None else None
                params = self.resolved.get(name, node.params)
                planar = bool(getattr(node.params, "planes", False))
                prepare = tasks.Prepare(node.op.func, params, node.op.peaks, margin, planar)
            keep_values = prepare is None and node.kind != "tiled" and self._role_of(src) != "mask"
            paths = (
                self.scratch.path("local-" + name, index),
                self.scratch.path("values-" + name, index),
            )
            if name in self._kept_local:
                self._loaded.add("local-" + name)
                self._dsk[key] = (tasks.load_local, paths, keep_values)
                return key
            prog = self.program(src, margin)
            args = (
                prog,
                self.plan.box(index),
                self.plan.shape,
                self._pieces(prog, index),
                self._connectivity(node),
                keep_values,
            )
            if keep:
                self._dsk[key] = (tasks.label_block_kept, *args, paths, prepare)
            else:
                self._dsk[key] = (tasks.label_block, *args, prepare)
        return key

    def _role_of(self, name: str) -> str:
        return self.dag.nodes[name].role

    def _connectivity(self, node: Node) -> int:
        conn = getattr(node.params, "connectivity", None) or self.ndim
        if conn > self.ndim:
            raise DataError(
                f"step {node.name!r}: connectivity {conn} needs at least {conn} axes, "
                f"the image has {self.ndim}"
            )
        return conn

    def attach_journal(self, journal: Journal | None) -> None:
        """Checkpoint into ``journal``. A resumed run keeps in scratch what the interrupted
        one kept (whatever its own budget), so every block an earlier pass recorded as
        finished has its kept blocks to read."""
        self.journal = journal
        if journal is not None:
            self.scratch.budget = journal.recorded("scratch_budget", self.scratch.budget)

    def checkpoint(self, blocks: dict[tuple, tuple], label: str) -> None:
        """Record (or, on a rerun, load) each block's result key of the pass being built."""
        if self.journal is not None:
            self.journal.wrap(self._dsk, blocks, label)

    def compute(self, keys: list, label: str):
        """Compute ``keys`` of the current graph with the configured scheduler."""
        t0 = time.perf_counter()
        get = scheduler_get(self.scheduler)
        # In this process a halo file is deleted as soon as the tasks reading it are done
        # (keeping the scratch of a pass small); elsewhere, with the pass.
        here = get is dask.threaded.get or get is dask.local.get_sync
        self.drop_unused_halos()
        for key, reads in self._halo_reads.items():
            if here and key in self._dsk and not self.halo_kept(key):
                self._dsk[key] = (*self._dsk[key][:-1], reads)
        # Each task runs guarded: an error names its pass and block.
        dsk = {
            k: (tasks.guarded, tasks.TaskName(k if isinstance(k, tuple) else (k,)), self.ndim, *t)
            if isinstance(t, tuple) and t and callable(t[0])
            else t
            for k, t in self._dsk.items()
        }
        # A pass goes to a Dask cluster whole: its scheduler keeps results on the workers,
        # where waves would send what one wave leaves the next through this process.
        if on_cluster(get):
            run = partial(get, dsk, keys)
        else:
            run = partial(compute_in_waves, get, dsk, keys, self.ndim, self.wave_tasks)
        try:
            if self.progress is not None:
                with self.progress(label):
                    out = run(num_workers=self.num_workers)
            else:
                out = run(num_workers=self.num_workers)
        except BlockError as exc:  # name the pass, not the task
            raise BlockError(label, exc.block, exc.error) from exc
        self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - t0
        # Halo slabs serve one pass only, unless kept for the next (see engine.halos).
        for slot in sorted(self._halo_slots.keys() - self._kept_halos):
            self.scratch.drop_later(slot)
        self._halo_slots.clear()
        self._halo_reads.clear()
        self._halo_keys.clear()
        return out

    def _is_producer(self, name: str) -> bool:
        # Produced by a task of its own (read, relabel, load from scratch), not a program.
        return self.dag.nodes[name].kind in PRODUCER_KINDS or name in self._kept

    def close(self, keep_scratch: bool = False) -> None:
        """Remove the scratch files (``keep_scratch``: keep them for a resumed run)."""
        if keep_scratch and self.journal is not None:
            self.scratch.wait()
        else:
            self.scratch.remove()
        self._kept.clear()
        self._kept_local.clear()
        self._stand_ins.clear()
        self._kept_halos.clear()

    def reset_graph(self) -> None:
        """Forget the tasks of the previous pass (keeps results held on the client)."""
        self._dsk = {}
        self._loaded = set()
        self._halo_reads = {}
        self._halo_keys = {}
        self._halos_read = set()

    def drop_unread(self) -> None:
        """Delete, in the background, the kept blocks the current graph does not read,
        and release the labellings' per-object tables.

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
        for lab in self.labellings.values():  # no filter or check runs after the last pass
            lab.release_object_tables()


@contextmanager
def tty_progress(label: str):
    """A Dask progress bar on stderr, headed by ``label``."""
    from dask.diagnostics import ProgressBar

    sys.stderr.write(f"{label}\n")
    with ProgressBar(out=sys.stderr):
        yield
