"""Networks and bioimage.io packages written by the tests: small ONNX convolutions
whose whole-image output scipy gives, in packages with sizes, halos and processing
chosen per test, and the real U-Net of ../shared/models."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

UNET = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "unet2d_nuclei_broad"


def unet_or_skip() -> Path:
    """The real U-Net package of ../shared/models (the test is skipped without it)."""
    if not (UNET / "bioimageio.yaml").exists():
        pytest.skip(f"{UNET} is missing (the shared models folder is not here)")
    return UNET


def conv_net(
    path, ndim: int, channels_out: int = 2, dims=None, channels_in: int = 1
) -> list[np.ndarray]:
    """Two 3-wide convolutions with a ReLU between, written as ONNX: receptive radius 2.
    ``dims``: the input's dimensions (default: any)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    k = (3,) * ndim
    w1 = rng.normal(0, 0.5, (4, channels_in, *k)).astype(np.float32)
    w2 = rng.normal(0, 0.5, (channels_out, 4, *k)).astype(np.float32)
    pads = [1] * (2 * ndim)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["h"], pads=pads),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["y"], pads=pads),
    ]
    dims = dims or ["n", "c"] + [f"d{i}" for i in range(ndim)]
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return [w1, w2]


def conv_reference(img: np.ndarray, weights, channel: int = 1) -> np.ndarray:
    """The same network in scipy on the whole image (zero padding), one output channel;
    a network of several input channels gets them on the first axis of ``img``."""
    w1, w2 = weights
    x = img.astype(np.float64)
    x = x[np.newaxis] if w1.shape[1] == 1 else x
    hidden = [
        np.maximum(sum(ndi.correlate(x[i], w1[c, i], mode="constant") for i in range(len(x))), 0)
        for c in range(4)
    ]
    return sum(ndi.correlate(hidden[c], w2[channel, c], mode="constant") for c in range(4))


def _axis(letter: str, size: str, halo: int | None = None) -> str:
    extra = f", halo: {halo}" if halo is not None else ""
    return f"      - {{type: space, id: {letter}, size: {size}{extra}}}"


def write_package(
    folder: Path,
    space: str = "yx",
    size: str = "{min: 16, step: 8}",
    halo: int = 2,
    preprocessing: str = "[{id: zero_mean_unit_variance, kwargs: {axes: [x, y]}}]",
    postprocessing: str = "[]",
    batch: int | None = None,
    channels_in: int = 1,
) -> list[np.ndarray]:
    """A package of :func:`conv_net` (input channels ``raw`` or ``c0``, ``c1``, ...;
    output channels ``a`` and ``b``) in ``folder``; its weights, for
    :func:`conv_reference`."""
    folder.mkdir(parents=True, exist_ok=True)
    dims = [batch or "n", "c"] + [f"d{i}" for i in range(len(space))]
    weights = conv_net(folder / "net.onnx", len(space), dims=dims, channels_in=channels_in)
    names = "raw" if channels_in == 1 else ", ".join(f"c{i}" for i in range(channels_in))
    digest = hashlib.sha256((folder / "net.onnx").read_bytes()).hexdigest()
    batch_axis = "      - type: batch" + (f"\n        size: {batch}" if batch else "")
    out_size = "{{tensor_id: raw, axis_id: {}}}"
    text = "\n".join(
        [
            "format_version: 0.5.4",
            "type: model",
            "name: tiny conv net",
            "description: two 3-wide convolutions",
            "authors: [{name: segpipe tests}]",
            'cite: [{text: segpipe tests, url: "https://example.com/"}]',
            "license: MIT",
            "documentation: README.md",
            "inputs:",
            "  - id: raw",
            "    axes:",
            batch_axis,
            f"      - {{type: channel, channel_names: [{names}]}}",
            *[_axis(a, size) for a in space],
            "    test_tensor: {source: test_input.npy}",
            f"    preprocessing: {preprocessing}",
            "outputs:",
            "  - id: out",
            "    axes:",
            batch_axis,
            "      - {type: channel, channel_names: [a, b]}",
            *[_axis(a, out_size.format(a), halo) for a in space],
            "    test_tensor: {source: test_output.npy}",
            f"    postprocessing: {postprocessing}",
            "weights:",
            f"  onnx: {{source: net.onnx, sha256: {digest}, opset_version: 17}}",
            "",
        ]
    )
    (folder / "bioimageio.yaml").write_text(text)
    return weights
