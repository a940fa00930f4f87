"""What the engine does with each kind of node: the one table it dispatches on.

Each kind (the source, or an op kind of :mod:`pipeline.ops.contract`) says

- ``producer``: whether its blocks come from a task of their own (a read, a relabel, a
  blend) rather than from a fused program of per-block steps;
- ``step``: its step in a fused program (per-block kinds);
- ``produce``: the task giving its block (producers);
- ``resolve``: the passes it needs before its blocks can be made;
- ``check``: what it refuses before any pass runs;
- ``dtype``: the dtype of its blocks.

Adding an op kind is adding a class here and a line to :data:`KINDS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.engine import tasks
from pipeline.engine.passes.filter import filter_objects, preflight
from pipeline.engine.passes.label import label_pass
from pipeline.engine.passes.match import match_pass
from pipeline.engine.passes.reduce import InputStats
from pipeline.engine.program import Step
from pipeline.errors import DataError
from pipeline.graph.dag import Node

if TYPE_CHECKING:
    from pipeline.engine.engine import Engine
    from pipeline.engine.keys import Keys


class Kind:
    """A kind whose node is a step of a fused program (the defaults)."""

    producer = False
    stitched = False  # its blocks are stitched objects, relabelled from local labels

    def step(self, engine: Engine, node: Node, planning: bool = False) -> Step | None:
        """The node's step in a fused program; None for producers. With ``planning``,
        a global op not resolved yet gets its placeholder argument."""
        return None

    def produce(self, keys: Keys, node: Node, index) -> tuple:
        """The task giving the node's block ``index`` (producers only)."""
        raise TypeError(f"step {node.name!r} ({node.kind}) is computed by a program")

    def resolve(self, engine: Engine, node: Node) -> None:
        """Run the passes the node needs before its blocks can be made."""

    def check(self, engine: Engine, node: Node) -> None:
        """Raise DataError for what the node cannot take, before any pass runs."""
        try:
            node.halo(engine.ndim)
        except ValueError as exc:
            raise DataError(f"step {node.name!r}: {exc}") from None

    def dtype(self, engine: Engine, node: Node) -> np.dtype:
        """Dtype of the node's blocks, from computing its step on a tiny box."""
        step = self.step(engine, node, planning=True)
        probes = [np.zeros(engine.probe_shape(i), engine.dtype_of(i)) for i in node.inputs]
        extra = (((0, 3),) * engine.ndim,) if step.with_box else ()
        try:
            return np.asarray(step.func(*probes, step.arg, *extra)).dtype
        except MemoryError as exc:  # e.g. a kernel of sigma 1e12
            raise DataError(
                f"step {node.name!r}: its parameters need more memory than there is, even "
                f"for a block of 3 voxels per axis ({exc or 'MemoryError'})"
            ) from None

    def prepare(self, engine: Engine, node: Node) -> tasks.Prepare | None:
        """How the node's local labels are made from its input block (None: the input
        is labelled as it is)."""
        return None


def relabelled(keys: Keys, node: Node, index) -> tuple:
    """The task giving a stitched node's block ``index``: its local labels relabelled."""
    lab = keys.engine.labellings[node.name]
    lut = lab.luts[keys.engine.plan.linear(index)]
    return (tasks.relabel, keys.local(lab.local_of, index), lut)


class SourceKind(Kind):
    """The input image, read block by block."""

    producer = True

    def produce(self, keys: Keys, node: Node, index) -> tuple:
        return (tasks.read_block, keys.engine.source, keys.engine.plan.box(index))

    def check(self, engine: Engine, node: Node) -> None:
        pass

    def dtype(self, engine: Engine, node: Node) -> np.dtype:
        return np.dtype(engine.source.dtype)


class PointwiseKind(Kind):
    """``func(block, params)`` on each block, fused with the steps around it."""

    def step(self, engine: Engine, node: Node, planning: bool = False) -> Step | None:
        return Step(node.name, node.op.func, node.params, node.inputs, (0,) * engine.ndim)


class NeighbourhoodKind(Kind):
    """``func(block, params)`` on each block grown by the op's halo."""

    def step(self, engine: Engine, node: Node, planning: bool = False) -> Step | None:
        op = node.op
        halo = node.halo(engine.ndim)
        return Step(node.name, op.func, node.params, node.inputs, halo, trims=op.trims)

    def resolve(self, engine: Engine, node: Node) -> None:
        if node.op.preflight is not None and node.name not in engine.checked:
            engine.checked.add(node.name)
            warning = preflight(engine, node)
            if warning:
                engine.warnings.append(f"step {node.name!r}: {warning}")


