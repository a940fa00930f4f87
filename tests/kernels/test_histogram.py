"""Histogram bin codes: a uint16 per voxel that a threshold at a bin centre can read."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.kernels.compiled import ABOVE_CODE, OUTSIDE_CODE
from pipeline.kernels.histogram import BinCodes, above_code, bin_edges


def _values(nbins: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random values, every edge and centre with their neighbouring floats, NaN and
    infinities; and the edges over the finite values' range."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.3, 1.0, 20_000)
    lo, hi = values.min(), values.max()
    edges = bin_edges(lo, hi, nbins, values.dtype)
    centres = (edges[:-1] + edges[1:]) / 2.0
    marks = np.concatenate([edges, centres])
    near = np.concatenate([marks, np.nextafter(marks, -np.inf), np.nextafter(marks, np.inf)])
    near = near[(near >= lo) & (near <= hi)]
    return np.concatenate([values, near, [np.nan, -np.inf, np.inf]]), edges


@pytest.mark.parametrize("nbins", [1, 2, 7, 256, 1000])
def test_codes_count_as_numpy_histogram(nbins):
    values, edges = _values(nbins, nbins)
    codes = BinCodes.over(edges)
    counts, got = codes.with_stand_in(values.reshape(1, -1))
    assert got.dtype == np.uint16 and got.shape == (1, values.size)
    want, _ = np.histogram(values, nbins, (edges[0], edges[-1]))
    np.testing.assert_array_equal(counts, want)
    # NaN and the infinities lie outside the range
    assert got[0, -3:].tolist() == [OUTSIDE_CODE, OUTSIDE_CODE, ABOVE_CODE]


@pytest.mark.parametrize("nbins", [2, 7, 256])
def test_codes_threshold_at_every_centre(nbins):
    values, edges = _values(nbins, 10 + nbins)
    codes = BinCodes.over(edges)
    _, got = codes.with_stand_in(values)
    for t in codes.centres:
        func, first = codes.decoder(t)
        np.testing.assert_array_equal(func(got, first), values > t)


def test_decoder_refuses_what_is_not_a_centre():
    codes = BinCodes.over(bin_edges(0.0, 1.0, 4, np.dtype(np.float64)))
    assert codes.decoder(codes.centres[1]) == (above_code, 3)
    assert codes.decoder(np.nextafter(codes.centres[1], 2.0)) is None
    assert codes.decoder(0.0) is None and codes.decoder(2.0) is None
    assert codes.decoder(np.array([0.125, 0.625])) is None  # several thresholds


@pytest.mark.parametrize(
    ("lo", "hi", "nbins", "dtype"),
    [
        (1e6, 1e6 + 1e-7, 256, np.float64),  # bins of a few hundred ulps
        (0.0, 1.0, 40_000, np.float64),  # two codes per bin do not fit 16 bits
        (0.0, 1.0, 256, np.float32),
    ],
)
def test_no_codes_where_they_could_not_be_exact(lo, hi, nbins, dtype):
    assert BinCodes.over(bin_edges(lo, hi, nbins, np.dtype(dtype))) is None
