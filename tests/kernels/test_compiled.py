"""The compiled Gaussian and histogram loops equal scipy and numpy bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from pipeline.kernels import compiled
from pipeline.kernels.compiled import (
    apply_table,
    gaussian_float64,
    gaussian_weights,
    histogram_codes,
    histogram_counts,
    label_extents,
)
from pipeline.kernels.histogram import float_histogram
from pipeline.ops.filters import GaussianParams, gaussian

MODES = ("nearest", "constant", "reflect", "mirror")


def test_the_extension_is_built():
    """The loops below are tested in C, not through the library fallback."""
    assert compiled._loops is not None


def test_without_the_extension_the_library_answers(monkeypatch):
    monkeypatch.setattr(compiled, "_loops", None)
    image = np.arange(60, dtype=np.uint16).reshape(3, 4, 5)
    assert gaussian_float64(image, (1.0,) * 3, "nearest", 4.0) is None
    want = ndi.gaussian_filter(image, 1.0, mode="nearest", output=np.float64)
    np.testing.assert_array_equal(gaussian(image, GaussianParams()), want)
    assert histogram_counts(np.zeros(3), _edges(0.0, 1.0, 4)) is None
    labels = np.array([[0, 2, 2], [1, 0, 2]], np.uint16)
    sizes, first, box = label_extents(labels, 2)
    np.testing.assert_array_equal(sizes, [1, 3])
    np.testing.assert_array_equal(first, [3, 1])
    np.testing.assert_array_equal(box, [[1, 0, 2, 1], [0, 1, 2, 3]])
    table = np.array([5, 6, 7], np.uint32)
    np.testing.assert_array_equal(apply_table(labels, table), [[5, 7, 7], [6, 5, 7]])


def _image(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) > 0.6
    if dtype.kind == "f":
        return (rng.normal(500, 200, shape)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "dtype",
    [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64]
    + [np.float32, np.float64, bool],
)
def test_gaussian_equals_scipy_3d(mode, dtype):
    rng = np.random.default_rng(abs(hash((mode, np.dtype(dtype).str))) % 2**32)
    image = _image(rng, (13, 17, 11), dtype)
    for sigma in (1.0, 0.6, 2.2, (1.0, 0.0, 1.7)):
        want = ndi.gaussian_filter(image.astype(np.float64), sigma, mode=mode)
        got = gaussian_float64(image, np.broadcast_to(sigma, 3), mode, 4.0)
        assert got is not None and got.dtype == np.float64
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", MODES)
def test_gaussian_equals_scipy_2d(mode):
    rng = np.random.default_rng(7)
    image = _image(rng, (31, 26), np.uint16)
    for sigma, truncate in ((1.0, 4.0), (3.0, 2.5), ((0.8, 2.0), 4.0)):
        want = ndi.gaussian_filter(image, sigma, mode=mode, truncate=truncate, output=np.float64)
        got = gaussian_float64(image, np.broadcast_to(sigma, 2), mode, truncate)
        np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(*[st.integers(1, 12)] * 3),
    sigma=st.floats(0.3, 3.0),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**16),
)
def test_gaussian_any_shape(shape, sigma, mode, seed):
    """Axes shorter than the kernel (one voxel thick, too): equal, or left to scipy."""
    image = _image(np.random.default_rng(seed), shape, np.uint16)
    got = gaussian_float64(image, (sigma,) * 3, mode, 4.0)
    want = ndi.gaussian_filter(image, sigma, mode=mode, output=np.float64)
    if got is None:  # a reflecting mode on an axis shorter than the radius
        assert mode in ("reflect", "mirror")
        assert min(shape) <= gaussian_weights(sigma, 4.0).size - 1
    else:
        np.testing.assert_array_equal(got, want)


def test_gaussian_op_uses_compiled_loop_and_equals_scipy():
    image = _image(np.random.default_rng(3), (20, 24, 22), np.uint16)
    params = GaussianParams(sigma=[1.0, 1.5, 1.5])
    want = ndi.gaussian_filter(image, (1.0, 1.5, 1.5), mode="nearest", output=np.float64)
    np.testing.assert_array_equal(gaussian(image, params), want)
    float32 = gaussian(image, GaussianParams(sigma=1.0, dtype="float32"))  # scipy's path
    want32 = ndi.gaussian_filter(image, 1.0, mode="nearest", output=np.float32)
    np.testing.assert_array_equal(float32, want32)


def test_weights_are_scipys():
    for sigma, truncate in ((1.0, 4.0), (2.5, 3.0), (0.4, 4.0)):
        w = gaussian_weights(sigma, truncate)
        impulse = np.zeros(41)
        impulse[20] = 1.0
        full = ndi.gaussian_filter1d(impulse, sigma, truncate=truncate)
        np.testing.assert_array_equal(full[20 : 20 + w.size], w)
        assert w.size - 1 == int(truncate * sigma + 0.5)
    np.testing.assert_array_equal(gaussian_weights(0.0, 4.0), [1.0])


# A histogram range (lo, lo + width), its bins and the seed of its values.
RANGES = {
    "lo": st.floats(-1e6, 1e6),
    "width": st.floats(1e-9, 1e6),
    "nbins": st.integers(1, 300),
    "seed": st.integers(0, 2**16),
}


def _edges(lo, hi, n):
    return np.linspace(lo, hi, n + 1, endpoint=True, dtype=np.float64)


@pytest.mark.parametrize("nbins", [1, 7, 256])
def test_histogram_equals_numpy(nbins):
    rng = np.random.default_rng(nbins)
    values = rng.normal(0.3, 1.0, 50_000)
    lo, hi = np.float64(-1.7), np.float64(2.9)
    edges = _edges(lo, hi, nbins)
    # values on and one ulp around every edge, the range's ends, out of range and NaN
    near = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    values = np.concatenate([values, near, [np.nan, -np.inf, np.inf, lo, hi]])
    want, _ = np.histogram(values, nbins, (lo, hi))
    np.testing.assert_array_equal(histogram_counts(values, edges), want)
    block = values[:40_000].reshape(40, 1000)
    np.testing.assert_array_equal(
        float_histogram(block, lo=lo, hi=hi, nbins=nbins), np.histogram(block, nbins, (lo, hi))[0]
    )


@settings(max_examples=80, deadline=None)
@given(**RANGES)
def test_histogram_any_range(lo, width, nbins, seed):
    hi = lo + width
    if not hi > lo:
        return
    rng = np.random.default_rng(seed)
    edges = _edges(np.float64(lo), np.float64(hi), nbins)
    values = np.concatenate(
        [rng.uniform(lo - width / 4, hi + width / 4, 2000), edges, np.nextafter(edges, np.inf)]
    )
    try:
        want, _ = np.histogram(values, nbins, (np.float64(lo), np.float64(hi)))
    except ValueError:  # too many bins for the range: numpy's own message stands
        assert histogram_counts(values, edges) is None
        return
    np.testing.assert_array_equal(histogram_counts(values, edges), want)


@settings(max_examples=60, deadline=None)
@given(**RANGES)
def test_histogram_codes_equal_numpys(lo, width, nbins, seed):
    """The compiled codes equal the numpy ones: each value's bin is the one whose edges
    hold it, and its low bit says whether the value is past the bin's centre."""
    hi = lo + width
    if not hi > lo:
        return
    rng = np.random.default_rng(seed)
    edges = _edges(np.float64(lo), np.float64(hi), nbins)
    if not np.all(edges[:-1] < edges[1:]):
        return  # bins of no width: numpy refuses them
    centres = (edges[:-1] + edges[1:]) / 2.0
    marks = np.concatenate([edges, centres])
    values = np.concatenate(
        [rng.uniform(lo - width / 4, hi + width / 4, 2000), marks, np.nextafter(marks, np.inf)]
    )
    got, counts = histogram_codes(values, edges, centres)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(compiled, "_loops", None)
        numpy_codes, numpy_counts = histogram_codes(values, edges, centres)
    np.testing.assert_array_equal(numpy_codes, got)
    np.testing.assert_array_equal(numpy_counts, counts)
    np.testing.assert_array_equal(counts, np.bincount(got[got < 0xFFFE] >> 1, minlength=nbins))
    inside = (values >= lo) & (values <= edges[-1])
    assert (got[values > edges[-1]] == compiled.ABOVE_CODE).all()
    assert (got[values < lo] == compiled.OUTSIDE_CODE).all()
    bins = got[inside] >> 1
    v = values[inside]
    assert (edges[bins] <= v).all()
    assert ((v < edges[bins + 1]) | ((bins == nbins - 1) & (v == edges[-1]))).all()
    np.testing.assert_array_equal(got[inside] & 1, v > centres[bins])


