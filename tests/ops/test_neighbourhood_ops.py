"""Neighbourhood ops through the halo equal the whole-image function, voxel for voxel."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import filters, morphology

from pipeline.ops.distance import DistanceParams
from pipeline.ops.filters import LocalThresholdParams, MedianParams, SobelParams
from pipeline.ops.morphology import MorphologyParams
from tests.conftest import run_steps

CHUNKS_3D = [(2, 5, 4), (5, 6, 7), (12, 17, 15)]
CHUNKS_2D = [(3, 7), (9, 13)]


def _image(shape, seed=0, dtype=np.uint16):
    rng = np.random.default_rng(seed)
    img = rng.normal(500, 60, shape) + 600 * (ndi.gaussian_filter(rng.random(shape), 1.2) > 0.53)
    return np.clip(img, 0, None).astype(dtype)


def _mask(shape, seed=1, fill=0.5):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape), 1.0) > np.quantile(
        ndi.gaussian_filter(rng.random(shape), 1.0), 1 - fill
    )


def _cases():
    return [((12, 17, 15), c) for c in CHUNKS_3D] + [((40, 37), c) for c in CHUNKS_2D]


@pytest.mark.parametrize("shape, chunks", _cases())
@pytest.mark.parametrize("size", [3, 4, [1, 5, 3]])
def test_median(shape, chunks, size):
    if isinstance(size, list) and len(shape) == 2:
        size = size[1:]
    img = _image(shape)
    out, _ = run_steps(img, {"m": ("median", MedianParams(size=size), ("input",))}, "m", chunks)
    np.testing.assert_array_equal(out, ndi.median_filter(img, size=size, mode="reflect"))
    assert out.dtype == img.dtype


@pytest.mark.parametrize("shape, chunks", _cases())
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_sobel(shape, chunks, dtype):
    img = _image(shape, dtype=dtype)
    out, _ = run_steps(img, {"s": ("sobel", SobelParams(), ("input",))}, "s", chunks)
    ref = filters.sobel(img)
    np.testing.assert_array_equal(out, ref)
    assert out.dtype == ref.dtype


@pytest.mark.parametrize("shape, chunks", _cases())
@pytest.mark.parametrize("method", ["gaussian", "mean", "median"])
def test_threshold_local(shape, chunks, method):
    img = _image(shape)
    p = LocalThresholdParams(block_size=7, method=method, offset=-5.0)
    out, _ = run_steps(img, {"t": ("threshold_local", p, ("input",))}, "t", chunks)
    ref = img > filters.threshold_local(img, 7, method, -5.0, "reflect")
    np.testing.assert_array_equal(out, ref)


def test_threshold_local_anisotropic_block_and_bad_size():
    img = _image((9, 30, 28), seed=4)
    p = LocalThresholdParams(block_size=[3, 11, 9], mode="nearest")
    out, _ = run_steps(img, {"t": ("threshold_local", p, ("input",))}, "t", (2, 8, 9))
    ref = img > filters.threshold_local(img, (3, 11, 9), "gaussian", 0.0, "nearest")
    np.testing.assert_array_equal(out, ref)
    with pytest.raises(ValueError, match="block_size must be odd"):
        LocalThresholdParams(block_size=8)


@pytest.mark.parametrize("op", ["erosion", "dilation", "opening", "closing"])
@pytest.mark.parametrize("shape, chunks", _cases())
@pytest.mark.parametrize("radius, fp", [(1, "ball"), (2, "ball"), (2, "box")])
def test_binary_morphology(op, shape, chunks, radius, fp):
    mask = _mask(shape)
    p = MorphologyParams(radius=radius, footprint=fp)
    out, _ = run_steps(mask, {"m": (op, p, ("input",))}, "m", chunks, role="mask")
    if fp == "box":
        footprint = np.ones((2 * radius + 1,) * len(shape), bool)
    else:
        footprint = (morphology.ball if len(shape) == 3 else morphology.disk)(radius)
    ref = getattr(morphology, op)(mask, footprint)
    assert out.dtype == bool
    np.testing.assert_array_equal(out, ref)


def test_grayscale_opening_keeps_dtype():
    img = _image((10, 20, 20))
    p = MorphologyParams(radius=1)
    out, _ = run_steps(img, {"m": ("opening", p, ("input",))}, "m", (3, 6, 7))
    np.testing.assert_array_equal(out, morphology.opening(img, morphology.ball(1)))
    assert out.dtype == img.dtype


@pytest.mark.parametrize("shape, chunks", _cases())
@pytest.mark.parametrize("cap", [1.5, 3.0, 10.0])
def test_distance_transform_capped(shape, chunks, cap):
    mask = _mask(shape, fill=0.7)
    p = DistanceParams(max_distance=cap)
    out, _ = run_steps(mask, {"d": ("distance_transform", p, ("input",))}, "d", chunks, "mask")
    ref = np.minimum(ndi.distance_transform_edt(mask), cap)
    np.testing.assert_array_equal(out, ref)


def test_distance_transform_anisotropic_and_all_foreground():
    mask = _mask((10, 24, 22), fill=0.8)
    p = DistanceParams(max_distance=4.0, spacing=[2.0, 0.5, 0.5])
    out, engine = run_steps(
        mask, {"d": ("distance_transform", p, ("input",))}, "d", (3, 7, 5), "mask"
    )
    ref = np.minimum(ndi.distance_transform_edt(mask, sampling=(2.0, 0.5, 0.5)), 4.0)
    np.testing.assert_array_equal(out, ref)
    assert engine.program("d").margins["input"] == (2, 8, 8)
    full = np.ones((6, 9, 8), bool)
    full[0, 0, 0] = False
    out, _ = run_steps(full, {"d": ("distance_transform", p, ("input",))}, "d", (2, 3, 3), "mask")
    np.testing.assert_array_equal(
        out, np.minimum(ndi.distance_transform_edt(full, sampling=(2.0, 0.5, 0.5)), 4.0)
    )


@pytest.mark.parametrize(
    "op, params",
    [
        ("median", MedianParams(size=3)),
        ("closing", MorphologyParams(radius=1)),
        ("threshold_local", LocalThresholdParams(block_size=5, method="mean")),
    ],
)
def test_one_voxel_thick_blocks(op, params):
    img = _image((6, 9, 8)) if op != "closing" else _mask((6, 9, 8))
    role = "mask" if op == "closing" else "image"
    out, _ = run_steps(img, {"o": (op, params, ("input",))}, "o", (1, 4, 1), role)
    whole, _ = run_steps(img, {"o": (op, params, ("input",))}, "o", (6, 9, 8), role)
    np.testing.assert_array_equal(out, whole)


@pytest.mark.parametrize("chunks", [(2, 5, 4), (5, 6, 7), (12, 17, 15)])
@pytest.mark.parametrize("distance, spacing", [(1.0, None), (3.0, None), (2.5, [2.0, 1.0, 1.0])])
def test_expand_labels(chunks, distance, spacing):
    from skimage import measure, segmentation

    from pipeline.ops.distance import ExpandParams
    from pipeline.ops.labelling import LabelParams

    mask = _mask((12, 17, 15), fill=0.15)
    steps = {
        "obj": ("label", LabelParams(), ("input",)),
        "big": ("expand_labels", ExpandParams(distance=distance, spacing=spacing), ("obj",)),
    }
    out, _ = run_steps(mask, steps, "big", chunks, role="mask")
    ref = segmentation.expand_labels(
        measure.label(mask), distance, spacing=spacing if spacing else 1
    )
    np.testing.assert_array_equal(out, ref)


def test_distance_in_the_images_own_voxel_size(tmp_path):
    import zarr

    import pipeline

    mask = _mask((10, 24, 22), fill=0.8)
    np.save(tmp_path / "m.npy", mask.astype(np.uint8))
    cfg = {
        "input": {"path": str(tmp_path / "m.npy"), "chunks": [3, 7, 5], "spacing": [2, 0.5, 0.5]},
        "steps": {
            "m": {"op": "threshold", "value": 0},
            "d": {"op": "distance_transform", "max_distance": 3.0, "spacing": "input"},
            "core": {"op": "threshold", "value": 1.2},
            "obj": {"op": "label"},
        },
        "output": {"path": str(tmp_path / "out"), "labels": "obj"},
    }
    res = pipeline.run(cfg)
    from skimage.measure import label

    dist = np.minimum(ndi.distance_transform_edt(mask, sampling=(2, 0.5, 0.5)), 3.0)
    got = np.asarray(zarr.open_group(str(res.labels_path), mode="r")["0"])
    np.testing.assert_array_equal(got, label(dist > 1.2))
