"""What a whole-volume statistic is computed with: reduction passes over an op's input.

:class:`Stats` is what the engine offers a global op's ``resolve`` (one pass over the
blocks per call); :class:`StandIn` what such a pass may keep of each block instead of
the block itself. Both are protocols: the engine implements them, ops and the
statistics here only call them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np


class Stats(Protocol):
    """What a global op's ``resolve`` may ask of the engine: passes over its input."""

    dtype: np.dtype  # of the main input
    dtypes: tuple[np.dtype, ...]  # of every input
    shape: tuple[int, ...]  # of the volume (spatial axes)
    colour: bool  # whether the main input has a trailing colour axis

    def reduce(
        self,
        func: Callable,
        combine: Callable | None = None,
        halo: tuple[int, ...] | None = None,
        name: str = "statistics",
        n_inputs: int = 1,
        stand_in: StandIn | None = None,
    ) -> object:
        """``combine`` of ``func(*blocks, box, core)`` over every block of the input.

        ``blocks`` are the first ``n_inputs`` inputs on ``box`` (the block grown by
        ``halo``, clipped to the volume), ``core`` the block's own box.
        ``combine(a, b)`` merges two partial results (default: ``a + b``); partials
        that are None are skipped. ``name`` names the pass in progress and timings.

        With ``stand_in`` (one input, no halo), the engine may keep a stand-in for each
        block in scratch, when they fit: it then calls ``stand_in.with_stand_in`` in
        place of ``func``, and once the op is resolved to an argument
        ``stand_in.decoder`` accepts, makes the op's blocks from the stand-ins instead
        of computing its input again.
        """
        ...


class StandIn(Protocol):
    """What a reduction pass may keep of an op's input block instead of the block."""

    dtype: np.dtype

    def with_stand_in(self, block: np.ndarray, box, core) -> tuple[object, np.ndarray]:
        """The block's partial result (what ``func`` of the pass gives) and its stand-in,
        an array of ``dtype`` in the block's shape."""
        ...

    def decoder(self, arg: object) -> tuple[Callable, object] | None:
        """``(func, farg)`` such that ``func(stand_in, farg)`` equals the op's block
        function on the block for the resolved argument ``arg``; None where it cannot."""
        ...
