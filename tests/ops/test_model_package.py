"""bioimage.io model packages read offline: the real U-Net of ../shared/models, its files'
sha256 checked, parameterised sizes, damaged and foreign files refused in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import DataError
from pipeline.ops.model_package import SpaceAxis, is_package, read_package

pytest.importorskip("bioimageio.spec", reason="bioimageio.spec is not installed")

UNET = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "unet2d_nuclei_broad"


@pytest.fixture
def unet(tmp_path) -> Path:
    """A copy of the package (the tests change files in it)."""
    if not (UNET / "bioimageio.yaml").exists():
        pytest.skip(f"{UNET} is missing (the shared models folder is not here)")
    copy = tmp_path / "unet"
    shutil.copytree(UNET, copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    return copy


def test_the_real_unet_package(unet):
    assert is_package(str(unet)) and is_package(str(unet / "bioimageio.yaml"))
    pkg = read_package(str(unet))
    assert pkg.name == "UNet 2D Nuclei Broad"
    assert (pkg.input_axes, pkg.output_axes, pkg.input_channels) == ("bcyx", "bcyx", 1)
    assert pkg.space == (SpaceAxis("y", 512, 0, 32), SpaceAxis("x", 512, 0, 32))
    assert pkg.halo == (32, 32) and pkg.tile_shape((100, 700)) == (512, 512)
    assert [p.id for p in pkg.preprocessing] == [
        "ensure_dtype", "zero_mean_unit_variance", "ensure_dtype"
    ]  # fmt: skip
    assert pkg.preprocessing[1].kwargs["axes"] == ["x", "y"]
    assert [p.id for p in pkg.postprocessing] == ["sigmoid", "ensure_dtype"]
    assert pkg.weights_file() == ("onnx", str(unet / "weights.onnx"))
    assert set(pkg.weights) == {"onnx", "torchscript"}
    assert set(pkg.unavailable) == {"pytorch_state_dict"}  # weights given as a URL
    assert pkg.output_channels == ("probability",)


def test_its_test_input_gives_its_test_output(unet):
    """The description read right: its preprocessing, the ONNX weights and its
    postprocessing turn test_input into test_output."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pkg = read_package(str(unet))
    x = np.load(pkg.test_input).astype(np.float32)
    x = (x - x.mean()) / (x.std() + pkg.preprocessing[1].kwargs["eps"])
    session = ort.InferenceSession(pkg.weights_file()[1], providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    y = 1 / (1 + np.exp(-y))
    want = np.load(pkg.test_output)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, atol=1e-4)


def test_a_changed_file_is_refused(unet):
    data = bytearray((unet / "weights.onnx").read_bytes())
    data[-1] ^= 1
    (unet / "weights.onnx").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"weights\.onnx weights\.onnx: sha256 .* is not the"):
        read_package(str(unet))


def test_weights_not_in_the_folder_are_named(unet):
    (unet / "weights.onnx").unlink()
    pkg = read_package(str(unet))
    assert pkg.weights_file() == ("torchscript", str(unet / "weights.pt"))
    assert "not a file in the package" in pkg.unavailable["onnx"]
    (unet / "weights.pt").unlink()
    with pytest.raises(DataError, match="no ONNX or TorchScript weights to run"):
        read_package(str(unet)).weights_file()


def test_parameterised_sizes(unet):
    text = (unet / "bioimageio.yaml").read_text()
    text = text.replace(
        "      - size: 512\n        id: y", "      - size: {min: 96, step: 16}\n        id: y"
    )
    (unet / "bioimageio.yaml").write_text(text)
    pkg = read_package(str(unet))
    assert pkg.space[0] == SpaceAxis("y", 96, 16, 32)
    assert [pkg.space[0].size_for(n) for n in (1, 96, 97, 112, 113)] == [96, 96, 112, 112, 128]
    assert pkg.tile_shape((100, 100)) == (112, 512)


def test_sizes_the_network_cannot_take_are_refused(unet):
    text = (unet / "bioimageio.yaml").read_text()
    text = text.replace(
        "      - size: 512\n        id: y", "      - size: {min: 32, step: 16}\n        id: y"
    )
    (unet / "bioimageio.yaml").write_text(text)
    with pytest.raises(DataError, match=r"outputs: axis y with minimum size 32 is too small"):
        read_package(str(unet))


def test_not_a_model(tmp_path):
    (tmp_path / "bioimageio.yaml").write_text("name: x\n")
    with pytest.raises(DataError, match="not a valid bioimage.io model description"):
        read_package(str(tmp_path))
    with pytest.raises(DataError, match="no bioimage.io package there"):
        read_package(str(tmp_path / "nothing"))
