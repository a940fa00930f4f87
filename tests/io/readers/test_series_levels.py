"""Multi-series and multi-resolution files: TIFF series and pyramid levels, OME-Zarr levels,
bioformats2raw series; spatial regions."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

from pipeline.errors import DataError
from pipeline.io.readers import open_source
from tests.input_files import write_ome_zarr_image

A = np.random.default_rng(0).integers(0, 255, (4, 32, 48)).astype(np.uint8)
B = np.random.default_rng(1).integers(0, 4000, (3, 16, 16)).astype(np.uint16)


def _all(src) -> np.ndarray:
    return src.read(tuple((0, n) for n in src.shape))


@pytest.fixture
def ome_tiff(tmp_path):
    path = tmp_path / "multi.ome.tif"
    meta_a = {"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 2.0}
    meta_b = {"axes": "ZYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25, "PhysicalSizeZ": 1.0}
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(A, subifds=1, metadata=meta_a, tile=(16, 16))
        tif.write(A[:, ::2, ::2], subfiletype=1, tile=(16, 16))  # level 1 of series 0
        tif.write(B, metadata=meta_b)
    return path


def test_tiff_series_and_levels(ome_tiff):
    src = open_source(ome_tiff)
    assert src.spacing == (2.0, 0.5, 0.5)
    np.testing.assert_array_equal(_all(src), A)
    low = open_source(ome_tiff, level=1)
    np.testing.assert_array_equal(_all(low), A[:, ::2, ::2])
    assert low.spacing == (2.0, 1.0, 1.0)  # the reduced level's voxels are twice as wide
    second = open_source(ome_tiff, series=1)
    np.testing.assert_array_equal(_all(second), B)
    assert second.spacing == (1.0, 0.25, 0.25)  # the second image's own OME sizes


def test_tiff_series_and_level_out_of_range(ome_tiff):
    with pytest.raises(DataError, match=r"input\.series: expected 0\.\.1, got 2 \(series 0: ZYX"):
        open_source(ome_tiff, series=2)
    with pytest.raises(DataError, match=r"input\.level: expected 0\.\.1, got 3"):
        open_source(ome_tiff, level=3)
    with pytest.raises(DataError, match=r"input\.series: expected a number"):
        open_source(ome_tiff, series="1.2.3")


def test_ome_zarr_levels_and_bioformats2raw_series(tmp_path):
    root = zarr.open_group(tmp_path / "b2r.ome.zarr", mode="w")
    root.attrs["ome"] = {"version": "0.5", "bioformats2raw.layout": 3}
    write_ome_zarr_image(root.create_group("0"), [A, A[:, ::2, ::2]], (3.0, 0.5, 0.5))
    write_ome_zarr_image(root.create_group("1"), [B], (1.0, 0.2, 0.2))
    path = tmp_path / "b2r.ome.zarr"
    first = open_source(path)
    np.testing.assert_array_equal(_all(first), A)
    assert first.spacing == (3.0, 0.5, 0.5) and first.unit == "micrometer"
    low = open_source(path, level=1)
    np.testing.assert_array_equal(_all(low), A[:, ::2, ::2])
    assert low.spacing == (3.0, 1.0, 1.0)
    np.testing.assert_array_equal(_all(open_source(path, series=1)), B)
    with pytest.raises(DataError, match=r"input\.series: expected 0\.\.1, got 5"):
        open_source(path, series=5)
    with pytest.raises(DataError, match=r"input\.level: expected 0\.\.0, got 1"):
        open_source(path, series=1, level=1)


def test_region(ome_tiff):
    src = open_source(ome_tiff, region={"z": [1, 3], "x": [10, 40]})
    assert src.shape == (2, 32, 30)
    np.testing.assert_array_equal(_all(src), A[1:3, :, 10:40])
    np.testing.assert_array_equal(src.read(((1, 2), (5, 9), (0, 4))), A[2:3, 5:9, 10:14])
    with pytest.raises(DataError, match=r"input\.region\.y: expected start < stop within 0\.\.32"):
        open_source(ome_tiff, region={"y": [5, 40]})


def test_zarr_without_series_or_levels(tmp_path):
    zarr.create_array(tmp_path / "plain.zarr", data=A, chunks=(2, 16, 16))
    with pytest.raises(DataError, match=r"input\.series and input\.level need an OME-Zarr image"):
        open_source(tmp_path / "plain.zarr", level=1)
    root = zarr.open_group(tmp_path / "one.ome.zarr", mode="w")
    write_ome_zarr_image(root, [A], (1.0, 1.0, 1.0))
    with pytest.raises(DataError, match=r"input\.series: the store holds one image, got 1"):
        open_source(tmp_path / "one.ome.zarr", series=1)
