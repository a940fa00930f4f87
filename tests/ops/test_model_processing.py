"""bioimage.io pre- and postprocessing against their definitions, statistics per index of
the axes not taken over, and the real U-Net's own steps turning its test input into its
test output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.ops.model_processing import Statistic, apply, statistics, whole_statistics

RNG = np.random.default_rng(4)
X = RNG.normal(50, 10, (1, 2, 6, 7))  # b, c, y, x
AXES = "bcyx"


def test_zero_mean_unit_variance_per_channel():
    kwargs = {"axes": ["y", "x"], "eps": 1e-6}
    needed = statistics("zero_mean_unit_variance", kwargs, AXES)
    assert needed == [Statistic("mean", "yx"), Statistic("std", "yx")]
    got = apply("zero_mean_unit_variance", kwargs, X, AXES, whole_statistics(X, AXES, needed))
    for c in range(2):
        plane = X[0, c]
        np.testing.assert_allclose(got[0, c], (plane - plane.mean()) / (plane.std() + 1e-6))
    # without axes: every axis but the batch, one mean over both channels
    whole = statistics("zero_mean_unit_variance", {}, AXES)
    assert whole[0].over == "cyx"
    got = apply("zero_mean_unit_variance", {}, X, AXES, whole_statistics(X, AXES, whole))
    np.testing.assert_allclose(got, (X - X.mean()) / (X.std() + 1e-6))


def test_scale_range_with_percentiles():
    kwargs = {"axes": ["channel", "y", "x"], "min_percentile": 1, "max_percentile": 99.8}
    needed = statistics("scale_range", kwargs, AXES)
    assert [(s.kind, s.q) for s in needed] == [("percentile", 1.0), ("percentile", 99.8)]
    got = apply("scale_range", kwargs, X, AXES, whole_statistics(X, AXES, needed))
    lo, hi = np.percentile(X, [1, 99.8])
    np.testing.assert_allclose(got, (X - lo) / (hi - lo + 1e-6))


def test_steps_without_statistics():
    np.testing.assert_allclose(apply("sigmoid", {}, X, AXES), 1 / (1 + np.exp(-X)))
    np.testing.assert_allclose(apply("clip", {"min": 45, "max": 55}, X, AXES), np.clip(X, 45, 55))
    per_channel = {"gain": [2.0, 3.0], "offset": [1.0, -1.0], "axis": "channel"}
    got = apply("scale_linear", per_channel, X, AXES)
    np.testing.assert_allclose(got[0, 0], X[0, 0] * 2 + 1)
    np.testing.assert_allclose(got[0, 1], X[0, 1] * 3 - 1)
    np.testing.assert_allclose(apply("scale_linear", {"gain": 0.5}, X, AXES), X * 0.5)
    mask = apply("binarize", {"threshold": [40.0, 60.0], "axis": "channel"}, X, AXES)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask[0, 1], X[0, 1] > 60)
    fixed = {"mean": [50.0, 40.0], "std": [10.0, 5.0], "axis": "channel"}
    got = apply("fixed_zero_mean_unit_variance", fixed, X, AXES)
    np.testing.assert_allclose(got[0, 1], (X[0, 1] - 40) / (5 + 1e-6))
    assert apply("ensure_dtype", {"dtype": "uint8"}, X, AXES).dtype == np.uint8


def test_unknown_steps_and_missing_statistics():
    with pytest.raises(ValueError, match="'scale_mean_variance' is not supported"):
        apply("scale_mean_variance", {"reference_tensor": "raw"}, X, AXES, [0, 1])
    with pytest.raises(ValueError, match="needs its statistics"):
        apply("zero_mean_unit_variance", {}, X, AXES)


def test_the_unet_steps_give_its_test_output():
    """The real package's preprocessing and postprocessing, run by these functions around
    its ONNX weights, turn test_input into test_output."""
    pytest.importorskip("bioimageio.spec", reason="bioimageio.spec is not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from pipeline.ops.model_package import read_package

    unet = Path(__file__).resolve().parents[2].parent / "shared" / "models"
    unet = unet / "unet2d_nuclei_broad"
    if not (unet / "bioimageio.yaml").exists():
        pytest.skip(f"{unet} is missing (the shared models folder is not here)")
    pkg = read_package(str(unet))
    x = np.load(pkg.test_input)
    for step in pkg.preprocessing:
        needed = statistics(step.id, step.kwargs, pkg.input_axes)
        x = apply(
            step.id, step.kwargs, x, pkg.input_axes, whole_statistics(x, pkg.input_axes, needed)
        )
    session = ort.InferenceSession(pkg.weights_file()[1], providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: x})[0]
    for step in pkg.postprocessing:
        y = apply(step.id, step.kwargs, y, pkg.output_axes)
    want = np.load(pkg.test_output)
    assert y.dtype == np.float32 and y.shape == want.shape
    np.testing.assert_allclose(y, want, atol=1e-4)
