"""Graph keys of tiled ops (a mixin of :class:`Engine`): one prediction task per tile,
and each block blended from the tiles that cover it (see :mod:`pipeline.engine.tiles`)."""

from __future__ import annotations

from pipeline.engine import tiles
from pipeline.engine.blocks import grow
from pipeline.graph.dag import Node


class TiledKeys:
    """Tasks of tiled ops in the engine's current graph."""

    def _blend_task(self, node: Node, index) -> tuple:
        """A tiled node's block: its tiles (predicted once each) blended."""
        overlap = self._overlap(node)
        box = self.plan.box(index)
        blend = node.params.blend
        near = (
            [index] if blend == "crop" else self.plan.blocks_in(grow(box, overlap, self.plan.shape))
        )
        keys = [self.tile_key(node, j) for j in near]
        tile_boxes = [self.tile_box(node, j) for j in near]
        cores = [self.plan.box(j) for j in near]
        return (tiles.blend_block, box, self.plan.shape, blend, keys, tile_boxes, cores)

    def tile_box(self, node: Node, index) -> tuple:
        """The box of a tiled node's tile for block ``index`` (grown by the overlap)."""
        return grow(self.plan.box(index), self._overlap(node), self.plan.shape)

    def _overlap(self, node: Node) -> tuple[int, ...]:
        # A tiled op's halo, worked out (and its file checked) once, not once per tile.
        if node.name not in self._overlaps:
            self._overlaps[node.name] = node.halo(self.ndim)
        return self._overlaps[node.name]

    def tile_key(self, node: Node, index) -> tuple:
        """Key of the task predicting (once) the tile of block ``index``; gives its file."""
        key = ("tile-" + node.name, *index)
        if key not in self._dsk:
            self._dsk[key] = (
                tiles.predict_tile,
                self.grown_key(node.inputs[0], index, self._overlap(node)),
                node.op.func,
                node.params,
                self.scratch.path("tile-" + node.name, index),
                bool(getattr(node.params, "instances", False)),
            )
        return key
