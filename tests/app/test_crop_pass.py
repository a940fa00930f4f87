"""Crop properties (opt-in) equal skimage.measure.regionprops_table on the whole array."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import zarr
from scipy import ndimage as ndi
from skimage.measure import regionprops_table

import pipeline
from pipeline.errors import DataError
from tests.measure.test_objects import _read

PROPS_2D = (
    "area_bbox", "area_convex", "area_filled", "axis_major_length", "axis_minor_length",
    "eccentricity", "euler_number", "extent", "feret_diameter_max", "inertia_tensor_eigvals",
    "orientation", "perimeter", "perimeter_crofton", "solidity",
)  # fmt: skip
PROPS_3D = (
    "area_bbox", "area_convex", "area_filled", "axis_major_length", "axis_minor_length",
    "euler_number", "extent", "feret_diameter_max", "inertia_tensor_eigvals", "solidity",
)  # fmt: skip


def _image(shape, sigma, seed=0):
    """2D: a smoothed random field; 3D: ellipsoids of several sizes (a 3D field percolates)."""
    rng = np.random.default_rng(seed)
    if len(shape) == 2:
        return (1000 * ndi.gaussian_filter(rng.random(shape), sigma)).astype(np.uint16)
    grid = np.indices(shape).astype(np.float64)
    img = np.zeros(shape)
    for _ in range(25):
        centre = rng.uniform(0, shape)
        radii = rng.uniform(2, 5, size=3)
        img[
            (((grid - centre[:, None, None, None]) / radii[:, None, None, None]) ** 2).sum(0) <= 1
        ] = 1
    noisy = 1000 * ndi.gaussian_filter(img, sigma / 4) + rng.normal(0, 10, shape)
    return noisy.clip(0).astype(np.uint16)


def _run(tmp_path, img, chunks, props, spacing=None):
    np.save(tmp_path / "in.npy", img)
    cfg = {
        "input": {"path": str(tmp_path / "in.npy"), "chunks": list(chunks)},
        "steps": {
            "mask": {"op": "threshold", "method": "otsu"},
            "objects": {"op": "label", "connectivity": 1},
            # (skimage warns on the convex hull of objects too flat for one)
            "obj": {"op": "remove_small_objects", "min_size": 20},
        },
        "output": {
            "path": str(tmp_path / "out"),
            "labels": "obj",
            "overwrite": True,
            "table": {"properties": ["label", "num_pixels", *props]},
        },
    }
    if spacing:
        cfg["input"]["spacing"] = spacing
    res = pipeline.run(cfg)
    labels = zarr.open_array(str(res.labels_path / "0"), mode="r")[:]
    cols, _ = _read(res.summary["table"])
    return res, labels, cols


@pytest.mark.parametrize(
    "shape, chunks, sigma, spacing, props",
    [
        ((90, 110), (30, 40), 3.0, None, PROPS_2D),
        ((90, 110), (17, 110), 3.0, [0.5, 0.5], PROPS_2D),
        ((32, 64, 60), (8, 20, 24), 2.0, None, PROPS_3D),
        ((32, 64, 60), (32, 21, 60), 2.0, [2.0, 0.5, 0.5], PROPS_3D),
    ],
)
def test_crop_properties_equal_regionprops(tmp_path, shape, chunks, sigma, spacing, props):
    img = _image(shape, sigma)
    res, labels, cols = _run(tmp_path, img, chunks, props, spacing)
    sp = tuple(spacing) if spacing else (1.0,) * len(shape)
    ref = regionprops_table(labels, properties=("label", *props), spacing=sp)
    blocks = [len(b) for b in cols["blocks"]]
    assert res.count > 5 and max(blocks) > 1 and min(blocks) == 1  # both kinds of objects
    np.testing.assert_array_equal(cols["label"], ref["label"])
    for k, v in ref.items():
        np.testing.assert_allclose(cols[k], v, rtol=1e-12, atol=1e-12, err_msg=k)


def test_crop_properties_only_when_asked(tmp_path):
    img = _image((40, 40), 2.0)
    np.save(tmp_path / "in.npy", img)
    cfg = {
        "input": {"path": str(tmp_path / "in.npy"), "chunks": [20, 20]},
        "steps": {"mask": {"op": "threshold", "method": "otsu"}, "obj": {"op": "label"}},
        "output": {"path": str(tmp_path / "out"), "labels": "obj", "table": {}},
    }
    cols, _ = _read(pipeline.run(cfg).summary["table"])
    assert "solidity" not in cols and "area" in cols


def test_property_undefined_for_the_grid(tmp_path):
    img = _image((12, 20, 20), 2.0)
    with pytest.raises(DataError, match="output.table.properties: perimeter: .*3D"):
        _run(tmp_path, img, (6, 10, 10), ("perimeter",))
    assert not (tmp_path / "out" / "summary.json").exists()
    img2 = _image((20, 20), 2.0)
    with pytest.raises(DataError, match="perimeter: .*isotropic"):
        _run(tmp_path, img2, (10, 10), ("perimeter",), spacing=[1.0, 2.0])


def test_objects_too_flat_for_a_property_get_nan_and_one_warning(tmp_path, capfd):
    """A one-voxel-thick object has no 3D Feret diameter (marching cubes needs a volume)
    nor a convex hull: skimage raises or warns with Qhull's report. The table holds
    skimage's value where it gives one, NaN where it raises, and the run says so once."""
    img = np.zeros((20, 48, 48), np.uint16)
    img[5, 10:20, 10:20] = 900  # a flat square inside one block
    img[2:4, 30, 5:45] = 900  # a line one voxel thick in y, across blocks
    img[8:14, 28:40, 26:40] = 900  # a box across blocks
    img[15, 3:30, 35:45] = 900  # flat, across blocks
    res, labels, cols = _run(tmp_path, img, (10, 24, 24), PROPS_3D)
    assert capfd.readouterr().err == ""  # no Qhull report, no numpy warning
    assert res.count == 4
    for row, i in enumerate(cols["label"]):
        alone = np.where(labels == i, i, 0)  # each object measured on the whole array
        for prop in PROPS_3D:
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    want = regionprops_table(alone, properties=[prop])
            except (ValueError, RuntimeError):
                want = {k: [np.nan] for k in cols if k == prop or k.startswith(f"{prop}-")}
            for k, v in want.items():
                np.testing.assert_allclose(cols[k][row], v[0], rtol=1e-12, err_msg=f"{k} of {i}")
    assert np.isnan(cols["feret_diameter_max"]).sum() == 3  # one voxel thick along an axis
    warned = [w for w in res.summary["warnings"] if w.startswith("output.table:")]
    assert any("feret_diameter_max is not finite for 3 of 4 objects" in w for w in warned)
