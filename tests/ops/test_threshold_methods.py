"""Every global threshold method equals its scikit-image function on the whole array."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import filters

from pipeline.errors import ConfigError
from pipeline.ops.filters import GaussianParams
from pipeline.ops.threshold import ThresholdParams
from tests.conftest import run_steps

SKIMAGE = {
    "otsu": filters.threshold_otsu,
    "yen": filters.threshold_yen,
    "isodata": filters.threshold_isodata,
    "triangle": filters.threshold_triangle,
    "li": filters.threshold_li,
    "mean": filters.threshold_mean,
}
CHUNKINGS = [(1, 5, 4), (3, 7, 6), (4, 16, 16), (20, 20, 20)]


def _nuclei(dtype, shape=(10, 16, 15), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(300, 40, shape) + 400 * (ndi.gaussian_filter(rng.random(shape), 1.5) > 0.52)
    return np.clip(img, 0, None).astype(dtype)


@pytest.mark.parametrize("method", sorted(SKIMAGE))
@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_integer_thresholds_equal_skimage(method, chunks, dtype):
    img = _nuclei(dtype)
    steps = {"mask": ("threshold", ThresholdParams(method=method), ("input",))}
    out, engine = run_steps(img, steps, "mask", chunks)
    t = SKIMAGE[method](img)
    assert engine.thresholds["mask"] == t
    np.testing.assert_array_equal(out, img > t)


@pytest.mark.parametrize("method", ["otsu", "yen", "isodata", "triangle"])
@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_float_histogram_thresholds_equal_skimage(method, chunks):
    img = _nuclei(np.uint16)
    steps = {
        "smooth": ("gaussian", GaussianParams(sigma=1.0), ("input",)),
        "mask": ("threshold", ThresholdParams(method=method), ("smooth",)),
    }
    out, engine = run_steps(img, steps, "mask", chunks)
    smooth = ndi.gaussian_filter(img.astype(np.float64), 1.0, mode="nearest")
    t = SKIMAGE[method](smooth)
    assert engine.thresholds["mask"] == t
    np.testing.assert_array_equal(out, smooth > t)


@pytest.mark.parametrize("method", ["li", "mean"])
@pytest.mark.parametrize("chunks", [(1, 5, 4), (4, 16, 16)])
def test_float_sum_thresholds_within_rounding(method, chunks):
    img = _nuclei(np.float64)
    steps = {"mask": ("threshold", ThresholdParams(method=method), ("input",))}
    out, engine = run_steps(img, steps, "mask", chunks)
    t = SKIMAGE[method](img.copy())
    assert engine.thresholds["mask"] == pytest.approx(t, rel=1e-9)
    np.testing.assert_array_equal(out, img > t)


@pytest.mark.parametrize("classes", [2, 3, 4])
@pytest.mark.parametrize("chunks", [(2, 5, 7), (10, 16, 15)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_multi_otsu_classes_equal_skimage(classes, chunks, dtype):
    img = _nuclei(np.uint8, seed=3)
    img = img.astype(dtype) + (np.arange(img.shape[2]) * 3).astype(dtype)
    params = ThresholdParams(method="multi_otsu", classes=classes)
    steps = {"classes": ("threshold", params, ("input",))}
    out, engine = run_steps(img, steps, "classes", chunks)
    t = filters.threshold_multiotsu(img, classes=classes)
    np.testing.assert_array_equal(engine.thresholds["classes"], t)
    np.testing.assert_array_equal(out, np.digitize(img, bins=t))
    assert out.dtype == np.uint8 and out.max() == classes - 1


def test_two_dimensional_and_flat_images():
    img = _nuclei(np.uint16, shape=(40, 37))
    steps = {"mask": ("threshold", ThresholdParams(method="yen"), ("input",))}
    out, engine = run_steps(img, steps, "mask", (7, 9))
    assert engine.thresholds["mask"] == filters.threshold_yen(img)
    flat = np.full((6, 7), 9, np.uint16)
    for method in ("otsu", "li", "triangle", "isodata"):
        steps = {"mask": ("threshold", ThresholdParams(method=method), ("input",))}
        out, engine = run_steps(flat, steps, "mask", (2, 3))
        assert engine.thresholds["mask"] == 9 and not out.any()


def test_multi_otsu_too_few_values_is_a_data_error():
    from pipeline.errors import DataError

    img = np.repeat([[1, 2]], 5, axis=0).astype(np.uint8)
    steps = {"c": ("threshold", ThresholdParams(method="multi_otsu", classes=4), ("input",))}
    with pytest.raises(DataError, match="step 'c'.*cannot be thresholded in 4 classes"):
        run_steps(img, steps, "c", (2, 2))


def test_bad_threshold_params_are_config_errors(tmp_path):
    from pipeline.config import load_config

    cfg = {
        "input": {"path": str(tmp_path / "x.npy")},
        "steps": {"mask": {"op": "threshold", "method": "kapur"}, "obj": {"op": "label"}},
        "output": {"path": str(tmp_path / "out"), "labels": "obj"},
    }
    with pytest.raises(ConfigError, match=r"steps\.mask\.method.*'otsu'.*'multi_otsu'"):
        load_config(cfg)
