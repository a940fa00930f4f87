"""Clean-up decided on stitched objects equals the whole-image function at any chunking."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import filters, measure, morphology, segmentation

from pipeline.ops.cleanup import (
    ClearBorderParams,
    FillHolesParams,
    HolesParams,
    HysteresisParams,
)
from pipeline.ops.labelling import LabelParams
from tests.conftest import run_steps

CHUNKS = [(3, 5, 6), (4, 9, 7), (5, 8, 30), (12, 30, 30)]
CHUNKS_2D = [(3, 4), (7, 11), (40, 40)]


def _mask(shape, seed=0, fill=0.45, sigma=1.5):
    rng = np.random.default_rng(seed)
    g = ndi.gaussian_filter(rng.random(shape), sigma)
    return g > np.quantile(g, 1 - fill)


def _rings(shape):
    """Hollow shells and rings: holes that cross many blocks, and holes open to the border."""
    grid = np.indices(shape).astype(float)
    centre = [(n - 1) / 2 for n in shape]
    r = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)))
    m = (r > 5) & (r < 8)
    m |= _mask(shape, seed=7, fill=0.1)
    return m


def _cases():
    return [((12, 30, 30), c) for c in CHUNKS] + [((40, 40), c) for c in CHUNKS_2D]


@pytest.mark.parametrize("shape, chunks", _cases())
@pytest.mark.parametrize("conn", [1, 2])
def test_fill_holes(shape, chunks, conn):
    mask = _rings(shape)
    p = FillHolesParams(connectivity=conn)
    out, _ = run_steps(mask, {"f": ("fill_holes", p, ("input",))}, "f", chunks, role="mask")
    structure = ndi.generate_binary_structure(len(shape), conn)
    ref = ndi.binary_fill_holes(mask, structure=structure)
    assert (ref & ~mask).any()  # there are holes to fill
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("shape, chunks", _cases())
@pytest.mark.parametrize("max_size", [0, 3, 40, 10_000])
def test_remove_small_holes(shape, chunks, max_size):
    mask = _mask(shape, fill=0.6)
    p = HolesParams(max_size=max_size)
    out, _ = run_steps(mask, {"h": ("remove_small_holes", p, ("input",))}, "h", chunks, "mask")
    np.testing.assert_array_equal(out, morphology.remove_small_holes(mask, max_size=max_size))


@pytest.mark.parametrize("shape, chunks", _cases())
def test_clear_border_of_a_mask(shape, chunks):
    mask = _mask(shape, fill=0.3)
    p = ClearBorderParams()
    out, engine = run_steps(mask, {"c": ("clear_border", p, ("input",))}, "c", chunks, "mask")
    ref = segmentation.clear_border(mask)
    assert out.dtype == bool and ref.any() and (ref != mask).any()
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize("renumber", [False, True])
def test_clear_border_of_labels_keeps_ids(chunks, renumber):
    mask = _mask((12, 30, 30), fill=0.3)
    steps = {
        "obj": ("label", LabelParams(connectivity=1), ("input",)),
        "c": ("clear_border", ClearBorderParams(renumber=renumber), ("obj",)),
    }
    out, engine = run_steps(mask, steps, "c", chunks, role="mask")
    ref = segmentation.clear_border(measure.label(mask, connectivity=1))
    if renumber:
        ref = measure.label(ref > 0, connectivity=1)
    np.testing.assert_array_equal(out, ref)
    assert engine.labellings["c"].count == len(np.unique(ref)) - 1


@pytest.mark.parametrize("shape, chunks", _cases())
@pytest.mark.parametrize("inclusive, conn", [(False, 1), (True, 2)])
def test_hysteresis(shape, chunks, inclusive, conn):
    rng = np.random.default_rng(3)
    img = ndi.gaussian_filter(rng.random(shape), 1.0)
    low, high = np.quantile(img, [0.5, 0.97])
    p = HysteresisParams(low=low, high=high, inclusive=inclusive, connectivity=conn)
    out, _ = run_steps(img, {"h": ("hysteresis_threshold", p, ("input",))}, "h", chunks)
    if not inclusive and conn == 1:
        ref = filters.apply_hysteresis_threshold(img, low, high)
    else:  # the canny form: >= and full connectivity
        lab = measure.label(img >= low, connectivity=conn)
        strong = np.zeros(lab.max() + 1, bool)
        strong[np.unique(lab[img >= high])] = True
        strong[0] = False
        ref = strong[lab]
    assert ref.any() and (ref != (img > low)).any()
    np.testing.assert_array_equal(out, ref)


def test_hysteresis_low_above_high_is_an_error():
    with pytest.raises(ValueError, match="low .* must not exceed high"):
        HysteresisParams(low=2, high=1)


def _fill_per_object_reference(labels: np.ndarray, conn: int) -> np.ndarray:
    """Background components off the border whose neighbours are all one object."""
    footprint = ndi.generate_binary_structure(labels.ndim, conn)
    comps = measure.label(labels == 0, connectivity=conn)
    out = labels.copy()
    for region in measure.regionprops(comps):
        comp = comps == region.label
        if any(np.take(comp, i, axis=a).any() for a in range(labels.ndim) for i in (0, -1)):
            continue
        around = np.unique(labels[ndi.binary_dilation(comp, footprint) & ~comp])
        if len(around) == 1 and around[0] != 0:
            out[comp] = around[0]
    return out


@pytest.mark.parametrize(
    "shape, chunks", [((12, 30, 30), (3, 5, 6)), ((12, 30, 30), (5, 8, 30)), ((40, 40), (3, 4))]
)
@pytest.mark.parametrize("conn", [1, 2])
def test_fill_holes_per_object(shape, chunks, conn):
    rings = _rings(shape)
    labels_in = measure.label(rings, connectivity=1)
    steps = {
        "obj": ("label", LabelParams(connectivity=1), ("input",)),
        "f": ("fill_holes", FillHolesParams(connectivity=conn), ("obj",)),
    }
    out, engine = run_steps(rings, steps, "f", chunks, role="mask")
    ref = _fill_per_object_reference(labels_in, conn)
    assert (ref != labels_in).any()
    np.testing.assert_array_equal(out, ref)
    assert engine.labellings["f"].count == labels_in.max()
