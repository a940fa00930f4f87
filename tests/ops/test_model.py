"""A network run per block with a halo equals whole-image inference (ONNX, built here)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import DataError
from pipeline.ops.model import ModelParams
from pipeline.ops.model_sessions import session
from tests.conftest import run_steps
from tests.model_packages import conv_net, conv_reference

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install -e .[test])")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")


@pytest.mark.parametrize(
    "ndim, shape, chunks", [(2, (37, 41), (9, 13)), (3, (10, 19, 17), (4, 7, 6))]
)
def test_chunked_inference_equals_whole_image(tmp_path, ndim, shape, chunks):
    path = tmp_path / "net.onnx"
    weights = conv_net(path, ndim)
    img = np.random.default_rng(1).random(shape).astype(np.float32)
    p = ModelParams(path=str(path), halo=2, channel=1)
    out, _ = run_steps(img, {"m": ("model", p, ("input",))}, "m", chunks)
    whole, _ = run_steps(img, {"m": ("model", p, ("input",))}, "m", shape)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, whole, rtol=1e-5, atol=1e-5)
    # Zero padding at the image edge is the network's own: equal to scipy's constant mode.
    np.testing.assert_allclose(whole, conv_reference(img, weights), rtol=1e-4, atol=1e-4)


def test_too_small_a_halo_shows_at_block_borders(tmp_path):
    path = tmp_path / "net.onnx"
    conv_net(path, 2)
    img = np.random.default_rng(2).random((40, 40)).astype(np.float32)
    p0 = ModelParams(path=str(path), halo=0)
    out, _ = run_steps(img, {"m": ("model", p0, ("input",))}, "m", (10, 10))
    whole, _ = run_steps(img, {"m": ("model", p0, ("input",))}, "m", (40, 40))
    assert not np.allclose(out, whole, atol=1e-5)


def test_missing_model_and_bad_channel_are_data_errors(tmp_path):
    session.cache_clear()
    img = np.zeros((8, 8), np.float32)
    p = ModelParams(path=str(tmp_path / "none.onnx"), halo=1)
    with pytest.raises(ValueError, match="model file .*none.onnx not found"):
        run_steps(img, {"m": ("model", p, ("input",))}, "m", (4, 4))
    path = tmp_path / "net.onnx"
    conv_net(path, 2)
    p = ModelParams(path=str(path), halo=2, channel=5)
    with pytest.raises(DataError, match="channel 5 asked, the output has 2"):
        run_steps(img, {"m": ("model", p, ("input",))}, "m", (4, 4))


def _pointwise_net(path):
    """A 1×1 convolution and a sigmoid: no context, so every tile predicts every voxel right."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.array([[[[3.0]]]], np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["h"]),
        helper.make_node("Sigmoid", ["h"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "pointwise",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c", "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.mark.parametrize("blend", ["linear", "gaussian"])
def test_blended_tiles_average_to_the_whole_image_prediction(tmp_path, blend):
    # Where all tiles agree (no context needed), any weighting must return that value.
    path = tmp_path / "pw.onnx"
    _pointwise_net(path)
    img = np.random.default_rng(3).random((45, 38)).astype(np.float32)
    p = ModelParams(path=str(path), halo=4, blend=blend)
    out, _ = run_steps(img, {"m": ("model", p, ("input",))}, "m", (10, 9))
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-3 * img)), rtol=1e-5, atol=1e-6)


def test_blending_hides_seams_of_a_too_small_halo(tmp_path):
    path = tmp_path / "net.onnx"
    weights = conv_net(path, 2)
    img = np.random.default_rng(4).random((60, 60)).astype(np.float32)
    ref = conv_reference(img, weights)

    def error(halo, blend):
        p = ModelParams(path=str(path), halo=halo, channel=1, blend=blend)
        out, _ = run_steps(img, {"m": ("model", p, ("input",))}, "m", (15, 15))
        return float(np.abs(out - ref).max())

    assert error(2, "crop") < 1e-4  # the receptive field fits: exact
    assert error(4, "linear") < error(1, "crop")  # blending a wider overlap beats a seam


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_model_equals_whole_image(tmp_path):
    torch = pytest.importorskip(
        "torch", reason="torch is not installed (pip install segpipe[torch])"
    )
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(3, 2, 3, padding=1)
    )
    path = tmp_path / "net.pt"
    torch.jit.script(net.eval()).save(str(path))
    img = np.random.default_rng(5).random((37, 41)).astype(np.float32)
    p = ModelParams(path=str(path), halo=2, channel=1)
    out, _ = run_steps(img, {"m": ("model", p, ("input",))}, "m", (9, 13))
    with torch.no_grad():
        ref = net(torch.from_numpy(img)[None, None]).numpy()[0, 1]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
