"""The statistics, labelling and checking passes of the engine (a mixin of :class:`Engine`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.engine import tasks
from pipeline.engine.blocks import grow
from pipeline.engine.labelling_pass import (
    preflight,
    resolve_filter,
    resolve_instances,
    resolve_labelling,
)
from pipeline.engine.reduce import InputStats, tree_reduce
from pipeline.errors import DataError
from pipeline.graph.dag import Node


class Passes:
    """Passes over all blocks that resolve global ops, labellings and filters."""

    def reduce(
        self,
        node: Node,
        func: Callable,
        combine,
        halo,
        n_inputs: int,
        label: str,
        stand_in=None,
    ):
        """One reduction pass of global op ``node`` (see :class:`InputStats`)."""
        self.reset_graph()
        inputs = node.inputs[:n_inputs]
        grown = halo is not None and any(halo)
        # A computed input is kept in scratch by its first pass, when it fits the
        # scratch budget; later passes read it (or compute it again).
        keep = {i: not grown and not self._is_producer(i) and self._fits_scratch(i) for i in inputs}
        # A stand-in for the input is kept when it fits; the op's own blocks are then
        # made from it, and the input is not read or computed again for them.
        stand_in_name = None
        if stand_in is not None and not grown and n_inputs == 1:
            name = "standin-" + node.name
            nbytes = int(np.prod(self.plan.shape)) * np.dtype(stand_in.dtype).itemsize
            self.make_room(nbytes)  # it spares more than kept halo files
            if self.scratch.reserve(name, nbytes):
                stand_in_name = name
        self._passes[node.name] = n = self._passes.get(node.name, 0) + 1
        parts = {}
        for idx in self.plan.indices():
            core = self.plan.box(idx)
            if grown:
                keys = [self.grown_key(i, idx, halo) for i in inputs]
                box = grow(core, halo, self.plan.shape)
            else:
                keys = [self._program_key(i, idx, keep[i]) for i in inputs]
                box = core
            if len(set(keys)) == len(keys):
                keys = [self.inlined(k) for k in keys]
            pk = (f"part-{node.name}-{n}", *idx)
            if stand_in_name is None:
                self._dsk[pk] = (tasks.partial_result, func, box, core, *keys)
            else:
                path = self.scratch.path(stand_in_name, idx)
                make = stand_in.with_stand_in
                self._dsk[pk] = (tasks.partial_and_stand_in, make, box, core, path, *keys)
            parts[idx] = pk
        if any(not keep[i] and not self._is_producer(i) for i in inputs):
            self.keep_halos()  # a later pass computes those inputs again from them
        self.checkpoint(parts, label)
        total = tree_reduce(self._dsk, list(parts.values()), f"reduce-{node.name}-{n}", combine)
        out = self.compute([total], label)[0]
        self._kept.update(i for i, k in keep.items() if k)
        if stand_in_name is not None:
            self._kept.add(stand_in_name)
            self._stand_ins[node.name] = (stand_in_name, stand_in)
        self.reset_graph()
        return out

    def inlined(self, key: tuple):
        """The task of ``key`` taken out of the graph, to run inside its only user's task,
        when ``key`` computes a block (not a producer's, which other tasks may share).

        The block (a float64 Gaussian is 16 MiB at 128³) is then freed as soon as its user
        is done with it, not whenever the scheduler next gets to that user; the threaded
        scheduler had two or three such blocks waiting between tasks.
        """
        if key[0].startswith(("blk-", "grown-", "local-")) and key in self._dsk:
            return self._dsk.pop(key)
        return key

    def _fits_scratch(self, name: str) -> bool:
        """Whether node ``name``'s blocks, all of them, fit what scratch may keep."""
        dtype = self._dtype_probe(name)
        voxels = int(np.prod(self.plan.shape)) * int(np.prod(self._probe_shape(name)[self.ndim :]))
        nbytes = -(-voxels // 8) if dtype == np.bool_ else voxels * dtype.itemsize
        return self.scratch.reserve(name, nbytes)

    def resolve(self, targets: list[str]) -> None:
        """Run the statistics and labelling passes that ``targets`` need."""
        need: list[str] = []
        for t in targets:
            for n in self.dag.upstream(t):
                if n not in need:
                    need.append(n)
        for name in list(self.dag.nodes):
            if name not in need:
                continue
            node = self.dag.nodes[name]
            if node.kind == "global" and name not in self.resolved:
                try:
                    self.resolved[name] = node.op.resolve(node.params, InputStats(self, node))
                except ValueError as exc:
                    raise DataError(f"step {name!r}: {exc}") from None
            elif node.kind == "labelling":
                resolve_labelling(self, node, node.name)
            elif node.kind == "tiled" and getattr(node.params, "instances", False):
                resolve_instances(self, node)
            if node.op is not None and node.op.preflight and name not in self._checked:
                self._checked.add(name)
                warning = preflight(self, node)
                if warning:
                    self.warnings.append(f"step {name!r}: {warning}")
            elif node.kind == "object_filter":
                if node.op.resolve is not None and name not in self.resolved:
                    self.resolved[name] = node.op.resolve(node.params, InputStats(self, node))
                resolve_filter(self, node)

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
                    if dtype.kind == "f" and node.op.func is None:
                        raise DataError(
                            f"step {name!r}: labelling needs a mask or an integer image, "
                            f"step {node.inputs[0]!r} gives {dtype}"
                        )
                elif (
                    node.kind == "global"
                    and "mask" not in node.op.accepts
                    and self._dtype_probe(node.inputs[0]).kind == "b"
                ):
                    raise DataError(
                        f"step {name!r}: {node.op.name} needs a grayscale image, got a mask"
                    )
                elif node.op is not None and node.op.halo is not None:
                    try:
                        node.halo(self.ndim)
                    except ValueError as exc:
                        raise DataError(f"step {name!r}: {exc}") from None

    def _dtype_probe(self, name: str) -> np.dtype:
        """Dtype of node ``name``, from computing it on a tiny box."""
        node = self.dag.nodes[name]
        if node.kind == "source":
            return np.dtype(self.source.dtype)
        if node.kind in ("labelling", "object_filter"):
            return np.dtype(np.uint32) if node.role == "labels" else np.dtype(bool)
        if node.kind == "tiled":
            return np.dtype(np.float32)
        step = self._step_of_static(name)
        probes = [np.zeros(self._probe_shape(i), self._dtype_probe(i)) for i in node.inputs]
        extra = (((0, 3),) * self.ndim,) if step.with_box else ()
        return np.asarray(step.func(*probes, step.arg, *extra)).dtype

    def dtype_of(self, name: str) -> np.dtype:
        """Dtype of the blocks of node ``name``."""
        return self._dtype_probe(name)

    def _probe_shape(self, name: str) -> tuple[int, ...]:
        shape = (3,) * self.ndim
        if self.dag.nodes[name].role == "color":
            return (*shape, self.source.native_shape[self.source.native_axes.index("c")])
        return shape
