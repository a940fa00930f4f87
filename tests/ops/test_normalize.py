"""Percentiles of the whole volume from block passes equal numpy's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.exposure import rescale_intensity

from pipeline.kernels import histogram
from pipeline.ops.normalize import NormalizeParams
from tests.conftest import run_steps

PERCENTILES = [(0.0, 100.0), (1.0, 99.8), (2.5, 97.5), (33.3, 50.0)]


def _image(dtype, shape=(9, 14, 13), seed=0):
    rng = np.random.default_rng(seed)
    img = rng.gamma(2.0, 300.0, shape)
    img[rng.random(shape) < 0.3] = 50  # many equal values
    if np.dtype(dtype).kind == "f":
        return img.astype(dtype)
    return np.clip(img, 0, np.iinfo(dtype).max).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("low, high", PERCENTILES)
@pytest.mark.parametrize("chunks", [(2, 5, 4), (9, 14, 13)])
def test_normalize_equals_whole_volume(dtype, low, high, chunks, monkeypatch):
    # A small gather limit makes float images go through several narrowing passes.
    monkeypatch.setattr(histogram, "GATHER_LIMIT", 40)
    img = _image(dtype)
    steps = {"norm": ("normalize", NormalizeParams(low=low, high=high), ("input",))}
    out, engine = run_steps(img, steps, "norm", chunks)
    lo, hi = np.percentile(img, (low, high))
    assert engine.resolved["norm"][:2] == (lo, hi)
    ref = rescale_intensity(img, in_range=(lo, hi), out_range=(0.0, 1.0))
    np.testing.assert_array_equal(out, ref)
    assert out.dtype == ref.dtype


def test_normalize_without_clipping_2d():
    img = _image(np.float64, shape=(31, 29))
    steps = {"norm": ("normalize", NormalizeParams(low=5, high=95, clip=False), ("input",))}
    out, _ = run_steps(img, steps, "norm", (8, 5))
    lo, hi = np.percentile(img, (5, 95))
    np.testing.assert_array_equal(out, (img - lo) / (hi - lo))
    assert out.min() < 0 and out.max() > 1


def test_low_must_be_below_high():
    with pytest.raises(ValueError, match="low .* must be below high"):
        NormalizeParams(low=90, high=10)
