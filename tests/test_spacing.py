"""Voxel size and unit travel from the input's metadata (or the config) into the OME-Zarr
scale, the objects table and the summary."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr
from scipy import ndimage as ndi

import pipeline
from tests.conftest import smooth_field
from tests.measure.test_objects import _read


def _config(path, out, **input_extra):
    return {
        "input": {"path": str(path), "chunks": [8, 32, 32], **input_extra},
        "steps": {
            "mask": {"op": "threshold", "method": "otsu"},
            "cells": {"op": "label", "connectivity": 1},
        },
        "output": {
            "path": str(out),
            "labels": "cells",
            "image": "input",
            "table": {"format": "csv", "properties": ["label", "num_pixels", "area", "centroid"]},
        },
    }


def _scales(group) -> list[list[float]]:
    ms = group.attrs["ome"]["multiscales"][0]
    return [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]


def _units(group) -> set:
    return {a.get("unit") for a in group.attrs["ome"]["multiscales"][0]["axes"]}


def _check(res, spacing, unit):
    labels_group = zarr.open_group(str(res.labels_path), mode="r")
    image_group = zarr.open_group(str(res.labels_path.parents[1]), mode="r")
    for group in (labels_group, image_group):
        assert _scales(group)[0] == pytest.approx(spacing)
        assert _units(group) == {unit}
    labels = labels_group["0"][:]
    cols, _ = _read(res.summary["table"])
    counts = np.bincount(labels.ravel())[1:]
    np.testing.assert_allclose(cols["area"].astype(float), counts * np.prod(spacing))
    assert set(cols["unit"]) == {unit}
    centre = ndi.center_of_mass(labels > 0, labels, 1)
    assert float(cols["centroid-0"][0]) == pytest.approx(centre[0] * spacing[0])
    assert res.summary["input"]["spacing"] == pytest.approx(spacing)
    assert res.summary["input"]["unit"] == unit
    assert res.summary["object_sizes"]["unit"] == f"{unit}^3"
    assert res.summary["object_sizes"]["voxel_size"] == pytest.approx(np.prod(spacing))


def test_ome_tiff_spacing_everywhere(tmp_path):
    path = tmp_path / "in.ome.tif"
    meta = {"axes": "ZYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25, "PhysicalSizeZ": 1.5}
    tifffile.imwrite(path, smooth_field((16, 64, 64)), ome=True, metadata=meta)
    res = pipeline.run(_config(path, tmp_path / "a"))
    _check(res, [1.5, 0.25, 0.25], "micrometer")


def test_config_overrides_metadata(tmp_path):
    path = tmp_path / "in.ome.tif"
    meta = {"axes": "ZYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25, "PhysicalSizeZ": 1.5}
    tifffile.imwrite(path, smooth_field((16, 64, 64)), ome=True, metadata=meta)
    res = pipeline.run(_config(path, tmp_path / "a", spacing=[4.0, 0.5, 0.5], unit="nanometer"))
    _check(res, [4.0, 0.5, 0.5], "nanometer")


def test_ome_zarr_output_read_back_as_input(tmp_path):
    """An image segpipe wrote is an OME-Zarr input with the same voxel size and unit."""
    path = tmp_path / "in.tif"
    tifffile.imwrite(
        path,
        smooth_field((16, 64, 64), seed=1),
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.2),
        metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"},
    )
    first = pipeline.run(_config(path, tmp_path / "a"))
    _check(first, [2.0, 0.2, 0.2], "micrometer")
    again = pipeline.run(_config(tmp_path / "a" / "image.ome.zarr", tmp_path / "b"))
    _check(again, [2.0, 0.2, 0.2], "micrometer")
    np.testing.assert_array_equal(
        zarr.open_array(str(again.labels_path / "0"))[:],
        zarr.open_array(str(first.labels_path / "0"))[:],
    )
