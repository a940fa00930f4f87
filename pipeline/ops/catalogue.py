"""Every op a config can name, listed once, in the order of a pipeline's stages.

Adding an op: define it in its module (parameters, block function, an op object of its
kind, see :mod:`pipeline.ops.contract`) and list it here; ``docs/ops.md`` is generated
from this list (``python -m pipeline.ops.docs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pipeline.ops import (
    classify,
    cleanup,
    distance,
    edges,
    filters,
    labelling,
    masks,
    model,
    morphology,
    normalize,
    resample,
    threshold,
    watershed,
)
from pipeline.ops.contract import Op

_ORDERED: tuple[Op, ...] = (
    # the grid
    resample.RESIZE,
    # preprocessing
    filters.GRAYSCALE,
    filters.GAUSSIAN,
    filters.MEDIAN,
    normalize.NORMALIZE,
    filters.SOBEL,
    # segmentation
    threshold.THRESHOLD,
    filters.THRESHOLD_LOCAL,
    cleanup.HYSTERESIS_THRESHOLD,
    edges.CANNY,
    classify.KMEANS,
    classify.SELECT,
    model.MODEL,
    # masks
    masks.INVERT,
    morphology.EROSION,
    morphology.DILATION,
    morphology.OPENING,
    morphology.CLOSING,
    cleanup.REMOVE_SMALL_HOLES,
    cleanup.FILL_HOLES,
    # objects
    labelling.LABEL,
    labelling.REMOVE_SMALL_OBJECTS,
    cleanup.CLEAR_BORDER,
    distance.DISTANCE_TRANSFORM,
    watershed.PEAK_LOCAL_MAX,
    watershed.WATERSHED,
    distance.EXPAND_LABELS,
)

CATALOGUE: Mapping[str, Op] = MappingProxyType({op.name: op for op in _ORDERED})
if len(CATALOGUE) != len(_ORDERED):
    raise RuntimeError("two ops of the catalogue share a name")


def get_op(name: str) -> Op:
    """The op called ``name`` (KeyError when there is none)."""
    return CATALOGUE[name]
