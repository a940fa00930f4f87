"""Block pieces of the pooled projection assemble into the whole volume's projection."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipeline.engine.blocks import BlockPlan
from pipeline.measure.projection import assemble_projection, block_projection, projection_factor


def pooled_whole(volume: np.ndarray, f: int) -> np.ndarray:
    """Max projection along z, then the maximum over f×f cells (cut-off cells too)."""
    plane = volume.max(axis=0) if volume.ndim == 3 else volume
    ny, nx = -(-plane.shape[0] // f), -(-plane.shape[1] // f)
    out = np.empty((ny, nx), plane.dtype)
    for r, c in itertools.product(range(ny), range(nx)):
        out[r, c] = plane[r * f : (r + 1) * f, c * f : (c + 1) * f].max()
    return out


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "shape, block",
    [((9, 23, 31), (4, 7, 10)), ((9, 23, 31), (9, 5, 31)), ((37, 29), (8, 13)), ((8, 8), (1, 1))],
)
@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int8, np.bool_])
def test_blocks_assemble_to_whole(shape, block, factor, dtype):
    rng = np.random.default_rng(sum(shape) + factor)
    vol = (rng.normal(0, 40, shape)).astype(dtype) if dtype != np.bool_ else rng.random(shape) > 0.7
    plan = BlockPlan.regular(shape, block)
    pieces = []
    for i in plan.indices():
        box = plan.box(i)
        pieces.append(block_projection(vol[tuple(slice(a, b) for a, b in box)], box, factor))
    got = assemble_projection(pieces, shape, factor)
    want = pooled_whole(vol.view(np.uint8) if dtype == np.bool_ else vol, factor)
    np.testing.assert_array_equal(got, want)


def test_factor_keeps_pictures_readable():
    assert projection_factor((100, 512, 512)) == 1
    assert projection_factor((100, 1025, 300)) == 2
    assert projection_factor((20000, 20000)) == 32