def test_histogram_codes_where_bins_per_unit_overflow():
    """Over a range of a few subnormals, bins / range is infinite: each value's bin still
    comes from the edges."""
    tiny = np.nextafter(0.0, 1.0)
    edges = np.array([0.0, 2 * tiny, 4 * tiny, 6 * tiny])
    centres = (edges[:-1] + edges[1:]) / 2.0
    values = np.arange(7) * tiny
    codes, counts = histogram_codes(values, edges, centres)
    assert codes.tolist() == [0, 0, 2, 2, 4, 4, 5] and counts.tolist() == [2, 2, 3]


def test_histogram_codes_of_bins_of_no_width_come_from_numpy():
    edges, centres = np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0])
    values = np.array([0.5, 1.0, 2.0, np.nan])
    codes, counts = histogram_codes(values, edges, centres)
    assert codes.tolist() == [0xFFFF, 2, 0xFFFE, 0xFFFF] and counts.tolist() == [0, 1]


def test_histogram_leaves_other_cases_to_numpy():
    assert histogram_counts(np.zeros(3, np.float32), _edges(0.0, 1.0, 4)) is None
    assert histogram_counts(np.zeros(3), np.array([1.0, 1.0])) is None


def test_gaussian_leaves_other_element_types_to_scipy():
    for dtype in (np.float16, np.dtype(">u2")):
        image = np.ones((6, 6, 6), dtype)
        assert gaussian_float64(image, (1.0,) * 3, "nearest", 4.0) is None


