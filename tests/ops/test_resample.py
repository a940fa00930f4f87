"""Resizing block by block equals skimage.transform.resize / rescale on the whole image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from scipy import ndimage as ndi
from skimage import measure, transform

import pipeline
from pipeline.errors import ConfigError


def _image(shape, seed=0, dtype=np.uint16):
    rng = np.random.default_rng(seed)
    img = 300 + 900 * ndi.gaussian_filter(rng.random(shape), 2.0) + rng.normal(0, 30, shape)
    return np.clip(img, 0, None).astype(dtype)


def _run(tmp_path, img, resize: dict, chunks, then=None, spacing=None):
    np.save(tmp_path / "in.npy", img)
    steps = {"small": {"op": "resize", **resize}}
    steps.update(then or {"mask": {"op": "threshold", "value": 0}})
    cfg = {
        "input": {"path": str(tmp_path / "in.npy"), "chunks": list(chunks)},
        "steps": steps,
        "output": {"path": str(tmp_path / "out"), "labels": list(steps)[-1], "overwrite": True},
    }
    if spacing:
        cfg["input"]["spacing"] = spacing
    return pipeline.run(cfg)


def _resized_values(tmp_path, img, resize, chunks, spacing=None):
    """The resized image itself, block by block, as the engine reads it."""
    from pipeline.app.prepared import open_input, plan_for, resized_input
    from pipeline.config import load_config

    np.save(tmp_path / "in.npy", img)
    cfg = load_config(
        {
            "input": {
                "path": str(tmp_path / "in.npy"),
                "chunks": list(chunks),
                **({"spacing": spacing} if spacing else {}),
            },
            "steps": {"small": {"op": "resize", **resize}, "m": {"op": "threshold", "value": 0}},
            "output": {"path": str(tmp_path / "o"), "labels": "m"},
        }
    )
    _, source = resized_input(cfg, open_input(cfg), "m", "threads")
    plan = plan_for(cfg, source)
    out = np.zeros(source.shape, source.dtype)
    for i in plan.indices():
        box = plan.box(i)
        out[tuple(slice(a, b) for a, b in box)] = source.read(box)
    return out, source


@pytest.mark.parametrize("chunks", [(3, 5, 7), (8, 16, 16), (40, 40, 40)])
@pytest.mark.parametrize("scale", [0.5, [1.0, 0.37, 0.6], 2.0, [0.8, 1.5, 1.0]])
def test_rescale_linear_equals_skimage(tmp_path, chunks, scale):
    img = _image((12, 30, 28))
    got, _ = _resized_values(tmp_path, img, {"scale": scale}, chunks)
    ref = transform.rescale(img, scale, order=1, preserve_range=True)
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("mode", ["reflect", "edge", "symmetric"])
def test_resize_modes_and_scaled_range_2d(tmp_path, mode):
    img = _image((45, 50), seed=2, dtype=np.uint8)
    resize = {"shape": [31, 77], "mode": mode, "preserve_range": False}
    got, _ = _resized_values(tmp_path, img, resize, (8, 9))
    ref = transform.resize(img, (31, 77), order=1, mode=mode)
    np.testing.assert_array_equal(got, ref)


def test_labels_resize_nearest_and_to_spacing(tmp_path):
    labels = measure.label(_image((10, 32, 30), seed=3) > 800).astype(np.uint16)
    resize = {"spacing": [1.0, 1.0, 1.0], "order": 0}
    got, source = _resized_values(tmp_path, labels, resize, (4, 9, 8), spacing=[2.0, 0.5, 0.5])
    ref = transform.rescale(
        labels, (2.0, 0.5, 0.5), order=0, preserve_range=True, anti_aliasing=False
    )
    np.testing.assert_array_equal(got, ref)
    assert got.dtype == labels.dtype
    assert source.spacing == pytest.approx((1.0, 1.0, 1.0), rel=0.05)


def test_pipeline_after_resize_writes_the_new_grid(tmp_path):
    img = _image((12, 30, 28))
    res = _run(
        tmp_path,
        img,
        {"scale": 0.5},
        (4, 8, 8),
        then={"mask": {"op": "threshold", "method": "otsu"}, "obj": {"op": "label"}},
        spacing=[2.0, 1.0, 1.0],
    )
    small = transform.rescale(img, 0.5, order=1, preserve_range=True)
    from skimage.filters import threshold_otsu

    ref = measure.label(small > threshold_otsu(small))
    got = np.asarray(zarr.open_group(str(res.labels_path), mode="r")["0"])
    np.testing.assert_array_equal(got, ref)
    summary = json.loads(res.summary_path.read_text())
    assert summary["shape"] == list(small.shape)
    attrs = zarr.open_group(str(res.labels_path), mode="r").attrs.asdict()
    scale = attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]
    assert scale["scale"] == [4.0, 2.0, 2.0]  # the input's spacing × 2


def test_resize_must_read_the_input(tmp_path):
    from pipeline.config import load_config

    np.save(tmp_path / "in.npy", np.zeros((4, 4), np.uint8))
    cfg = {
        "input": {"path": str(tmp_path / "in.npy")},
        "steps": {
            "smooth": {"op": "gaussian"},
            "small": {"op": "resize", "scale": 0.5},
            "mask": {"op": "threshold", "value": 1, "input": "smooth"},
        },
        "output": {"path": str(tmp_path / "o"), "labels": "mask"},
    }
    with pytest.raises(ConfigError, match="a resize of step 'smooth' must be the output step"):
        load_config(cfg)


@pytest.mark.parametrize("chunks", [(4, 8, 8), (12, 30, 28)])
def test_segment_small_write_labels_at_full_size(tmp_path, chunks):
    img = _image((12, 30, 28))
    np.save(tmp_path / "in.npy", img)
    cfg = {
        "input": {"path": str(tmp_path / "in.npy"), "chunks": list(chunks)},
        "steps": {
            "small": {"op": "resize", "scale": 0.5},
            "mask": {"op": "threshold", "method": "otsu"},
            "obj": {"op": "label"},
            "full": {"op": "resize", "shape": [12, 30, 28]},
        },
        "output": {"path": str(tmp_path / "out"), "labels": "full"},
    }
    res = pipeline.run(cfg)
    from skimage.filters import threshold_otsu

    small = transform.rescale(img, 0.5, order=1, preserve_range=True)
    objects = measure.label(small > threshold_otsu(small))
    ref = transform.resize(objects, img.shape, order=0, preserve_range=True, anti_aliasing=False)
    got = np.asarray(zarr.open_group(str(res.labels_path), mode="r")["0"])
    np.testing.assert_array_equal(got, ref)
    assert res.count == len(np.unique(ref)) - 1
    assert json.loads(res.summary_path.read_text())["shape"] == [12, 30, 28]
    assert not (tmp_path / "out" / ".before-resize.zarr").exists()
