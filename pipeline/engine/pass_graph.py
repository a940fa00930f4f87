"""One pass over the blocks as a Dask graph: built, checkpointed, computed, dropped.

The engine makes a :class:`PassGraph` for each pass (a statistics pass, a labelling
pass, the write pass); :attr:`PassGraph.keys` adds the tasks that give a node's block
(see :mod:`pipeline.engine.keys`). Computing it runs the graph on the configured
scheduler in waves (:mod:`pipeline.engine.waves`), local or a Dask cluster, each task
guarded so that an error names its pass and block. Once computed, the graph is done
with: the next pass is a new one.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING

from pipeline.engine import tasks
from pipeline.engine.cluster import cluster_client, runs_here, scheduler_get
from pipeline.engine.kept import halo_slot
from pipeline.engine.keys import Keys
from pipeline.engine.waves import compute_in_waves
from pipeline.errors import BlockError

if TYPE_CHECKING:
    from pipeline.engine.engine import Engine


class PassGraph:
    """The tasks of one pass, and what they read of and write to scratch."""

    def __init__(self, engine: Engine, label: str) -> None:
        self.engine = engine
        self.label = label  # names the pass in progress, timings and errors
        self.dsk: dict = {}
        self.read_kept: set[str] = set()  # kept blocks and local labels it reads
        self.halo_slots: dict[str, tuple[str, tuple[int, ...]]] = {}  # slots it writes
        self.halo_readers: dict[tuple, int] = {}  # tasks reading each halo task's file
        self.halo_keys: dict[tuple, tuple | str] = {}  # each halo key (or kept file) once
        self.halos_read: set[str] = set()  # kept halo slots it reads
        self.keys = Keys(engine, self)

    def checkpoint(self, blocks: dict[tuple, tuple]) -> None:
        """Record (or, on a rerun, load) each block's result key ``blocks[index]``."""
        if self.engine.journal is not None:
            self.engine.journal.wrap(self.dsk, blocks, self.label)

    def keep_halos(self) -> None:
        """Keep the source's halo files this pass writes for later passes, each slot when
        all of it fits the scratch budget (for a pass computing an image that later passes
        compute again)."""
        engine = self.engine
        if engine.halo_exchange == "dask":  # the slabs are task results: none are files
            return
        slots = {}
        for slot, (name, margin) in self.halo_slots.items():
            if self.keys.whole_in_halo(name):
                grown = engine.plan.grown_voxels(margin)  # the files hold each block grown
                slots[slot] = grown * engine.voxel_bytes(name)
        engine.kept.keep_halos(slots)

    def last(self) -> None:
        """This is the run's last pass: delete, in the background, the kept files it does
        not read, and release the labellings' per-object tables (no filter or check
        reads them after it)."""
        self.engine.kept.drop_unread(self.read_kept)
        for lab in self.engine.labellings.values():
            lab.release_object_tables()

    def compute(self, keys: list) -> list:
        """The results of ``keys``, computing the graph with the engine's scheduler."""
        engine = self.engine
        t0 = time.perf_counter()
        get = scheduler_get(engine.scheduler)
        kept = engine.kept
        kept.drop_unused_halos(self.halos_read | self.halo_slots.keys())
        # In this process a halo file is deleted as soon as the tasks reading it are done
        # (keeping the scratch of a pass small); elsewhere, with the pass.
        if runs_here(get):
            for key, readers in self.halo_readers.items():
                if key in self.dsk and halo_slot(key[0][len("halo-") :], key[1]) not in kept.halos:
                    self.dsk[key] = (*self.dsk[key][:-1], readers)
        ndim = engine.ndim
        dsk = {
            k: tasks.guard(tasks.TaskName(k if isinstance(k, tuple) else (k,)), ndim, t)
            for k, t in self.dsk.items()
        }
        client = cluster_client(get)
        run = partial(compute_in_waves, get, dsk, keys, ndim, engine.wave_tasks, client)
        try:
            if engine.progress is not None:
                with engine.progress(self.label):
                    out = run(num_workers=engine.num_workers)
            else:
                out = run(num_workers=engine.num_workers)
        except BlockError as exc:  # name the pass, not the task
            raise BlockError(self.label, exc.block, exc.error, data=exc.data) from exc
        engine.timings[self.label] = engine.timings.get(self.label, 0.0) + time.perf_counter() - t0
        # Halo slabs serve one pass only, unless kept for the next (see engine.keys).
        for slot in sorted(self.halo_slots.keys() - kept.halos):
            engine.scratch.drop_later(slot)
        return list(out)
