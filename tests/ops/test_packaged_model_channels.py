"""Networks of several input channels: the step's input and the steps ``channels``
names, or a colour image's samples; statistics of each channel (or of all together)
over the whole image or each plane; the same bytes for every block size."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from pipeline.cli import main
from pipeline.errors import DataError
from pipeline.ops.catalogue import CATALOGUE
from pipeline.ops.model import ModelParams
from tests.conftest import run_steps
from tests.input_files import write_ome_zarr_channels
from tests.model_packages import conv_net, conv_reference, write_package

pytest.importorskip("onnx", reason="onnx is not installed (pip install -e .[test])")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("bioimageio.spec", reason="bioimageio.spec is not installed")

CHUNKINGS = [(61, 70), (8, 8), (13, 29), ((30, 31), (7, 63))]
BLUR = CATALOGUE["gaussian"].params(sigma=1.5)


def _with_blur(img, chunks, role="image", **params):
    """The model on the image and its blur (a second channel), and the blur."""
    steps = {
        "blur": ("gaussian", BLUR, ("input",)),
        "m": ("model", ModelParams(channels=["blur"], **params), ("input", "blur")),
    }
    out, engine = run_steps(img, steps, "m", chunks, role=role)
    return out, engine.to_numpy("blur")


def _zero_mean_unit_variance(x: np.ndarray, axes=None) -> np.ndarray:
    x = x.astype(np.float64)
    return (
        (x - x.mean(axis=axes, keepdims=True)) / (x.std(axis=axes, keepdims=True) + 1e-6)
    ).astype(np.float32)


def test_steps_as_channels_normalised_each_alone(tmp_path):
    weights = write_package(tmp_path / "pkg", channels_in=2)
    img = np.random.default_rng(1).random((61, 70)).astype(np.float32) * 200
    outs = [_with_blur(img, c, path=str(tmp_path / "pkg"), channel="b") for c in CHUNKINGS]
    blur = outs[0][1]
    for out, _ in outs:
        assert np.array_equal(out, outs[0][0])  # the tiles do not follow the blocks
    x = np.stack([_zero_mean_unit_variance(img), _zero_mean_unit_variance(blur)])
    np.testing.assert_allclose(outs[0][0], conv_reference(x, weights, channel=1), atol=3e-5)


def test_statistics_of_all_channels_together(tmp_path):
    pre = "[{id: zero_mean_unit_variance, kwargs: {axes: [channel, y, x]}}]"
    weights = write_package(tmp_path / "pkg", channels_in=2, preprocessing=pre)
    img = np.random.default_rng(2).random((40, 37)).astype(np.float32) * 50 + 100
    out, blur = _with_blur(img, (16, 16), path=str(tmp_path / "pkg"))
    x = _zero_mean_unit_variance(np.stack([img, blur]))  # one mean and std for both
    np.testing.assert_allclose(out, conv_reference(x, weights, channel=0), atol=3e-5)


def test_each_plane_and_channel_of_a_stack(tmp_path):
    weights = write_package(tmp_path / "pkg", channels_in=2)
    rng = np.random.default_rng(3)
    stack = np.stack([rng.random((30, 33)) * (z + 1) + 10 * z for z in range(3)]).astype(np.float32)
    out, blur = _with_blur(stack, (2, 16, 16), path=str(tmp_path / "pkg"), batch=2)
    for z in range(3):
        x = np.stack([_zero_mean_unit_variance(stack[z]), _zero_mean_unit_variance(blur[z])])
        np.testing.assert_allclose(out[z], conv_reference(x, weights, channel=0), atol=5e-5)


def test_colour_samples_as_channels_with_percentiles_of_each(tmp_path):
    import tifffile
    import zarr

    import pipeline

    pre = "[{id: scale_range, kwargs: {min_percentile: 1, max_percentile: 99, axes: [y, x]}}]"
    weights = write_package(tmp_path / "pkg", channels_in=3, preprocessing=pre)
    rgb = np.random.default_rng(4).integers(0, 256, (45, 52, 3)).astype(np.uint8)
    rgb[..., 1] //= 4  # channels of other ranges: each scaled by its own percentiles
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    lo, hi = np.percentile(rgb, [1, 99], axis=(0, 1), keepdims=True)
    x = np.moveaxis(((rgb - lo) / (hi - lo + 1e-6)).astype(np.float32), -1, 0)
    want = conv_reference(x, weights, channel=1)
    for chunks in [[45, 52], [16, 10]]:
        out = tmp_path / f"out-{chunks[0]}"
        pipeline.run(
            {
                "input": {"path": str(tmp_path / "rgb.tif"), "chunks": chunks},
                "steps": {
                    "p": {"op": "model", "path": str(tmp_path / "pkg"), "channel": 1},
                    "mask": {"op": "threshold", "value": 0.0},
                    "objects": {"op": "label"},
                },
                "output": {"path": str(out), "labels": "objects", "image": "p"},
            }
        )
        got = np.asarray(zarr.open_array(out / "image.ome.zarr" / "0", mode="r"))
        np.testing.assert_allclose(got, want, atol=3e-5)


@pytest.mark.parametrize(
    "channels_in, pre, message",
    [
        (3, None, r"the network takes 3 input channel\(s\), the step gives 2"),
        (
            2,
            "[{id: scale_range, kwargs: {max_percentile: 99, axes: [channel, y, x]}}]",
            "percentiles of all channels together are not supported",
        ),
    ],
)
def test_channel_refusals_are_one_line(tmp_path, channels_in, pre, message):
    kwargs = {"preprocessing": pre} if pre else {}
    write_package(tmp_path / "pkg", channels_in=channels_in, **kwargs)
    with pytest.raises(DataError, match=message) as info:
        _with_blur(np.ones((20, 20), np.float32), (10, 10), path=str(tmp_path / "pkg"))
    assert "\n" not in str(info.value)


def test_a_bare_file_takes_one_channel(tmp_path):
    import tifffile

    import pipeline

    conv_net(tmp_path / "net.onnx", 2)
    tifffile.imwrite(tmp_path / "gray.tif", np.ones((20, 20), np.uint8))
    tifffile.imwrite(tmp_path / "rgb.tif", np.ones((20, 20, 3), np.uint8), photometric="rgb")
    model = {"op": "model", "path": str(tmp_path / "net.onnx"), "halo": 2}
    cases = [
        ("gray.tif", {"channels": ["blur"]}, "channels: for bioimage.io packages only"),
        ("rgb.tif", {}, "a network on blocks takes one channel, the input is a colour image"),
    ]
    for image, extra, message in cases:
        config = {
            "input": {"path": str(tmp_path / image), "chunks": [10, 10]},
            "steps": {
                "blur": {"op": "gaussian", "sigma": 1.0, "input": "input"},
                "p": {"op": "model", "input": "input", **model, **extra},
                "mask": {"op": "threshold", "value": 0.0},
                "objects": {"op": "label"},
            },
            "output": {"path": str(tmp_path / "out"), "labels": "objects"},
        }
        if image == "rgb.tif":
            del config["steps"]["blur"]
        with pytest.raises(DataError, match=message) as info:
            pipeline.run(config)
        assert "\n" not in str(info.value)
        assert not (tmp_path / "out" / "summary.json").exists()


def test_every_channel_of_an_ome_zarr_through_segpipe_run(tmp_path, capsys):
    weights = write_package(tmp_path / "pkg", channels_in=2)
    rng = np.random.default_rng(7)
    data = np.stack([rng.random((50, 41)) * 100, rng.random((50, 41)) * 3 + 7]).astype(np.float32)
    write_ome_zarr_channels(tmp_path / "in.ome.zarr", data, (1, 16, 16))
    x = np.stack([_zero_mean_unit_variance(c) for c in data])
    want = conv_reference(x, weights, channel=0)
    config = tmp_path / "c.yaml"
    config.write_text(
        f"input: {{path: {tmp_path / 'in.ome.zarr'}, channel: all, chunks: [16, 16]}}\n"
        f"steps:\n  p: {{op: model, path: {tmp_path / 'pkg'}}}\n"
        "  mask: {op: threshold, value: 0.0}\n  objects: {op: label}\n"
        f"output: {{path: {tmp_path / 'out'}, labels: objects, image: p}}\n"
    )
    got = []
    for chunks in ["[16,16]", "[50,41]"]:
        rc = main(["run", str(config), "--set", f"input.chunks={chunks}", "--overwrite"])
        assert rc == 0, capsys.readouterr().err
        got.append(np.asarray(zarr.open_array(tmp_path / "out/image.ome.zarr/0", mode="r")))
    assert np.array_equal(got[0], got[1])
    np.testing.assert_allclose(got[0], want, atol=3e-5)
    # a step of one channel on all of them: one line, no output
    config.write_text(
        config.read_text().replace(
            "{op: threshold, value: 0.0}", "{op: threshold, value: 0.0, input: input}"
        )
    )
    rc = main(["run", str(config), "--set", f"output.path={tmp_path / 'bad'}"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "\n" not in err
    assert "step 'mask': takes one channel, the input keeps all 2 (input.channel: all" in err
    assert not (tmp_path / "bad" / "summary.json").exists()
