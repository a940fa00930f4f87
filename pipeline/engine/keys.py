"""The tasks that give a node's block in a pass graph, and their keys.

Every key of a pass graph is made here, one builder per thing a block can be:

=====================  =============================================================
``("out-" + n, *i)``   a producer's block: read from the source, relabelled from local
                       labels, blended from tiles, or loaded from scratch
``("blk-" + n, *i)``   a fused program's block (a chain of per-block steps)
``("grown-" + n, ...)``  the same on the block grown by a margin
``("local-" + n, *i)`` a labelling's local labels of the block
``("halo-" + n, ...)`` the slabs of a block its neighbours' programs need, in a file
``("tile-" + n, *i)``  a tiled op's prediction of the tile around a block, in a file
=====================  =============================================================

A program that needs context around its block (a Gaussian's radius) reads thin slabs of
the neighbouring blocks, which each neighbour's halo task writes to one scratch file
(with the block itself when it comes from the source, so the source is decoded once).
The files of a pass are deleted as their readers finish; the source's may be kept for a
later pass that computes the same image again (see :mod:`pipeline.engine.kept`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.engine import tasks, tiles
from pipeline.engine.blocks import grow
from pipeline.engine.kept import halo_slot
from pipeline.engine.kinds import kind_of
from pipeline.engine.program import Program
from pipeline.graph.dag import Node
from pipeline.io import storage

if TYPE_CHECKING:
    from pipeline.engine.engine import Engine
    from pipeline.engine.pass_graph import PassGraph


class Keys:
    """Adds to one pass graph the tasks that give nodes' blocks; returns their keys."""

    def __init__(self, engine: Engine, graph: PassGraph) -> None:
        self.engine = engine
        self.graph = graph
        self.dsk = graph.dsk

    def is_producer(self, name: str) -> bool:
        """Whether ``name``'s block is made by a task of its own (read, relabel, load from
        scratch), not by a fused program."""
        return name in self.engine.kept.blocks or kind_of(self.engine.dag.nodes[name]).producer

    def blocks(self, target: str) -> dict[tuple[int, ...], tuple]:
        """Keys computing ``target`` on every block."""
        return {i: self.program(target, i) for i in self.engine.plan.indices()}

    def producer_task(self, name: str, index) -> tuple:
        """The task (not yet a key) giving producer ``name`` on block ``index``."""
        kept = self.engine.kept
        if name in kept.blocks:
            self.graph.read_kept.add(name)
            return (tasks.load_block, kept.block_path(name, index))
        node = self.engine.dag.nodes[name]
        return kind_of(node).produce(self, node, index)

    def producer(self, name: str, index) -> tuple:
        """Key of the task giving producer ``name`` on block ``index``."""
        key = ("out-" + name, *index)
        if key not in self.dsk:
            self.dsk[key] = self.producer_task(name, index)
        return key

    def program(self, target: str, index, keep: bool = False) -> tuple:
        """Key of the task computing ``target`` on block ``index``; with ``keep`` the task
        also stores the block in scratch, for later passes to read back."""
        if self.is_producer(target):
            return self.producer(target, index)
        key = ("blk-" + target, *index)
        if key not in self.dsk:
            engine = self.engine
            prog = engine.program(target)
            args = (prog, engine.plan.box(index), engine.plan.shape, self.pieces(prog, index))
            if keep:
                path = engine.kept.block_path(target, index)
                self.dsk[key] = (tasks.program_block_kept, *args, path)
            else:
                self.dsk[key] = (tasks.program_block, *args)
        return key

    def grown(self, target: str, index, margin: tuple[int, ...]) -> tuple:
        """Key of the task computing ``target`` on block ``index`` grown by ``margin``."""
        key = ("grown-" + target, margin, *index)
        if key not in self.dsk:
            engine = self.engine
            prog = engine.program(target, margin)
            box = engine.plan.box(index)
            self.dsk[key] = (
                tasks.program_block,
                prog,
                box,
                engine.plan.shape,
                self.pieces(prog, index),
            )
        return key

    def local(self, name: str, index, keep: bool = False) -> tuple:
        """Key of the locally labelled block of labelling node ``name``.

        With ``keep``, the task also stores the local labels in scratch; once a pass has
        done so, the key reads them back instead of labelling again.
        """
        key = ("local-" + name, *index)
        if key in self.dsk:
            return key
        engine = self.engine
        node = engine.dag.nodes[name]
        prepare = kind_of(node).prepare(engine, node)
        src = node.inputs[0]
        keep_values = (
            prepare is None and node.kind != "tiled" and engine.dag.nodes[src].role != "mask"
        )
        paths = engine.kept.local_paths(name, index)
        if name in engine.kept.local:
            self.graph.read_kept.add("local-" + name)
            self.dsk[key] = (tasks.load_local, paths, keep_values)
            return key
        prog = engine.program(src, prepare.margin if prepare is not None else None)
        args = (
            prog,
            engine.plan.box(index),
            engine.plan.shape,
            self.pieces(prog, index),
            engine.connectivity(node),
            keep_values,
        )
        if keep:
            self.dsk[key] = (tasks.label_block_kept, *args, paths, prepare)
        else:
            self.dsk[key] = (tasks.label_block, *args, prepare)
        return key

    def inlined(self, key: tuple):
        """The task of ``key`` taken out of the graph, to run inside its only user's task,
        when ``key`` computes a block (not a producer's, which other tasks may share).

        The block (a float64 Gaussian is 16 MiB at 128³) is then freed as soon as its user
        is done with it, not whenever the scheduler next gets to that user; the threaded
        scheduler had two or three such blocks waiting between tasks.
        """
        if key[0].startswith(("blk-", "grown-", "local-")) and key in self.dsk:
            return self.dsk.pop(key)
        return key

    # ---- halo slabs --------------------------------------------------------------
    def pieces(self, program: Program, index) -> list:
        """What a program task needs of each leaf: the block plan and, per leaf, the data
        of the blocks its box meets (the task works out their boxes from the plan, so
        the graph carries no boxes for the scheduler to copy).

        The block's own data is computed inside the task (a read, a load from scratch,
        a relabel); parts of neighbouring blocks come from their halo tasks, which keep
        only thin slabs, so no whole block waits in memory for its neighbours.
        """
        plan = self.engine.plan
        box = plan.box(index)
        items = []
        for leaf in program.leaves:
            margin = program.margins[leaf]
            near = plan.blocks_in(program.leaf_box(leaf, box, plan.shape))
            # A block read from the source is decoded once: its halo task, which reads
            # it for the neighbours, also keeps it whole in the slab file.
            own_in_halo = len(near) > 1 and self.whole_in_halo(leaf)
            leaf_items = []
            for nb in near:
                if nb == index and not own_in_halo:
                    leaf_items.append(self.producer_task(leaf, nb))
                else:
                    key = self.halo(leaf, margin, nb)
                    if isinstance(key, tuple):  # a task's key, not a kept file
                        readers = self.graph.halo_readers
                        readers[key] = readers.get(key, 0) + 1
                    leaf_items.append(key)
            items.append(leaf_items)
        # Keys and tasks go in plain lists so that Dask substitutes their results.
        return [plan, items]

    def halo(self, name: str, margin: tuple[int, ...], index) -> tuple | str:
        """Key of the slabs of block ``index`` of ``name`` that blocks within ``margin``
        need; or their file, where an earlier pass kept it."""
        key = ("halo-" + name, margin, *index)
        graph = self.graph
        if key in graph.halo_keys:  # the one tuple, however many blocks read its slabs
            return graph.halo_keys[key]
        slot = halo_slot(name, margin)
        kept = self.engine.kept
        through_dask = self.engine.halo_exchange == "dask"
        if slot in kept.halos:
            path = kept.block_path(slot, index)
            if storage.file_exists(path):
                graph.halos_read.add(slot)
                graph.halo_keys[key] = path
                return path
        graph.halo_keys[key] = key
        if key not in self.dsk:
            graph.halo_slots[slot] = (name, margin)
            self.dsk[key] = (
                tasks.halo_out,
                self.producer_task(name, index),
                self.engine.plan,
                index,
                margin,
                None if through_dask else kept.block_path(slot, index),
                self.whole_in_halo(name),
                0,  # its readers, set when the graph is complete (see PassGraph.compute)
            )
        return key

    def whole_in_halo(self, name: str) -> bool:
        """Whether ``name``'s halo files hold each block whole too: reading a source block
        (decoding its chunk) costs more than writing it to the slab file and reading it
        back; a kept block or a relabel costs less."""
        node = self.engine.dag.nodes.get(name)  # None: a stand-in, kept in scratch
        return node is not None and node.kind == "source" and name not in self.engine.kept.blocks

    # ---- tiles -------------------------------------------------------------------
    def blend_task(self, node: Node, index) -> tuple:
        """A tiled node's block: its tiles (predicted once each) blended."""
        engine = self.engine
        plan = engine.plan
        overlap = engine.overlap(node)
        box = plan.box(index)
        blend = node.params.blend
        near = [index] if blend == "crop" else plan.blocks_in(grow(box, overlap, plan.shape))
        keys = [self.tile(node, j) for j in near]
        tile_boxes = [self.tile_box(node, j) for j in near]
        cores = [plan.box(j) for j in near]
        return (tiles.blend_block, box, plan.shape, blend, keys, tile_boxes, cores)

    def grid_block_task(self, node: Node, index) -> tuple:
        """A block of a node with a tile grid: the groups of tiles that cover it."""
        grid = self.engine.tile_grid(node)
        box = self.engine.plan.box(index)
        groups = grid.groups_meeting(box)
        paths = [self.tile_group(node, grid, g) for g in groups]
        return (tiles.grid_block, box, paths, [grid.kept_box(g) for g in groups])

    def tile_group(self, node: Node, grid, group: tuple) -> tuple | str:
        """Key of the task predicting (once) a group of tiles of the grid; gives its file,
        or the file itself where an earlier pass kept it."""
        key = ("tile-" + node.name, *group)
        if key in self.dsk:
            return key
        engine = self.engine
        path = engine.scratch.path("tile-" + node.name, group)
        if storage.file_exists(path):
            return path
        plan = engine.plan
        region = grid.input_box(group)
        blocks = plan.blocks_in(region)
        parts = [[self.program(i, j) for j in blocks] for i in node.inputs]
        self.dsk[key] = (
            tiles.predict_group,
            [plan, parts],
            region,
            grid.tiles(group),
            node.op.predict,
            engine.resolved[node.name],
            grid.pad,
            path,
        )
        return key

    def tile_box(self, node: Node, index) -> tuple:
        """The box of a tiled node's tile for block ``index`` (grown by the overlap)."""
        plan = self.engine.plan
        return grow(plan.box(index), self.engine.overlap(node), plan.shape)

    def tile(self, node: Node, index) -> tuple:
        """Key of the task predicting (once) the tile of block ``index``; gives its file."""
        key = ("tile-" + node.name, *index)
        if key not in self.dsk:
            engine = self.engine
            self.dsk[key] = (
                tiles.predict_tile,
                self.grown(node.inputs[0], index, engine.overlap(node)),
                node.op.func,
                node.params,
                engine.scratch.path("tile-" + node.name, index),
                node.params.instances,
            )
        return key
