"""The write pass: an OME-Zarr image with its labels in labels/<name>, as NGFF 0.5 lays out."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from ome_zarr_models.v05.image import Image
from ome_zarr_models.v05.image_label import ImageLabel
from ome_zarr_models.v05.labels import Labels
from skimage.measure import block_reduce

import pipeline
from pipeline.errors import ConfigError, DataError
from pipeline.io.ome_zarr import downsample_mean
from tests.conftest import smooth_field


def _config(tmp_path, img, chunks, **output):
    np.save(tmp_path / "in.npy", img)
    return {
        "input": {"path": str(tmp_path / "in.npy"), "chunks": list(chunks)},
        "steps": {
            "mask": {"op": "threshold", "method": "otsu"},
            "cells": {"op": "label", "connectivity": 1},
        },
        "output": {"path": str(tmp_path / "out"), "labels": "cells", "overwrite": True, **output},
    }


@pytest.mark.parametrize(
    "shape, chunks, spacing",
    [((64, 96, 80), (32, 32, 40), [2.0, 0.5, 0.5]), ((70, 90), (32, 32), None)],
)
def test_image_and_labels_group(tmp_path, shape, chunks, spacing):
    img = smooth_field(shape, noise=True)
    cfg = _config(tmp_path, img, chunks, image="input")
    if spacing:
        cfg["input"]["spacing"] = spacing
        cfg["input"]["unit"] = "micrometer"
    res = pipeline.run(cfg)
    root_path = tmp_path / "out" / "image.ome.zarr"
    assert res.labels_path == root_path / "labels" / "cells"
    root = zarr.open_group(str(root_path), mode="r")
    image = Image.from_zarr(root)
    labels_group = Labels.from_zarr(root["labels"])
    assert labels_group.ome_attributes.labels == ["cells"]
    label_image = ImageLabel.from_zarr(root["labels/cells"])
    attrs = label_image.ome_attributes
    assert attrs.image_label.source.image == "../../"
    # Same pyramid in both, level 0 of the image is the input itself.
    levels = [d.path for d in image.ome_attributes.multiscales[0].datasets]
    assert levels == [d.path for d in attrs.multiscales[0].datasets]
    assert len(levels) == 2
    np.testing.assert_array_equal(root["0"][:], img)
    # Level 1 is the mean of 2-voxel cubes of the whole image, whatever the blocks.
    np.testing.assert_array_equal(root["1"][:], downsample_mean(img, 2))
    # Per-label properties: voxel counts and physical areas.
    labels = root["labels/cells/0"][:]
    counts = np.bincount(labels.ravel())[1:]
    props = {
        p["label-value"]: p for p in root["labels/cells"].attrs["ome"]["image-label"]["properties"]
    }
    assert sorted(props) == list(range(1, res.count + 1))
    voxel = float(np.prod(spacing)) if spacing else 1.0
    for i, n in enumerate(counts, start=1):
        assert props[i]["num_pixels"] == n
        assert props[i]["area"] == pytest.approx(n * voxel)
    scale = attrs.multiscales[0].datasets[1].coordinateTransformations[0].scale
    assert scale == [2 * s for s in (spacing or [1.0] * len(shape))]


def test_downsample_mean_equals_block_reduce():
    img = smooth_field((16, 24, 20), seed=3, noise=True)
    want = np.rint(block_reduce(img, (2, 2, 2), np.mean)).astype(img.dtype)
    np.testing.assert_array_equal(downsample_mean(img, 2), want)
    odd = smooth_field((5, 7), seed=4, noise=True).astype(np.float32)
    got = downsample_mean(odd, 4)
    assert got.shape == (2, 2)
    assert got[1, 1] == pytest.approx(odd[4:, 4:].mean())  # a cut-off cube: its own mean


def test_ome_zarr_reader_opens_image_and_labels(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    img = smooth_field((64, 64, 64), seed=1, noise=True)
    res = pipeline.run(_config(tmp_path, img, (32, 32, 32), image="input"))
    nodes = list(Reader(parse_url(str(tmp_path / "out" / "image.ome.zarr")))())
    specs = {type(s) for n in nodes for s in n.specs}
    assert {Multiscales, Label} <= specs
    label_node = next(n for n in nodes if any(isinstance(s, Label) for s in n.specs))
    np.testing.assert_array_equal(
        np.asarray(label_node.data[0]), zarr.open_array(str(res.labels_path / "0"))[:]
    )
    assert np.asarray(nodes[0].data[0]).shape == img.shape


def test_image_must_be_an_image_step(tmp_path):
    with pytest.raises(
        ConfigError, match="output.image: step 'mask' gives mask, expected an image"
    ):
        pipeline.run(_config(tmp_path, smooth_field((8, 8), noise=True), (4, 4), image="mask"))
    with pytest.raises(ConfigError, match="output.image: names no step"):
        pipeline.run(_config(tmp_path, smooth_field((8, 8), noise=True), (4, 4), image="nope"))


def test_image_refused_with_a_final_resize(tmp_path):
    cfg = _config(tmp_path, smooth_field((16, 16), noise=True), (8, 8), image="input")
    cfg["steps"]["big"] = {"op": "resize", "scale": 2.0, "order": 0}
    cfg["output"]["labels"] = "big"
    with pytest.raises(DataError, match="output.image: not supported"):
        pipeline.run(cfg)
    assert not (tmp_path / "out" / "summary.json").exists()