@pytest.mark.parametrize(
    "shape", [(40, 37), (9, 21, 17), (1, 1, 5), (3, 1, 1), (4, 5, 3, 6), (50,)]
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int32, np.int64])
def test_label_extents_equal_a_direct_count(shape, dtype):
    rng = np.random.default_rng(len(shape) * 100 + np.dtype(dtype).itemsize)
    labels = rng.integers(0, 12, shape).astype(dtype) * (rng.random(shape) > 0.5)
    n = int(labels.max())
    sizes, first, box = label_extents(labels, n)
    for label in range(1, n + 1):
        where = np.argwhere(labels == label)
        assert sizes[label - 1] == len(where)
        if len(where) == 0:
            continue
        assert first[label - 1] == np.flatnonzero(labels.ravel() == label)[0]
        np.testing.assert_array_equal(box[label - 1, : len(shape)], where.min(axis=0))
        np.testing.assert_array_equal(box[label - 1, len(shape) :], where.max(axis=0) + 1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_trimmed_gaussian_equals_the_whole_volume(mode, dtype):
    """A block grown by the halo (clipped at the volume), trimmed back: the whole-volume
    result on the block, at the volume's edges and inside it, in 2D and 3D."""
    rng = np.random.default_rng(11)
    for shape, sigma in (((30, 26, 21), (1.0, 1.5, 0.7)), ((40, 33), (2.0, 1.0))):
        volume = _image(rng, shape, np.uint16)
        params = GaussianParams(sigma=list(sigma), mode=mode, dtype=dtype)
        want = ndi.gaussian_filter(volume, sigma, mode=mode, output=np.dtype(dtype))
        radii = [gaussian_weights(s, 4.0).size - 1 for s in sigma]
        for _ in range(12):
            lo = [int(rng.integers(0, n)) for n in shape]
            hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, shape, strict=True)]
            grown = [
                (max(0, a - r), min(n, b + r))
                for a, b, r, n in zip(lo, hi, radii, shape, strict=True)
            ]
            trim = tuple((a - g0, g1 - b) for a, b, (g0, g1) in zip(lo, hi, grown, strict=True))
            block = volume[tuple(slice(g0, g1) for g0, g1 in grown)]
            got = gaussian(block, params, trim)
            core = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
            np.testing.assert_array_equal(got, want[core])


def test_label_extents_refuse_labels_past_n():
    labels = np.array([[[0, 3, 1]]], np.uint32)
    with pytest.raises(ValueError, match="outside 0..2"):
        label_extents(labels, 2)
    with pytest.raises(ValueError, match="outside 0..5"):
        label_extents(np.array([[[-1, 2]]], np.int32), 5)


@pytest.mark.parametrize("labels_dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
@pytest.mark.parametrize("table_dtype", [np.uint32, np.uint64])
def test_apply_table_equals_numpy_indexing(labels_dtype, table_dtype):
    rng = np.random.default_rng(np.dtype(labels_dtype).itemsize)
    table = rng.integers(0, 2**31, 200).astype(table_dtype)
    labels = rng.integers(0, 200, (9, 13, 7)).astype(labels_dtype)
    got = apply_table(labels, table)
    assert got.dtype == table.dtype and got.shape == labels.shape
    np.testing.assert_array_equal(got, table[labels])
    np.testing.assert_array_equal(apply_table(labels[:, ::2], table), table[labels[:, ::2]])
    np.testing.assert_array_equal(apply_table(labels[0, 0, :0], table), table[:0])


def test_apply_table_refuses_labels_past_the_table_and_leaves_the_rest_to_numpy():
    with pytest.raises(IndexError, match="outside the table's 3 rows"):
        apply_table(np.array([0, 3], np.uint16), np.arange(3, dtype=np.uint32))
    signed = np.array([[2, -1]], np.int32)
    table = np.arange(5, dtype=np.uint32)
    np.testing.assert_array_equal(apply_table(signed, table), table[signed])  # -1: the last
    np.testing.assert_array_equal(
        apply_table(np.array([1, 0], np.uint8), np.array([7, 8], np.int64)), [8, 7]
    )
