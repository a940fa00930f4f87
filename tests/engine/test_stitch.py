"""Block summaries wait with their faces compressed; the pairs found from them are the same."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from skimage import measure

from pipeline.engine import stitch
from pipeline.engine.blocks import BlockPlan
from pipeline.engine.passes.label import lower_neighbours
from pipeline.kernels.labels import summarise_block


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int64, np.float32])
def test_packed_faces_read_back_equal_and_survive_pickling(dtype):
    rng = np.random.default_rng(2)
    faces = [rng.integers(0, 9, size=s).astype(dtype) for s in [(5, 7), (4, 7), (4, 5)]]
    packed = pickle.loads(pickle.dumps(stitch.PackedFaces(faces)))
    assert len(packed) == 3
    for a, face in enumerate(faces):
        back = packed[a]
        assert back.dtype == face.dtype and back.shape == face.shape
        np.testing.assert_array_equal(back, face)


def test_a_mostly_background_face_waits_much_smaller():
    face = np.zeros((128, 128), np.uint16)
    face[10:20, 30:45] = 7
    face[90:100, 5:9] = 12
    packed = stitch.PackedFaces([face])
    assert len(packed.blobs[0]) * 10 < face.nbytes
    np.testing.assert_array_equal(packed[0], face)


@pytest.mark.parametrize("connectivity", [1, 2, 3])
@pytest.mark.parametrize("integer_input", [False, True])
def test_pairs_from_packed_summaries_equal_the_pairs_from_plain_ones(connectivity, integer_input):
    rng = np.random.default_rng(connectivity)
    shape = (18, 21, 16)
    image = rng.integers(0, 3, size=shape).astype(np.uint8)
    plan = BlockPlan.regular(shape, (7, 8, 6))
    plain, packed = {}, {}
    for i in plan.indices():
        box = plan.box(i)
        block = image[tuple(slice(lo, hi) for lo, hi in box)]
        if integer_input:
            labels = measure.label(block, background=0, connectivity=connectivity)
            values = block
        else:
            labels = measure.label(block > 0, connectivity=connectivity)
            values = None
        summary = summarise_block(labels, values, tuple(lo for lo, _ in box), shape)
        plain[i] = summary
        packed[i] = stitch.packed(summary)
    found = 0
    for i in plan.indices():
        nbs = lower_neighbours(plan, i, connectivity)
        want = stitch.block_pairs(plan, i, connectivity, plain[i], {n: plain[n] for n in nbs})
        got = stitch.block_pairs(plan, i, connectivity, packed[i], {n: packed[n] for n in nbs})
        np.testing.assert_array_equal(got, want)
        found += len(want)
    assert found > 0
