"""The engine: a DAG of steps run over a block plan, pass after pass.

:meth:`Engine.resolve` runs the passes the targets need, node by node in topological
order, each as its kind says (:mod:`pipeline.engine.kinds`): reduction passes for
global ops, labelling passes for labellings and object filters, a matching pass for
instance tiles. Each pass is a :class:`~pipeline.engine.pass_graph.PassGraph` of its
own, made here and dropped once computed. What the passes resolve stays on the engine
(thresholds, relabel tables, warnings, timings); what they keep in scratch for later
passes, in :attr:`Engine.kept`. A last pass (:meth:`Engine.for_each_block`) then writes
every block.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from pipeline.engine.allocator import limit_arenas
from pipeline.engine.blocks import BlockPlan, assemble
from pipeline.engine.journal import Journal
from pipeline.engine.kept import Kept
from pipeline.engine.kinds import Kind, kind_of
from pipeline.engine.pass_graph import PassGraph
from pipeline.engine.passes import each_block
from pipeline.engine.passes.label import Labelling
from pipeline.engine.passes.reduce import reduce_pass
from pipeline.engine.program import Program, Step, make_program
from pipeline.engine.scratch import Scratch
from pipeline.engine.tiles import TileGrid
from pipeline.errors import DataError
from pipeline.graph.dag import Dag, Node


class Engine:
    """Runs ``dag`` over the blocks of ``plan`` of ``source``.

    Parameters
    ----------
    dag : Dag
        The steps.
    source : Source
        The input image, read block by block.
    plan : BlockPlan
        How the volume is cut into blocks.
    scheduler : str or callable, optional
        A named local Dask scheduler (threads, sync, processes) or a get function.
    num_workers : int, optional
        Threads or processes of a local scheduler (default: cores).
    wave_tasks : int
        Tasks handed to a local scheduler at a time (see :mod:`pipeline.engine.waves`).
    progress : callable, optional
        ``progress(label)``: a context manager around each pass (a progress bar).
    scratch : Scratch, optional
        Where blocks kept between passes go (default: a temporary folder).
    journal : Journal, optional
        Block checkpoints, so that a rerun resumes after a kill.
    halo_exchange : {"scratch", "dask"}
        How a block's halo slabs reach its neighbours: through a scratch file, or as a
        Dask task result (moved between workers by Dask; see :func:`tasks.halo_out`).
    """

    def __init__(
        self,
        dag: Dag,
        source,
        plan: BlockPlan,
        scheduler: str | Callable | None = None,
        num_workers: int | None = None,
        wave_tasks: int = 1024,
        progress: Callable | None = None,
        scratch: Scratch | None = None,
        journal: Journal | None = None,
        halo_exchange: str = "scratch",
    ) -> None:
        limit_arenas()  # before the passes' threads allocate (see the allocator module)
        self.dag = dag
        self.source = source
        self.plan = plan
        # Where and how the tasks run.
        self.scheduler = scheduler
        self.num_workers = num_workers
        self.wave_tasks = wave_tasks
        self.progress = progress
        self.scratch = scratch if scratch is not None else Scratch()
        self.kept = Kept(self.scratch)
        self.journal = journal
        self.halo_exchange = halo_exchange
        # What the passes resolved.
        self.resolved: dict[str, object] = {}  # global ops' arguments
        self.labellings: dict[str, Labelling] = {}  # stitched relabel tables
        self.warnings: list[str] = []
        self.timings: dict[str, float] = {}  # seconds per pass label
        self.checked: set[str] = set()  # steps whose pre-flight check ran
        self._passes: dict[str, int] = {}  # reduction passes so far, per global op
        self._programs: dict[tuple, Program] = {}
        self._overlaps: dict[str, tuple[int, ...]] = {}
        self._tile_grids: dict[str, TileGrid | None] = {}

    @property
    def ndim(self) -> int:
        """Spatial axes of the volume."""
        return len(self.plan.shape)

    @property
    def thresholds(self) -> dict[str, float | list[float]]:
        """Resolved threshold values by step (a list for multi-class thresholds)."""
        out = {}
        for name, value in self.resolved.items():
            if self.dag.nodes[name].op.name == "threshold":
                out[name] = np.asarray(value).tolist()
        return out

    def kind(self, node: Node) -> Kind:
        """What the engine does with ``node`` (see :mod:`pipeline.engine.kinds`)."""
        return kind_of(node)

    # ---- passes --------------------------------------------------------------------
    def new_pass(self, label: str) -> PassGraph:
        """An empty graph for a pass named ``label``."""
        return PassGraph(self, label)

    def count_pass(self, owner: str) -> int:
        """The number of this reduction pass of ``owner`` (1, 2, ...)."""
        self._passes[owner] = self._passes.get(owner, 0) + 1
        return self._passes[owner]

    def check(self, targets: list[str]) -> None:
        """Check dtypes, dimensions and halos against the ops before any pass runs.

        Raises
        ------
        DataError
            An op that cannot take what its input step gives.
        """
        for t in targets:
            for name in self.dag.upstream(t):
                node = self.dag.nodes[name]
                self.kind(node).check(self, node)

    def resolve(self, targets: list[str]) -> None:
        """Run the statistics, labelling and matching passes that ``targets`` need."""
        need: set[str] = set()
        for t in targets:
            need.update(self.dag.upstream(t))
        for name in list(self.dag.nodes):
            if name in need:
                node = self.dag.nodes[name]
                self.kind(node).resolve(self, node)

    def reduce_over(self, inputs: tuple[str, ...], func: Callable, combine: Callable, label: str):
        """``combine`` of ``func(*blocks, box, core)`` over every block of ``inputs`` (one
        reduction pass, e.g. the input's range)."""
        return reduce_pass(self, label.replace(" ", "-"), inputs, func, combine, None, label)

    def for_each_block(self, target: str, func: Callable, label: str, *args, **kwargs):
        """The last pass: ``func`` on every block of ``target`` (see
        :func:`pipeline.engine.passes.each_block.for_each_block`); call after
        :meth:`resolve`."""
        return each_block.for_each_block(self, target, func, label, *args, **kwargs)

    def map_calls(self, calls: list[tuple], label: str) -> list:
        """Each ``(func, *args)`` of ``calls`` as a parallel task; the results in order."""
        return each_block.map_calls(self, calls, label)

    def compute_block(self, target: str, index: tuple[int, ...], label: str) -> np.ndarray:
        """``target`` on block ``index`` alone (after :meth:`resolve`)."""
        graph = self.new_pass(label)
        return graph.compute([graph.keys.program(target, index)])[0]

    def to_numpy(self, target: str) -> np.ndarray:
        """Compute ``target`` on the whole volume in memory (tests, small images)."""
        try:
            self.resolve([target])
            graph = self.new_pass(f"compute {target}")
            keys = graph.keys.blocks(target)
            blocks = graph.compute(list(keys.values()))
        finally:
            self.close()
        pieces = [(self.plan.box(i), b) for i, b in zip(keys, blocks, strict=True)]
        return assemble(pieces, tuple((0, n) for n in self.plan.shape))

    # ---- fused programs ------------------------------------------------------------
    def program(self, target: str, out_margin: tuple[int, ...] | None = None) -> Program:
        """The fused program computing ``target`` (on blocks grown by ``out_margin``) from
        the blocks of its leaves: producers and what scratch keeps."""
        key = (target, frozenset(self.kept.blocks), frozenset(self.resolved), out_margin)
        prog = self._programs.get(key)
        if prog is None:
            prog = make_program(target, self._step, self.ndim, out_margin)
            self._programs[key] = prog
        return prog

    def planned_program(self, target: str) -> Program:
        """The program of ``target`` before any pass ran (global ops not resolved yet get
        a placeholder argument): for plans and dtype probes."""
        return make_program(target, self._planned_step, self.ndim)

    def _step(self, name: str) -> Step | None:
        if name in self.kept.blocks:
            return None
        node = self.dag.nodes[name]
        return self.kind(node).step(self, node)

    def _planned_step(self, name: str) -> Step | None:
        node = self.dag.nodes[name]
        return self.kind(node).step(self, node, planning=True)

    # ---- what nodes give -----------------------------------------------------------
    def dtype_of(self, name: str) -> np.dtype:
        """Dtype of the blocks of node ``name``."""
        node = self.dag.nodes[name]
        return self.kind(node).dtype(self, node)

    def probe_shape(self, name: str) -> tuple[int, ...]:
        """The shape of a tiny probe block of node ``name`` (with its colour samples)."""
        shape = (3,) * self.ndim
        if self.has_samples(name):
            return (*shape, self.source.samples)
        return shape

    def has_samples(self, name: str) -> bool:
        """Whether node ``name``'s blocks have a last axis of samples (colour, channels)."""
        node = self.dag.nodes[name]
        source = node.kind == "source" and bool(getattr(self.source, "color", False))
        return node.role == "color" or source

    def voxel_bytes(self, name: str) -> int:
        """Bytes one voxel of node ``name`` takes (all its channels)."""
        channels = int(np.prod(self.probe_shape(name)[self.ndim :]))
        return channels * self.dtype_of(name).itemsize

    def fits_scratch(self, name: str) -> bool:
        """Whether node ``name``'s blocks, all of them, fit what scratch may keep; if so,
        their room is taken."""
        dtype = self.dtype_of(name)
        voxels = int(np.prod(self.plan.shape)) * int(np.prod(self.probe_shape(name)[self.ndim :]))
        nbytes = -(-voxels // 8) if dtype == np.bool_ else voxels * dtype.itemsize
        return self.kept.reserve(name, nbytes)

    def connectivity(self, node: Node) -> int:
        """The connectivity of the objects ``node`` finds (1..ndim)."""
        conn = node.params.object_connectivity(self.ndim)
        if conn > self.ndim:
            raise DataError(
                f"step {node.name!r}: connectivity {conn} needs at least {conn} axes, "
                f"the image has {self.ndim}"
            )
        return conn

    def overlap(self, node: Node) -> tuple[int, ...]:
        """A tiled op's halo, worked out (and its file checked) once, not once per tile."""
        if node.name not in self._overlaps:
            self._overlaps[node.name] = node.halo(self.ndim)
        return self._overlaps[node.name]

    def tile_grid(self, node: Node) -> TileGrid | None:
        """A tiled op's grid of tiles of its own size, when it has one (worked out once)."""
        if node.name not in self._tile_grids:
            try:
                spec = node.op.tiles_of(node.params, self.plan.shape) if node.op.tiles_of else None
            except ValueError as exc:
                raise DataError(f"step {node.name!r}: {exc}") from None
            grid = (
                None
                if spec is None
                else TileGrid(self.plan.shape, spec.size, spec.halo, spec.batch)
            )
            self._tile_grids[node.name] = grid
        return self._tile_grids[node.name]

    # ---- checkpoints and scratch ---------------------------------------------------
    def attach_journal(self, journal: Journal | None) -> None:
        """Checkpoint into ``journal``. A resumed run keeps in scratch what the interrupted
        one kept (whatever its own budget), so every block an earlier pass recorded as
        finished has its kept blocks to read."""
        self.journal = journal
        if journal is not None:
            self.scratch.budget = journal.recorded("scratch_budget", self.scratch.budget)

    def close(self, keep_scratch: bool = False) -> None:
        """Remove the scratch files (``keep_scratch``: keep them for a resumed run)."""
        if keep_scratch and self.journal is not None:
            self.scratch.wait()
        else:
            self.scratch.remove()
        self.kept.forget()


@contextmanager
def tty_progress(label: str):
    """A Dask progress bar on stderr, headed by ``label``."""
    from dask.diagnostics import ProgressBar

    sys.stderr.write(f"{label}\n")
    with ProgressBar(out=sys.stderr):
        yield
