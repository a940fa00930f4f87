"""bioimage.io packages in the model op: tiles of the network's size whatever the blocks
(the same bytes for every block size, equal to the network on the whole image when its
receptive field fits the halo), statistics of the whole image or of each plane,
padding, batches, and one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import DataError
from pipeline.ops.model import ModelParams
from pipeline.ops.model_processing import apply, statistics, whole_statistics
from tests.conftest import run_steps
from tests.model_packages import conv_reference, write_package

pytest.importorskip("onnx", reason="onnx is not installed (pip install -e .[test])")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("bioimageio.spec", reason="bioimageio.spec is not installed")


def _run(img, chunks, **params):
    p = ModelParams(**params)
    return run_steps(img, {"m": ("model", p, ("input",))}, "m", chunks)[0]


def _normalised(img: np.ndarray) -> np.ndarray:
    """zero_mean_unit_variance over the whole image, as the package defines it."""
    needed = statistics("zero_mean_unit_variance", {"axes": ["x", "y"]}, "yx")
    x = img.astype(np.float32)
    stats = whole_statistics(x, "yx", needed)
    return apply("zero_mean_unit_variance", {"eps": 1e-6}, x, "yx", stats).astype(np.float32)


@pytest.mark.parametrize("tile", [None, [16, 16], [24, 40]])
def test_every_block_size_gives_the_whole_image_result(tmp_path, tile):
    weights = write_package(tmp_path / "pkg")
    img = np.random.default_rng(1).random((61, 70)).astype(np.float32) * 200
    want = conv_reference(_normalised(img), weights, channel=1)
    outs = [
        _run(img, chunks, path=str(tmp_path / "pkg"), channel="b", tile=tile, batch=3)
        for chunks in [(61, 70), (8, 8), (13, 29), ((30, 31), (7, 63))]
    ]
    for out in outs:
        assert np.array_equal(out, outs[0])  # tiles do not follow blocks: same bytes
    np.testing.assert_allclose(outs[0], want, atol=2e-5)  # radius 2 fits the halo of 2


def test_a_halo_smaller_than_the_receptive_field_shows(tmp_path):
    weights = write_package(tmp_path / "pkg", halo=1)
    img = np.random.default_rng(2).random((60, 60)).astype(np.float32)
    want = conv_reference(_normalised(img), weights, channel=0)
    out = _run(img, (60, 60), path=str(tmp_path / "pkg"), tile=[16, 16])
    assert np.abs(out - want).max() > 1e-3  # tiles kept 1 voxel short of their context


def test_statistics_of_each_plane_for_a_2d_network_on_a_stack(tmp_path):
    weights = write_package(tmp_path / "pkg")
    plane = np.random.default_rng(3).random((40, 33)).astype(np.float32)
    stack = np.stack([plane, 3 * plane + 50, 0.5 * plane - 7])  # each plane normalised alone
    out = _run(stack, (2, 16, 16), path=str(tmp_path / "pkg"), channel=1, batch=2)
    want = conv_reference(_normalised(plane), weights, channel=1)
    for z in range(3):
        np.testing.assert_allclose(out[z], want, rtol=1e-5, atol=5e-5)


def test_scale_range_takes_percentiles_of_the_whole_image(tmp_path):
    pre = "[{id: scale_range, kwargs: {min_percentile: 2, max_percentile: 97, axes: [y, x]}}]"
    weights = write_package(tmp_path / "pkg", preprocessing=pre, postprocessing="[{id: sigmoid}]")
    img = np.random.default_rng(4).integers(0, 4000, (50, 45)).astype(np.uint16)
    lo, hi = np.percentile(img, [2, 97])
    x = ((img - lo) / (hi - lo + 1e-6)).astype(np.float32)
    want = 1 / (1 + np.exp(-conv_reference(x, weights, channel=0)))
    out = _run(img, (16, 20), path=str(tmp_path / "pkg"))
    np.testing.assert_allclose(out, want, atol=1e-5)


def test_an_image_smaller_than_the_tile_is_padded(tmp_path):
    weights = write_package(tmp_path / "pkg", size="32")  # a fixed 32 x 32 input
    img = np.random.default_rng(5).random((20, 27)).astype(np.float32)
    padded = np.pad(_normalised(img), [(0, 12), (0, 5)], mode="reflect")
    want = conv_reference(padded, weights, channel=1)[:20, :27]
    for chunks in [(20, 27), (7, 9)]:
        out = _run(img, chunks, path=str(tmp_path / "pkg"), channel=1)
        np.testing.assert_allclose(out, want, atol=2e-5)


def test_a_batch_of_one_is_kept(tmp_path):
    weights = write_package(tmp_path / "pkg", size="16", batch=1)  # the ONNX input too
    img = np.random.default_rng(6).random((3, 16, 16)).astype(np.float32)
    out = _run(img, (3, 16, 16), path=str(tmp_path / "pkg"), batch=5)
    for z in range(3):
        want = conv_reference(_normalised(img[z]), weights, channel=0)
        np.testing.assert_allclose(out[z], want, atol=2e-5)


@pytest.mark.parametrize(
    "params, image, message",
    [
        ({"channel": "c"}, (20, 20), r"channel 'c': the output's channels are \['a', 'b'\]"),
        ({"channel": 2}, (20, 20), r"channel 2: the output has 2 channel\(s\)"),
        ({}, (4, 20, 20, 20), "the network has 2 spatial axes \\(yx\\), the image 4"),
        ({"tile": [16]}, (20, 20), "tile: 1 sizes given, the network has 2 axes"),
        ({"instances": True}, (20, 20), "instances: not for bioimage.io packages"),
        ({"device": "cuda"}, (20, 20), "device cuda asked, but onnxruntime here has no CUDA"),
    ],
)
def test_refusals_are_one_line(tmp_path, params, image, message):
    write_package(tmp_path / "pkg")
    if params.get("device") == "cuda":
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            pytest.skip("this machine has onnxruntime's CUDA provider")
    img = np.zeros(image, np.float32)
    with pytest.raises(DataError, match=message) as info:
        _run(img, (10,) * len(image), path=str(tmp_path / "pkg"), **params)
    assert "\n" not in str(info.value)


def test_percentiles_of_each_plane_for_a_2d_network_on_a_stack(tmp_path):
    pre = "[{id: scale_range, kwargs: {min_percentile: 1, max_percentile: 99, axes: [y, x]}}]"
    weights = write_package(tmp_path / "pkg", preprocessing=pre)
    rng = np.random.default_rng(8)
    stack = np.stack([rng.gamma(2.0, 3.0 * (z + 1), (30, 27)) + 40 * z for z in range(3)])
    stack = stack.astype(np.float32)
    outs = [_run(stack, chunks, path=str(tmp_path / "pkg")) for chunks in [(3, 30, 27), (2, 8, 8)]]
    assert np.array_equal(outs[0], outs[1])
    for z in range(3):
        lo, hi = np.percentile(stack[z], [1, 99])  # of the plane alone
        x = ((stack[z] - lo) / (hi - lo + 1e-6)).astype(np.float32)
        np.testing.assert_allclose(outs[0][z], conv_reference(x, weights, channel=0), atol=3e-5)
