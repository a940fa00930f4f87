"""Pointwise mask logic."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from pipeline.ops.registry import OpInfo, register


class InvertParams(BaseModel):
    """Parameters of :func:`invert` (none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def invert(mask: np.ndarray, params: InvertParams) -> np.ndarray:
    """Logical not of a mask (``~mask``): e.g. the regions between edges, to label."""
    return ~mask.astype(bool, copy=False)


register(
    OpInfo(
        name="invert",
        kind="pointwise",
        params=InvertParams,
        func=invert,
        accepts=("mask",),
        produces="mask",
        summary="Logical not of a mask (regions between edges, background).",
    )
)
