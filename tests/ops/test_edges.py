"""Canny: 2D equals skimage.feature.canny on the whole image; 3D equals its whole-volume run."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import feature, measure

from pipeline.ops.edges import CannyArgs, CannyParams, edge_grades
from tests.conftest import run_steps


def _cells(shape, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    img = 60 + 120 * (ndi.gaussian_filter(rng.random(shape), 2.0) > 0.5)
    img = img + rng.normal(0, 12, shape)
    return np.clip(img, 0, 255).astype(dtype)


@pytest.mark.parametrize("chunks", [(5, 7), (13, 11), (30, 64), (64, 70)])
@pytest.mark.parametrize(
    "kw", [{}, {"sigma": 2.0, "low": 10, "high": 40}, {"sigma": 1.5, "mode": "nearest"}]
)
def test_canny_2d_equals_skimage(chunks, kw):
    img = _cells((64, 70))
    out, _ = run_steps(img, {"e": ("canny", CannyParams(**kw), ("input",))}, "e", chunks)
    ref = feature.canny(
        img,
        sigma=kw.get("sigma", 1.0),
        low_threshold=kw.get("low"),
        high_threshold=kw.get("high"),
        mode=kw.get("mode", "constant"),
    )
    assert ref.sum() > 50
    np.testing.assert_array_equal(out, ref)


def test_canny_2d_float_image():
    img = _cells((50, 45), seed=2).astype(np.float64) / 255
    p = CannyParams(sigma=1.0, low=0.05, high=0.15)
    out, _ = run_steps(img, {"e": ("canny", p, ("input",))}, "e", (9, 8))
    ref = feature.canny(img, sigma=1.0, low_threshold=0.05, high_threshold=0.15)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("chunks", [(3, 6, 7), (7, 20, 9), (16, 24, 22)])
def test_canny_3d_equals_whole_volume(chunks):
    img = _cells((16, 24, 22), seed=1)
    p = CannyParams(sigma=1.0, low=15, high=35)
    out, _ = run_steps(img, {"e": ("canny", p, ("input",))}, "e", chunks)
    grades = edge_grades(img, CannyArgs(p, 15 / 255, 35 / 255))
    lab = measure.label(grades > 0, connectivity=3)
    strong = np.zeros(lab.max() + 1, bool)
    strong[np.unique(lab[grades == 2])] = True
    strong[0] = False
    ref = strong[lab]
    assert ref.sum() > 100 and (ref != (grades > 0)).any()
    np.testing.assert_array_equal(out, ref)


def test_canny_low_above_high_is_an_error():
    with pytest.raises(ValueError, match="low .* must not exceed high"):
        CannyParams(low=5, high=1)


@pytest.mark.parametrize("chunks", [(7, 9), (30, 64), (64, 70)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_canny_2d_quantile_thresholds_of_the_whole_image(chunks, dtype):
    img = _cells((64, 70), seed=4)
    if dtype == np.float64:
        img = img / 255.0
    p = CannyParams(sigma=1.5, low=0.7, high=0.9, use_quantiles=True)
    out, _ = run_steps(img, {"e": ("canny", p, ("input",))}, "e", chunks)
    ref = feature.canny(img, sigma=1.5, low_threshold=0.7, high_threshold=0.9, use_quantiles=True)
    assert ref.sum() > 50
    np.testing.assert_array_equal(out, ref)


def test_canny_3d_quantiles_and_bad_quantile():
    img = _cells((12, 20, 18), seed=5)
    p = CannyParams(low=0.8, high=0.95, use_quantiles=True)
    out_a, _ = run_steps(img, {"e": ("canny", p, ("input",))}, "e", (4, 7, 6))
    out_b, _ = run_steps(img, {"e": ("canny", p, ("input",))}, "e", (12, 20, 18))
    assert out_a.any()
    np.testing.assert_array_equal(out_a, out_b)
    with pytest.raises(ValueError, match="quantile thresholds must be between 0 and 1"):
        CannyParams(low=2, high=3, use_quantiles=True)


@pytest.mark.parametrize("chunks", [(3, 9, 11), (5, 30, 64), (12, 64, 70)])
def test_canny_per_plane_of_a_stack_equals_skimage_per_plane(chunks):
    stack = np.stack([_cells((64, 70), seed=s) for s in range(12)])
    p = CannyParams(sigma=1.5, low=10, high=40, planes=True)
    out, _ = run_steps(stack, {"e": ("canny", p, ("input",))}, "e", chunks)
    ref = np.stack(
        [feature.canny(plane, sigma=1.5, low_threshold=10, high_threshold=40) for plane in stack]
    )
    np.testing.assert_array_equal(out, ref)


def test_canny_per_plane_quantiles_are_of_the_whole_stack():
    stack = np.stack([_cells((40, 44), seed=s) for s in range(5)])
    p = CannyParams(low=0.8, high=0.95, use_quantiles=True, planes=True)
    out_a, _ = run_steps(stack, {"e": ("canny", p, ("input",))}, "e", (2, 9, 11))
    out_b, _ = run_steps(stack, {"e": ("canny", p, ("input",))}, "e", (5, 40, 44))
    assert out_a.any()
    np.testing.assert_array_equal(out_a, out_b)
