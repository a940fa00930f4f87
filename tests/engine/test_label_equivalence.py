"""Stitched labels equal skimage.measure.label on the whole array, at any chunking."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi
from skimage.measure import label

from pipeline.ops.labelling import LabelParams, RemoveSmallObjectsParams
from tests.conftest import run_steps


def chunked_label(array, connectivity, chunks):
    role = "mask" if array.dtype == bool else "labels"
    steps = {"lab": ("label", LabelParams(connectivity=connectivity), ("input",))}
    out, _ = run_steps(array, steps, "lab", chunks, role=role)
    return out


CHUNKINGS_3D = [(1, 1, 1), (1, 7, 3), (2, 2, 2), (3, 5, 4), (8, 8, 8), (13, 1, 13), (40, 40, 40)]
CHUNKINGS_2D = [(1, 1), (1, 9), (2, 3), (5, 4), (7, 7), (16, 3), (64, 64)]


@pytest.mark.parametrize("density", [0.05, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("connectivity", [1, 2, 3])
@pytest.mark.parametrize("chunks", CHUNKINGS_3D)
def test_random_masks_3d(density, connectivity, chunks):
    rng = np.random.default_rng(int(density * 100) + connectivity)
    mask = rng.random((9, 10, 8)) < density
    np.testing.assert_array_equal(
        chunked_label(mask, connectivity, chunks), label(mask, connectivity=connectivity)
    )


@pytest.mark.parametrize("density", [0.1, 0.45, 0.6])
@pytest.mark.parametrize("connectivity", [1, 2])
@pytest.mark.parametrize("chunks", CHUNKINGS_2D)
def test_random_masks_2d(density, connectivity, chunks):
    rng = np.random.default_rng(int(density * 100) + connectivity)
    mask = rng.random((37, 29)) < density
    np.testing.assert_array_equal(
        chunked_label(mask, connectivity, chunks), label(mask, connectivity=connectivity)
    )


def test_uneven_irregular_chunks():
    rng = np.random.default_rng(3)
    mask = rng.random((20, 21)) < 0.5
    chunks = ((3, 1, 9, 7), (10, 1, 1, 9))
    for conn in (1, 2):
        np.testing.assert_array_equal(
            chunked_label(mask, conn, chunks), label(mask, connectivity=conn)
        )


def spiral(n: int) -> np.ndarray:
    img = np.zeros((n, n), dtype=bool)
    top, left, bottom, right = 0, 0, n - 1, n - 1
    while top <= bottom and left <= right:
        img[top, left : right + 1] = True
        img[top : bottom + 1, right] = True
        if top + 2 <= bottom:
            img[bottom, left : right + 1] = True
        if left + 2 <= right and top + 2 <= bottom:
            img[top + 2 : bottom + 1, left] = True
        top, left, bottom, right = top + 2, left + 2, bottom - 2, right - 2
        if top <= bottom:
            img[top - 1, left - 2 + 0 if left - 2 >= 0 else 0] = True
    return img


@pytest.mark.parametrize("chunks", [(1, 1), (2, 2), (3, 7), (5, 5)])
def test_spiral_crosses_many_blocks(chunks):
    img = spiral(31)
    for conn in (1, 2):
        ref = label(img, connectivity=conn)
        np.testing.assert_array_equal(chunked_label(img, conn, chunks), ref)


@pytest.mark.parametrize("chunks", [(2, 2, 2), (3, 3, 3), (1, 4, 2)])
def test_diagonal_lines_through_block_corners(chunks):
    vol = np.zeros((12, 12, 12), dtype=bool)
    i = np.arange(12)
    vol[i, i, i] = True  # only corner-connected: one object at conn 3, 12 at conn 1
    vol[i, i, 11 - i] = True
    vol[i[::2], 11 - i[::2], 5] = True
    for conn in (1, 2, 3):
        ref = label(vol, connectivity=conn)
        np.testing.assert_array_equal(chunked_label(vol, conn, chunks), ref)
    assert chunked_label(vol, 3, chunks).max() < chunked_label(vol, 1, chunks).max()


@pytest.mark.parametrize("fill", [False, True])
def test_empty_and_full(fill):
    vol = np.full((9, 10, 11), fill, dtype=bool)
    out = chunked_label(vol, 1, (4, 3, 5))
    np.testing.assert_array_equal(out, label(vol, connectivity=1))
    assert out.max() == int(fill)


@pytest.mark.parametrize("connectivity", [1, 3])
def test_integer_label_input(connectivity):
    rng = np.random.default_rng(7)
    vol = rng.integers(0, 4, size=(12, 14, 9)).astype(np.int32)
    np.testing.assert_array_equal(
        chunked_label(vol, connectivity, (5, 3, 4)), label(vol, connectivity=connectivity)
    )


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    ndim=st.sampled_from([2, 3]),
    density=st.floats(0.05, 0.8),
    seed=st.integers(0, 2**16),
)
def test_any_chunking_gives_identical_labels(data, ndim, density, seed):
    shape = tuple(data.draw(st.integers(1, 14)) for _ in range(ndim))
    chunks = tuple(data.draw(st.integers(1, n)) for n in shape)
    conn = data.draw(st.integers(1, ndim))
    mask = np.random.default_rng(seed).random(shape) < density
    np.testing.assert_array_equal(chunked_label(mask, conn, chunks), label(mask, connectivity=conn))


@pytest.mark.parametrize("renumber", [True, False])
@pytest.mark.parametrize("chunks", [(2, 3, 4), (5, 5, 5)])
def test_remove_small_objects_uses_stitched_sizes(renumber, chunks):
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import relabel_sequential

    rng = np.random.default_rng(11)
    mask = rng.random((15, 16, 14)) < 0.35
    steps = {
        "lab": ("label", LabelParams(connectivity=1), ("input",)),
        "big": (
            "remove_small_objects",
            RemoveSmallObjectsParams(min_size=6, renumber=renumber),
            ("lab",),
        ),
    }
    out, engine = run_steps(mask, steps, "big", chunks, role="mask")
    ref = remove_small_objects(label(mask, connectivity=1), max_size=5)
    if renumber:
        ref = relabel_sequential(ref)[0]
    np.testing.assert_array_equal(out, ref)
    assert engine.labellings["big"].count == len(np.unique(ref)) - 1


def test_remove_small_objects_on_mask():
    from skimage.morphology import remove_small_objects

    rng = np.random.default_rng(12)
    mask = rng.random((30, 31)) < 0.4
    steps = {
        "big": (
            "remove_small_objects",
            RemoveSmallObjectsParams(min_size=4, connectivity=2),
            ("input",),
        )
    }
    out, _ = run_steps(mask, steps, "big", (4, 7), role="mask")
    np.testing.assert_array_equal(out, remove_small_objects(mask, max_size=3, connectivity=2))


def test_unique_pairs_equals_numpy_unique():
    from pipeline.engine.stitch import unique_pairs

    rng = np.random.default_rng(11)
    for n in (0, 1, 7, 500):
        pairs = rng.integers(0, 6, size=(n, 2)).astype(np.int64) << rng.integers(0, 40)
        pairs[:, 1] += np.int64(3) << 33
        np.testing.assert_array_equal(unique_pairs(pairs), np.unique(pairs, axis=0).reshape(-1, 2))


@pytest.mark.parametrize("chunks", [(2, 3, 4), (5, 9, 7), (12, 30, 30)])
def test_object_bounding_boxes_equal_regionprops(chunks):
    from skimage.measure import regionprops_table

    rng = np.random.default_rng(5)
    mask = ndi.gaussian_filter(rng.random((12, 30, 30)), 1.5) > 0.53
    _, engine = run_steps(
        mask, {"obj": ("label", LabelParams(), ("input",))}, "obj", chunks, "mask"
    )
    ref = regionprops_table(label(mask), properties=("bbox",))
    got = engine.labellings["obj"].bbox
    want = np.stack([ref[f"bbox-{i}"] for i in range(6)], axis=1)
    np.testing.assert_array_equal(got, want)
