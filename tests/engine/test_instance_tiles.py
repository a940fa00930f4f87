"""Instance tiles stitched by IoU in their overlaps equal whole-image instances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import label

from pipeline.ops.catalogue import CATALOGUE
from pipeline.ops.contract import TiledOp, TiledParams
from tests.conftest import run_steps


class TileLabelParams(TiledParams):
    """A stand-in for an instance network: labels of ``tile > level`` per tile."""

    level: float
    halo: int
    instances: bool = True


def _tile_labels(tile: np.ndarray, params: TileLabelParams) -> np.ndarray:
    return label(tile > params.level, connectivity=1)


TILE_LABEL = TiledOp(
    name="tile_label",
    params=TileLabelParams,
    func=_tile_labels,
    halo_of=lambda params, ndim: (params.halo,) * ndim,
    accepts=("image",),
    produces="labels",
    summary="test stand-in for an instance network",
)
OPS = {**CATALOGUE, "tile_label": TILE_LABEL}  # the catalogue and the stand-in


def _blobs(shape, seed=0):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape), 1.5)


@pytest.mark.parametrize(
    "shape, chunks", [((40, 44), (9, 11)), ((40, 44), (20, 22)), ((12, 30, 28), (4, 9, 8))]
)
def test_instances_that_fit_the_overlap_equal_whole_image_labels(shape, chunks):
    img = _blobs(shape)
    level = np.quantile(img, 0.85)
    whole = label(img > level, connectivity=1)
    widest = max(
        max(s.stop - s.start for s in sl) for sl in ndi.find_objects(whole) if sl is not None
    )
    p = TileLabelParams(level=level, halo=widest + 1)
    out, engine = run_steps(img, {"cells": ("tile_label", p, ("input",))}, "cells", chunks, ops=OPS)
    assert whole.max() > 5
    np.testing.assert_array_equal(out, whole)
    assert engine.labellings["cells"].count == whole.max()


def test_without_overlap_objects_split_at_block_borders():
    img = _blobs((40, 44), seed=1)
    level = np.quantile(img, 0.8)
    whole = label(img > level, connectivity=1)
    p = TileLabelParams(level=level, halo=0)
    out, _ = run_steps(img, {"cells": ("tile_label", p, ("input",))}, "cells", (10, 11), ops=OPS)
    assert out.max() > whole.max()  # nothing to match: pieces stay apart
    np.testing.assert_array_equal(out > 0, whole > 0)
