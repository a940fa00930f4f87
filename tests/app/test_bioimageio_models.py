"""The real bioimage.io U-Net of ../shared/models through ``segpipe run``: its test input
gives its test output at every block size (the same bytes each time), and on real
nuclei with ground truth its recipe (model -> threshold -> distance -> peaks ->
watershed) is scored beside the classical Otsu recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from pipeline.cli import main
from pipeline.measure.matching import match_objects
from tests.model_packages import unet_or_skip

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("bioimageio.spec", reason="bioimageio.spec is not installed")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
CONFIG = ROOT / "configs" / "bioimageio_unet_2d.yaml"


def _segpipe(capsys, *args: str) -> str:
    rc = main(["run", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def _sets(**values) -> list[str]:
    return [a for k, v in values.items() for a in ("--set", f"{k}={v}")]


def test_the_test_input_gives_the_test_output(tmp_path, capsys):
    unet = unet_or_skip()
    tifffile.imwrite(tmp_path / "in.tif", np.load(unet / "test_input.npy")[0, 0])
    want = np.load(unet / "test_output.npy")[0, 0]
    outputs = []
    for k, chunks in enumerate(["[512, 512]", "[128, 128]", "[100, 333]"]):
        args = _sets(**{
            "input.path": tmp_path / "in.tif",
            "input.chunks": chunks,
            "steps.probability.path": unet,
            "output.path": tmp_path / f"out{k}",
            "output.image": "probability",
        })  # fmt: skip
        _segpipe(capsys, str(CONFIG), *args)
        got = zarr.open_array(tmp_path / f"out{k}" / "image.ome.zarr" / "0", mode="r")
        assert got.chunks == tuple(json.loads(chunks))
        outputs.append(np.asarray(got))
    assert outputs[0].shape == want.shape and outputs[0].dtype == np.float32
    np.testing.assert_allclose(outputs[0], want, atol=1e-4)  # (measured: 1.7e-6)
    for got in outputs[1:]:
        assert np.array_equal(got, outputs[0])  # every block size: the same bytes


def _labels(capsys, config: Path, image: Path, out: Path, **more) -> np.ndarray:
    args = _sets(**{"input.path": image, "output.path": out, **more})
    _segpipe(capsys, str(config), *args)
    return np.asarray(zarr.open_array(out / "nuclei.ome.zarr" / "0", mode="r"))


def _otsu_config(tmp_path: Path) -> Path:
    """The same recipe with a smoothed Otsu mask in place of the network."""
    text = CONFIG.read_text()
    start = text.index("  probability:")
    end = text.index("  dist:")
    otsu = (
        "  smooth:\n    op: gaussian\n    sigma: 1.0\n"
        "  mask:\n    op: threshold\n    method: otsu\n"
    )
    path = tmp_path / "otsu.yaml"
    path.write_text(text[:start] + otsu + text[end:])
    return path


def test_unet_recipe_on_dsb_nuclei_beside_otsu(tmp_path, capsys):
    unet = unet_or_skip()
    image = DATA / "stardist_dsb_crop" / "image.tif"
    if not image.exists():
        pytest.skip(f"{image} is missing (the shared data folder is not here)")
    truth = tifffile.imread(DATA / "stardist_dsb_crop" / "mask.tif")
    net = _labels(capsys, CONFIG, image, tmp_path / "unet", **{"steps.probability.path": unet})
    classic = _labels(capsys, _otsu_config(tmp_path), image, tmp_path / "otsu")
    f1_net = match_objects(truth, net).f1
    f1_otsu = match_objects(truth, classic).f1
    # measured (benchmarks/bench_model.py): U-Net 0.807, Otsu 0.772 at min_distance 4
    assert f1_net >= 0.78 and f1_otsu >= 0.74
    assert f1_net > f1_otsu


def test_torchscript_weights_give_the_onnx_result(tmp_path, capsys):
    pytest.importorskip("torch", reason="torch is not installed (make torch installs it)")
    unet = unet_or_skip()
    tifffile.imwrite(tmp_path / "in.tif", np.load(unet / "test_input.npy")[0, 0])
    outputs = []
    for weights in ("onnx", "torchscript"):
        args = _sets(**{
            "input.path": tmp_path / "in.tif",
            "input.chunks": "[200, 256]",
            "steps.probability.path": unet,
            "steps.probability.weights": weights,
            "output.path": tmp_path / weights,
            "output.image": "probability",
        })  # fmt: skip
        _segpipe(capsys, str(CONFIG), *args)
        path = tmp_path / weights / "image.ome.zarr" / "0"
        outputs.append(np.asarray(zarr.open_array(path, mode="r")))
    want = np.load(unet / "test_output.npy")[0, 0]
    np.testing.assert_allclose(outputs[1], want, atol=1e-4)
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-4)


def _package_config(tmp_path: Path, **model) -> Path:
    from tests.model_packages import write_package

    write_package(tmp_path / "pkg")
    tifffile.imwrite(tmp_path / "in.tif", np.ones((24, 24), np.float32))
    extra = "".join(f", {k}: {v}" for k, v in model.items())
    config = tmp_path / "c.yaml"
    config.write_text(
        f"input: {{path: {tmp_path / 'in.tif'}, chunks: [12, 12]}}\n"
        f"steps:\n  p: {{op: model, path: {tmp_path / 'pkg'}{extra}}}\n"
        "  mask: {op: threshold, value: 0.0}\n  objects: {op: label}\n"
        f"output: {{path: {tmp_path / 'out'}, labels: objects}}\n"
    )
    return config


def _one_line_error(capsys, config: Path) -> str:
    rc = main(["run", str(config)])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "\n" not in err and "Traceback" not in err, err
    assert not (config.parent / "out" / "summary.json").exists()
    return err


def test_a_damaged_package_is_one_line(tmp_path, capsys):
    pytest.importorskip("onnx", reason="onnx is not installed")
    config = _package_config(tmp_path)
    weights = tmp_path / "pkg" / "net.onnx"
    before = weights.read_bytes()
    weights.write_bytes(before[:-1] + bytes([before[-1] ^ 1]))
    err = _one_line_error(capsys, config)
    assert "net.onnx" in err and "sha256" in err
    assert weights.read_bytes()[:-1] == before[:-1]  # the input untouched


def test_a_missing_cuda_device_is_one_line(tmp_path, capsys):
    pytest.importorskip("onnx", reason="onnx is not installed")
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has onnxruntime's CUDA provider")
    err = _one_line_error(capsys, _package_config(tmp_path, device="cuda"))
    assert "device cuda asked, but onnxruntime here has no CUDA" in err
