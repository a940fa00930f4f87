"""Block summaries: faces packed while they wait for the neighbours' summaries."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.ops.labelling import Face, summarise_block


@pytest.mark.parametrize(
    "face",
    [
        np.zeros((5, 7), np.uint16),
        np.arange(35, dtype=np.uint32).reshape(5, 7) % 4,
        np.full((3, 1), 65535, np.uint16),
        np.zeros((0, 4), np.uint16),
        np.random.default_rng(0).integers(0, 3, (9, 13)).astype(np.uint64) * 2**40,
    ],
)
def test_face_round_trip(face):
    packed = Face.pack(face)
    back = packed.unpack()
    assert back.dtype == face.dtype and back.shape == face.shape
    np.testing.assert_array_equal(back, face)


def test_summary_faces_are_the_block_slabs():
    labels = np.random.default_rng(1).integers(0, 5, (4, 6, 8)).astype(np.int32)
    s = summarise_block(labels, None, (0, 0, 0), (8, 12, 16))
    for a in range(3):
        np.testing.assert_array_equal(s.lo_faces[a].unpack(), np.take(labels, 0, axis=a))
        np.testing.assert_array_equal(s.hi_faces[a].unpack(), np.take(labels, -1, axis=a))
        # Sparse faces take less than the slab: a bit per voxel and the labels present.
        assert s.lo_faces[a].bits.nbytes == -(-np.take(labels, 0, axis=a).size // 8)
