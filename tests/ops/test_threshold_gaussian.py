"""Chunked Gaussian and global Otsu equal scipy / scikit-image on the whole array."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from pipeline.kernels.histogram import float_histogram
from pipeline.ops.filters import GaussianParams
from pipeline.ops.threshold import ThresholdParams
from tests.conftest import run_steps


def smooth_otsu_steps(sigma):
    return {
        "smooth": ("gaussian", GaussianParams(sigma=sigma), ("input",)),
        "mask": ("threshold", ThresholdParams(method="otsu"), ("smooth",)),
    }


@pytest.mark.parametrize("chunks", [(1, 4, 3), (2, 3, 5), (4, 4, 4), (7, 16, 3), (20, 20, 20)])
@pytest.mark.parametrize("sigma", [1.0, [0.5, 1.5, 2.0]])
def test_gaussian_bitwise_equal_whole(chunks, sigma):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 4000, size=(11, 16, 13)).astype(np.uint16)
    steps = {"smooth": ("gaussian", GaussianParams(sigma=sigma), ("input",))}
    out, _ = run_steps(img, steps, "smooth", chunks)
    ref = ndi.gaussian_filter(img.astype(np.float64), sigma, mode="nearest", truncate=4.0)
    np.testing.assert_array_equal(out, ref)


def test_chained_gaussians_add_halos():
    rng = np.random.default_rng(1)
    img = rng.random((19, 23))
    p1, p2 = GaussianParams(sigma=1.0), GaussianParams(sigma=[2.0, 0.7])
    steps = {"a": ("gaussian", p1, ("input",)), "b": ("gaussian", p2, ("a",))}
    out, engine = run_steps(img, steps, "b", (3, 4))
    ref = ndi.gaussian_filter(
        ndi.gaussian_filter(img, 1.0, mode="nearest"), [2.0, 0.7], mode="nearest"
    )
    np.testing.assert_array_equal(out, ref)
    assert engine.program("b").margins["input"] == (4 + 8, 4 + 3)


@pytest.mark.parametrize("chunks", [(1, 5, 5), (3, 4, 7), (9, 9, 9)])
def test_otsu_float_equals_skimage(chunks):
    rng = np.random.default_rng(2)
    img = (rng.normal(1000, 200, (9, 15, 14)) + 500 * (rng.random((9, 15, 14)) < 0.2)).astype(
        np.uint16
    )
    out, engine = run_steps(img, smooth_otsu_steps(1.0), "mask", chunks)
    smooth = ndi.gaussian_filter(img.astype(np.float64), 1.0, mode="nearest", truncate=4.0)
    t = threshold_otsu(smooth)
    assert engine.thresholds["mask"] == t
    np.testing.assert_array_equal(out, smooth > t)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32])
def test_otsu_integer_equals_skimage(dtype):
    rng = np.random.default_rng(3)
    img = rng.integers(-50 if dtype in (np.int16, np.int32) else 3, 200, (17, 19)).astype(dtype)
    steps = {"mask": ("threshold", ThresholdParams(method="otsu"), ("input",))}
    out, engine = run_steps(img, steps, "mask", (4, 6))
    t = threshold_otsu(img)
    assert engine.thresholds["mask"] == t
    np.testing.assert_array_equal(out, img > t)


def test_otsu_flat_image_returns_its_value():
    img = np.full((6, 7), 42, dtype=np.uint8)
    steps = {"mask": ("threshold", ThresholdParams(method="otsu"), ("input",))}
    _, engine = run_steps(img, steps, "mask", (2, 3))
    assert engine.thresholds["mask"] == threshold_otsu(img) == 42


def test_float_histogram_matches_numpy():
    rng = np.random.default_rng(4)
    a = rng.normal(0, 1, 100_000)
    lo, hi = a.min(), a.max()
    parts = sum(float_histogram(p, lo=lo, hi=hi, nbins=256) for p in np.array_split(a, 7))
    np.testing.assert_array_equal(parts, np.histogram(a, 256, (lo, hi))[0])


def test_fixed_threshold_is_strict():
    img = np.arange(20, dtype=np.float32).reshape(4, 5)
    steps = {"mask": ("threshold", ThresholdParams(value=7), ("input",))}
    out, _ = run_steps(img, steps, "mask", (2, 2))
    np.testing.assert_array_equal(out, img > 7)
