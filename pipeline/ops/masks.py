"""Pointwise mask logic."""

from __future__ import annotations

import numpy as np

from pipeline.ops.contract import OpParams, PointwiseOp


class InvertParams(OpParams):
    """Parameters of :func:`invert` (none)."""


def invert(mask: np.ndarray, params: InvertParams) -> np.ndarray:
    """Logical not of a mask (``~mask``): e.g. the regions between edges, to label."""
    return ~mask.astype(bool, copy=False)


INVERT = PointwiseOp(
    name="invert",
    params=InvertParams,
    func=invert,
    accepts=("mask",),
    produces="mask",
    summary="Logical not of a mask (regions between edges, background).",
)
