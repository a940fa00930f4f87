"""The compiled connected-component loop equals skimage.measure.label, numbering included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi
from skimage.measure import label as sk_label

from pipeline.kernels import _loops, compiled
from pipeline.kernels.compiled import label_mask
from pipeline.kernels.labels import local_label


def _mask(seed: int, shape, density: float, blur: float) -> np.ndarray:
    """Random voxels, or (blurred first) blobs with long runs along every axis."""
    noise = np.random.default_rng(seed).random(shape)
    if blur:
        noise = ndi.gaussian_filter(noise, blur)
        return noise > np.quantile(noise, 1 - density) if noise.size else noise > 0
    return noise < density


@settings(max_examples=150, deadline=None)
@given(
    shape=st.lists(st.integers(1, 40), min_size=1, max_size=3),
    density=st.floats(0.0, 1.0),
    blur=st.sampled_from([0.0, 1.0, 2.5]),
    seed=st.integers(0, 2**31),
    data=st.data(),
)
def test_equals_skimage_label(shape, density, blur, seed, data):
    mask = _mask(seed, tuple(shape), density, blur)
    connectivity = data.draw(st.integers(1, mask.ndim))
    got = label_mask(mask, connectivity)
    assert got is not None and got.dtype == np.uint32 and got.shape == mask.shape
    np.testing.assert_array_equal(got, sk_label(mask, connectivity=connectivity))


@pytest.mark.parametrize("connectivity", [1, 2, 3])
def test_equals_skimage_label_on_a_block_of_shapes(connectivity):
    """Touching only along a face, an edge or a corner: joined exactly as connectivity says."""
    mask = np.zeros((6, 7, 19), bool)
    mask[1, 1, 1:17] = True  # a long run (past the 8-voxel steps)
    mask[2, 2, 17] = True  # a corner from its end
    mask[2, 1, 0] = True  # an edge from the run's start: (+1, 0, -1)
    mask[3, 3, 3:5] = True
    mask[4, 4, 5] = True  # corner to (3, 3, 4)
    mask[4, 3, 5:13] = True  # edge to (3, 3, 4)
    mask[5, :, :] = True  # a whole plane
    mask[0, 6, 18] = True  # the far corner alone
    np.testing.assert_array_equal(
        label_mask(mask, connectivity), sk_label(mask, connectivity=connectivity)
    )


def test_views_empty_and_full_masks():
    rng = np.random.default_rng(3)
    mask = rng.random((20, 30, 25)) < 0.4
    view = mask.transpose(2, 0, 1)[:, ::2]  # not contiguous
    np.testing.assert_array_equal(label_mask(view, 3), sk_label(view, connectivity=3))
    assert label_mask(np.zeros((4, 5, 6), bool), 1).max() == 0
    np.testing.assert_array_equal(label_mask(np.ones((4, 5, 6), bool), 1), 1)
    assert label_mask(np.zeros((0, 5), bool), 1).shape == (0, 5)


def test_leaves_other_cases_to_the_caller(monkeypatch):
    mask = np.ones((3, 4), bool)
    assert label_mask(mask.astype(np.uint8), 1) is None  # not a mask
    assert label_mask(mask, 3) is None  # more steps than axes
    assert label_mask(np.ones((2, 2, 2, 2), bool), 1) is None  # four axes
    monkeypatch.setattr(compiled, "_loops", None)
    assert label_mask(mask, 1) is None
    np.testing.assert_array_equal(local_label(mask, 1), 1)  # cc3d answers


def test_the_loop_checks_its_arguments():
    mask = np.ones((2, 3, 4), np.uint8)
    out = np.empty((2, 3, 4), np.uint32)
    assert _loops.label_mask(mask, out, 1) == 1
    with pytest.raises(ValueError, match="connectivity"):
        _loops.label_mask(mask, out, 4)
    with pytest.raises(ValueError, match="shape"):
        _loops.label_mask(mask, np.empty((2, 3, 5), np.uint32), 1)
    with pytest.raises(TypeError, match="uint32"):
        _loops.label_mask(mask, np.empty((2, 3, 4), np.int64), 1)
    with pytest.raises(TypeError, match="uint8"):
        _loops.label_mask(mask.astype(np.uint16), out, 1)


def test_local_label_takes_masks_here_and_equal_values_to_cc3d():
    rng = np.random.default_rng(5)
    mask = rng.random((16, 16, 16)) < 0.3
    np.testing.assert_array_equal(local_label(mask, 2), sk_label(mask, connectivity=2))
    classes = rng.integers(0, 3, (16, 16, 16)).astype(np.uint8)  # equal values join
    got, want = local_label(classes, 1), sk_label(classes, connectivity=1, background=0)
    assert got.max() == want.max()
    pairs = np.unique(np.stack([got[classes > 0], want[classes > 0]]), axis=1)
    assert pairs.shape[1] == want.max()  # one to one: the same partition