class GlobalKind(Kind):
    """Ops whose block function takes an argument resolved over the whole input."""

    def step(self, engine: Engine, node: Node, planning: bool = False) -> Step | None:
        op = node.op
        halo = node.halo(engine.ndim)
        if node.name not in engine.resolved:
            if not planning:
                raise RuntimeError(f"step {node.name!r} is not resolved yet")
            return Step(
                node.name, op.func, op.placeholder(node.params), node.inputs, halo, op.needs_box
            )
        if not planning:  # (a stand-in is no step of the DAG: probes take the op's own)
            from_stand_in = self._from_stand_in(engine, node)
            if from_stand_in is not None:
                return from_stand_in
        arg = engine.resolved[node.name]
        return Step(node.name, op.func, arg, node.inputs, halo, op.needs_box)

    @staticmethod
    def _from_stand_in(engine: Engine, node: Node) -> Step | None:
        """The op's blocks made from its input's kept stand-in, where its resolved
        argument allows (a threshold at a bin centre, from the histogram bin codes)."""
        kept = engine.kept.stand_in(node.name)
        if kept is None:
            return None
        found = kept[1].decoder(engine.resolved[node.name])
        if found is None:
            return None
        func, arg = found
        return Step(node.name, func, arg, (kept[0],), (0,) * engine.ndim)

    def resolve(self, engine: Engine, node: Node) -> None:
        if node.name not in engine.resolved:
            try:
                engine.resolved[node.name] = node.op.resolve(node.params, InputStats(engine, node))
            except ValueError as exc:
                raise DataError(f"step {node.name!r}: {exc}") from None

    def check(self, engine: Engine, node: Node) -> None:
        if "mask" not in node.op.accepts and engine.dtype_of(node.inputs[0]).kind == "b":
            raise DataError(
                f"step {node.name!r}: {node.op.name} needs a grayscale image, got a mask"
            )
        super().check(engine, node)


class LabellingKind(Kind):
    """Connected components, labelled per block and stitched (``label``)."""

    producer = True
    stitched = True

    def produce(self, keys: Keys, node: Node, index) -> tuple:
        return relabelled(keys, node, index)

    def resolve(self, engine: Engine, node: Node) -> None:
        label_pass(engine, node, node.name)

    def check(self, engine: Engine, node: Node) -> None:
        engine.connectivity(node)
        dtype = engine.dtype_of(node.inputs[0])
        if dtype.kind == "f" and self.prepare(engine, node) is None:
            raise DataError(
                f"step {node.name!r}: labelling needs a mask or an integer image, "
                f"step {node.inputs[0]!r} gives {dtype}"
            )
        super().check(engine, node)

    def dtype(self, engine: Engine, node: Node) -> np.dtype:
        return np.dtype(np.uint32) if node.role == "labels" else np.dtype(bool)


class ObjectFilterKind(LabellingKind):
    """Stitched objects kept, dropped or renumbered per object."""

    def produce(self, keys: Keys, node: Node, index) -> tuple:
        task = super().produce(keys, node, index)
        if node.op.finish is not None and node.role == "labels":
            original = keys.program(node.inputs[0], index)
            return (tasks.filter_finish, task, original, node.op.finish, node.params)
        return task

    def resolve(self, engine: Engine, node: Node) -> None:
        if node.op.resolve is not None and node.name not in engine.resolved:
            engine.resolved[node.name] = node.op.resolve(node.params, InputStats(engine, node))
        filter_objects(engine, node)

    def prepare(self, engine: Engine, node: Node) -> tasks.Prepare | None:
        op = node.op
        if op.prepare is None:
            return None
        margin = node.halo(engine.ndim) if op.halo_of is not None else None
        params = engine.resolved.get(node.name, node.params)
        return tasks.Prepare(op.prepare, params, op.peaks, margin, node.params.in_planes())


class TiledKind(Kind):
    """A network on tiles: blended per block, or instances matched by overlap; or on a
    grid of tiles of its own size, put together per block."""

    producer = True

    def produce(self, keys: Keys, node: Node, index) -> tuple:
        if keys.engine.tile_grid(node) is not None:
            return keys.grid_block_task(node, index)
        if node.params.instances:
            return relabelled(keys, node, index)
        return keys.blend_task(node, index)

    def resolve(self, engine: Engine, node: Node) -> None:
        if engine.tile_grid(node) is not None:
            if node.op.resolve is not None and node.name not in engine.resolved:
                try:
                    arg = node.op.resolve(node.params, InputStats(engine, node))
                except ValueError as exc:
                    raise DataError(f"step {node.name!r}: {exc}") from None
                engine.resolved[node.name] = arg
            return
        if node.params.instances:
            match_pass(engine, node)

    def check(self, engine: Engine, node: Node) -> None:
        try:
            engine.overlap(node)
            grid = engine.tile_grid(node)
        except ValueError as exc:
            raise DataError(f"step {node.name!r}: {exc}") from None
        if grid is None and engine.has_samples(node.inputs[0]):
            raise DataError(
                f"step {node.name!r}: a network on blocks takes one channel, the input is "
                "a colour image (add a grayscale step, or run a bioimage.io package)"
            )

    def dtype(self, engine: Engine, node: Node) -> np.dtype:
        return np.dtype(np.float32)


class ResampleKind(Kind):
    """A resize: of the input (made the source before the engine starts) or of the
    result (written by the run after the engine's passes)."""

    def step(self, engine: Engine, node: Node, planning: bool = False) -> Step | None:
        raise TypeError(f"step {node.name!r} resizes: the run makes its grid, not the engine")


KINDS: dict[str, Kind] = {
    "source": SourceKind(),
    "pointwise": PointwiseKind(),
    "neighbourhood": NeighbourhoodKind(),
    "global": GlobalKind(),
    "labelling": LabellingKind(),
    "object_filter": ObjectFilterKind(),
    "tiled": TiledKind(),
    "resample": ResampleKind(),
}


def kind_of(node: Node) -> Kind:
    """What the engine does with ``node``."""
    return KINDS[node.kind]
