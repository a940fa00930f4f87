"""Voxel size and unit from TIFF metadata: OME-XML, ImageJ, resolution tags."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from pipeline.io.readers import open_source


def _open(path):
    return open_source(str(path), None, None, None, None, None)


def test_ome_tiff_physical_size(tmp_path):
    path = tmp_path / "a.ome.tif"
    data = np.zeros((4, 10, 12), np.uint16)
    meta = {"axes": "ZYX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.25, "PhysicalSizeZ": 1.5}
    tifffile.imwrite(path, data, ome=True, metadata=meta)
    src = _open(path)
    assert src.spacing == pytest.approx((1.5, 0.25, 0.325))
    assert src.unit == "micrometer"


def test_ome_tiff_nanometres(tmp_path):
    path = tmp_path / "b.ome.tif"
    meta = {
        "axes": "YX",
        "PhysicalSizeX": 40.0,
        "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 40.0,
        "PhysicalSizeYUnit": "nm",
    }
    tifffile.imwrite(path, np.zeros((8, 9), np.uint8), ome=True, metadata=meta)
    src = _open(path)
    assert src.spacing == pytest.approx((40.0, 40.0))
    assert src.unit == "nanometer"


def test_imagej_spacing(tmp_path):
    path = tmp_path / "c.tif"
    tifffile.imwrite(
        path,
        np.zeros((3, 8, 8), np.uint8),
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.4),
        metadata={"spacing": 2.5, "unit": "um", "axes": "ZYX"},
    )
    src = _open(path)
    assert src.spacing == pytest.approx((2.5, 0.4, 0.2))
    assert src.unit == "micrometer"


@pytest.mark.parametrize(
    ("resolution", "unit", "spacing", "spacing_unit"),
    [
        ((20000.0, 10000.0), "CENTIMETER", (1.0, 0.5), "micrometer"),
        ((72.0, 72.0), "INCH", (1.0, 1.0), None),  # dots per inch say nothing of the sample
    ],
)
def test_resolution_tags(tmp_path, resolution, unit, spacing, spacing_unit):
    path = tmp_path / "d.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), resolution=resolution, resolutionunit=unit)
    src = _open(path)
    assert src.spacing == pytest.approx(spacing)
    assert src.unit == spacing_unit
