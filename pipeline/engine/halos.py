"""Halo slabs (a mixin of :class:`Engine`): what a block's neighbours give its program.

A program that needs context around its block (a Gaussian's radius) reads thin slabs of
the neighbouring blocks, which each neighbour's halo task writes to one scratch file
(with the block itself when it comes from the source, so the source is decoded once).
The files of a pass are deleted as their readers finish. When a pass computes an image
that does not fit the scratch budget, a later pass computes it again from the same
slabs: the source's halo files are then kept for it, room allowing, so that pass
neither decodes the source nor cuts the slabs again. Kept halos give way to a global
op's stand-in (its histogram bin codes), which spares more.
"""

from __future__ import annotations

import os

import numpy as np

from pipeline.engine import tasks
from pipeline.engine.program import Program


def _slot(name: str, margin: tuple[int, ...]) -> str:
    """The scratch slot of ``name``'s halo files for ``margin``."""
    return f"halo-{name}-{'_'.join(map(str, margin))}"


class HaloKeys:
    """Halo tasks and files of the engine's current graph, and those kept across passes."""

    def _pieces(self, program: Program, index) -> list:
        """What a program task needs of each leaf: the block plan and, per leaf, the data
        of the blocks its box meets (the task works out their boxes from the plan, so
        the graph carries no boxes for the scheduler to copy).

        The block's own data is computed inside the task (a read, a load from scratch,
        a relabel); parts of neighbouring blocks come from their halo tasks, which keep
        only thin slabs, so no whole block waits in memory for its neighbours.
        """
        box = self.plan.box(index)
        items = []
        for leaf in program.leaves:
            margin = program.margins[leaf]
            near = self.plan.blocks_in(program.leaf_box(leaf, box, self.plan.shape))
            # A block read from the source is decoded once: its halo task, which reads
            # it for the neighbours, also keeps it whole in the slab file.
            own_in_halo = len(near) > 1 and self._whole_in_halo(leaf)
            leaf_items = []
            for nb in near:
                if nb == index and not own_in_halo:
                    leaf_items.append(self.producer_task(leaf, nb))
                else:
                    key = self._halo_key(leaf, margin, nb)
                    if isinstance(key, tuple):  # a task's key, not a kept file
                        self._halo_reads[key] = self._halo_reads.get(key, 0) + 1
                    leaf_items.append(key)
            items.append(leaf_items)
        # Keys and tasks go in plain lists so that Dask substitutes their results.
        return [self.plan, items]

    def _halo_key(self, name: str, margin: tuple[int, ...], index) -> tuple | str:
        """Key of the slabs of block ``index`` of ``name`` that blocks within ``margin``
        need; or their file, where an earlier pass kept it."""
        key = ("halo-" + name, margin, *index)
        if key in self._halo_keys:  # the one tuple, however many blocks read its slabs
            return self._halo_keys[key]
        slot = _slot(name, margin)
        if slot in self._kept_halos:
            path = self.scratch.path(slot, index)
            if os.path.exists(path):
                self._halos_read.add(slot)
                self._halo_keys[key] = path
                return path
        self._halo_keys[key] = key
        if key not in self._dsk:
            self._halo_slots[slot] = (name, margin)
            self._dsk[key] = (
                tasks.halo_out,
                self.producer_task(name, index),
                self.plan,
                index,
                margin,
                self.scratch.path(slot, index),
                self._whole_in_halo(name),
                0,  # its readers, set when the graph is complete (see compute)
            )
        return key

    def _whole_in_halo(self, name: str) -> bool:
        # Reading a source block (decoding its chunk) costs more than writing it to the
        # slab file and reading it back; a kept block or a relabel costs less.
        node = self.dag.nodes.get(name)  # None: a stand-in, kept in scratch
        return node is not None and node.kind == "source" and name not in self._kept

    def keep_halos(self) -> None:
        """Keep the source's halo files of the pass being built for later passes, each
        slot when all of it fits the scratch budget (call when a pass computes an image
        that later passes compute again)."""
        for slot in sorted(self._halo_slots.keys() - self._kept_halos):
            name, margin = self._halo_slots[slot]
            if not self._whole_in_halo(name):
                continue
            grown = self.plan.grown_voxels(margin)  # the files hold each block grown
            channels = int(np.prod(self._probe_shape(name)[self.ndim :]))
            nbytes = grown * channels * np.dtype(self.source.dtype).itemsize
            if self.scratch.reserve(slot, nbytes):
                self._kept_halos.add(slot)

    def halo_kept(self, key: tuple) -> bool:
        """Whether the halo file of task ``key`` is kept for a later pass."""
        return _slot(key[0][len("halo-") :], key[1]) in self._kept_halos

    def drop_unused_halos(self) -> None:
        """Delete the kept halo files the current graph neither reads nor writes: no later
        pass computes their image again."""
        for slot in sorted(self._kept_halos - self._halos_read - self._halo_slots.keys()):
            self.drop_halos(slot)

    def drop_halos(self, slot: str) -> None:
        """Delete the kept halo files of ``slot`` (in the background) and free their room."""
        self._kept_halos.discard(slot)
        self.scratch.drop_later(slot)

    def make_room(self, nbytes: int) -> None:
        """Give kept halo files' room to ``nbytes`` of something sparing more, when that
        makes it fit."""
        kept = sum(self.scratch.reserved(slot) for slot in self._kept_halos)
        if kept and self.scratch.room() < nbytes <= self.scratch.room() + kept:
            for slot in sorted(self._kept_halos):
                self.drop_halos(slot)
