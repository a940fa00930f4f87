"""Every input format end to end through ``segpipe run``: labels equal to scikit-image on
the whole array, the voxel size in the OME-Zarr scale and the table, NIfTI labels placed
where the input lies, and a time series run per timepoint."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
import yaml
import zarr
from skimage.filters import threshold_otsu
from skimage.measure import label

from pipeline.cli import main
from tests.conftest import smooth_field
from tests.input_files import write_dicom_series, write_nifti, write_ome_zarr_image
from tests.measure.test_objects import _read

nib = pytest.importorskip("nibabel")
pytest.importorskip("pydicom")
h5py = pytest.importorskip("h5py")

SHAPE = (12, 40, 48)


VOL = smooth_field(SHAPE, seed=3, sigma=1.2)  # many blobs; fits int16 for DICOM too


def _reference(img: np.ndarray) -> np.ndarray:
    return label(img > threshold_otsu(img), connectivity=1)


def _run(tmp_path, path, name="out", output=None, **input_extra) -> int:
    cfg = {
        "input": {"path": str(path), "chunks": [5, 16, 16], **input_extra},
        "steps": {
            "mask": {"op": "threshold", "method": "otsu"},
            "cells": {"op": "label", "connectivity": 1},
        },
        "output": {
            "path": str(tmp_path / name),
            "labels": "cells",
            "table": {"format": "csv", "properties": ["label", "num_pixels", "area"]},
            **(output or {}),
        },
    }
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return main(["run", str(config)])


def _check(out, want: np.ndarray, spacing, unit) -> dict:
    """Labels, OME-Zarr scale and unit, table areas and summary of the run in ``out``."""
    summary = json.loads((out / "summary.json").read_text())
    group = zarr.open_group(summary["labels"], mode="r")
    np.testing.assert_array_equal(group["0"][:], want)
    ms = group.attrs["ome"]["multiscales"][0]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == pytest.approx(spacing)
    assert {a.get("unit") for a in ms["axes"]} == {unit}
    cols, _ = _read(summary["table"])
    sizes = np.bincount(want.ravel())[1:]
    np.testing.assert_allclose(cols["area"].astype(float), sizes * np.prod(spacing))
    assert set(cols["unit"]) == {unit}
    assert summary["input"]["spacing"] == pytest.approx(spacing)
    return summary


def test_nifti(tmp_path):
    path = write_nifti(tmp_path / "scan.nii.gz", VOL, zooms=(0.9, 0.8, 2.0))
    assert _run(tmp_path, path, output={"nifti": True}) == 0
    summary = _check(tmp_path / "out", _reference(VOL), [2.0, 0.8, 0.9], "millimeter")
    img = nib.load(path)
    np.testing.assert_allclose(summary["input"]["affine"], img.affine)
    written = nib.load(tmp_path / "out" / "labels.nii.gz")
    np.testing.assert_array_equal(np.asarray(written.dataobj).transpose(2, 1, 0), _reference(VOL))
    np.testing.assert_allclose(written.affine, img.affine)  # opens where the scan lies


def test_dicom_series(tmp_path):
    names = [f"IM{(7 * k) % 12:04d}" for k in range(SHAPE[0])]  # no suffix, scrambled
    stored = VOL.astype(np.int16)
    write_dicom_series(tmp_path / "ct", stored, spacing=(2.5, 0.7, 0.6), names=names)
    assert _run(tmp_path, tmp_path / "ct", output={"nifti": True}) == 0
    hu = stored.astype(np.int32) - 1024
    _check(tmp_path / "out", _reference(hu), [2.5, 0.7, 0.6], "millimeter")
    written = nib.load(tmp_path / "out" / "labels.nii.gz")
    np.testing.assert_array_equal(np.asarray(written.dataobj).transpose(2, 1, 0), _reference(hu))
    # DICOM's LPS becomes NIfTI's RAS: x and y flip sign.
    want = np.array([[-0.6, 0, 0, 100], [0, -0.7, 0, 120], [0, 0, 2.5, 30], [0, 0, 0, 1]])
    np.testing.assert_allclose(written.affine, want, atol=1e-9)


def test_hdf5(tmp_path):
    with h5py.File(tmp_path / "vol.h5", "w") as fh:
        ds = fh.create_dataset("data/raw", data=VOL, chunks=(4, 20, 24))
        ds.attrs["element_size_um"] = [1.5, 0.3, 0.3]
    assert _run(tmp_path, tmp_path / "vol.h5", dataset="data/raw") == 0
    _check(tmp_path / "out", _reference(VOL), [1.5, 0.3, 0.3], "micrometer")


def test_tiff_sequence_with_channels_and_a_region(tmp_path):
    other = smooth_field(SHAPE, seed=9, sigma=1.2)
    for z in range(SHAPE[0]):
        tifffile.imwrite(tmp_path / f"scan_z{z:02d}_c0.tif", other[z])
        tifffile.imwrite(tmp_path / f"scan_z{z:02d}_c1.tif", VOL[z])
    region = {"z": [2, 11], "x": [5, 45]}
    pattern = str(tmp_path / "scan_*.tif")
    assert _run(tmp_path, pattern, channel=1, region=region, spacing=[2, 1, 1], unit="um") == 0
    summary = _check(tmp_path / "out", _reference(VOL[2:11, :, 5:45]), [2, 1, 1], "micrometer")
    assert summary["input"]["crop"] == {"z": [2, 11], "x": [5, 45]}


def test_ome_tiff_series_and_level(tmp_path):
    path = tmp_path / "multi.ome.tif"
    meta = {"axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 1.0}
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(smooth_field((4, 16, 16), seed=1, sigma=1.2), metadata=meta)
        tif.write(VOL, subifds=1, metadata=meta, tile=(16, 16))
        tif.write(VOL[:, ::2, ::2], subfiletype=1, tile=(16, 16))
    assert _run(tmp_path, path, series=1, level=1) == 0
    _check(tmp_path / "out", _reference(VOL[:, ::2, ::2]), [1.0, 0.4, 0.4], "micrometer")


def _rows(path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {r["name"]: r for r in csv.DictReader(fh)}


def test_time_series_per_timepoint(tmp_path):
    series = np.stack([smooth_field(SHAPE, seed=s, sigma=1.2) for s in (4, 5, 6)])  # t, z, y, x
    path = tmp_path / "movie.ome.tif"
    meta = {"axes": "TZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 2.0}
    tifffile.imwrite(path, series, ome=True, metadata=meta)
    assert _run(tmp_path, path, timepoint="all") == 0
    rows = _rows(tmp_path / "out" / "batch.csv")
    assert list(rows) == ["t0000", "t0001", "t0002"]
    for t in range(3):
        want = _reference(series[t])
        row = rows[f"t{t:04d}"]
        assert (row["timepoint"], row["status"], int(row["count"])) == (str(t), "done", want.max())
        summary = _check(tmp_path / "out" / f"t{t:04d}", want, [2.0, 0.5, 0.5], "micrometer")
        assert summary["input"]["fixed"] == {"t": [t]}
    # One timepoint alone, as a job-array task runs it: no batch table.
    config = tmp_path / "one.yaml"
    config.write_text((tmp_path / "out.yaml").read_text().replace("/out", "/one"))
    assert main(["run", str(config), "--input", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["t0001"]
    _check(tmp_path / "one" / "t0001", _reference(series[1]), [2.0, 0.5, 0.5], "micrometer")
    # A chosen list of timepoints, from a 4D NIfTI.
    nifti = tmp_path / "movie.nii.gz"
    nib.save(nib.Nifti1Image(series.transpose(3, 2, 1, 0).copy(), np.eye(4)), nifti)
    assert _run(tmp_path, nifti, name="some", timepoint=[2, 0]) == 0
    rows = _rows(tmp_path / "some" / "batch.csv")
    assert list(rows) == ["t0002", "t0000"]
    assert int(rows["t0002"]["count"]) == _reference(series[2]).max()


def test_timepoint_all_without_a_time_axis(tmp_path, capsys):
    path = write_nifti(tmp_path / "scan.nii", VOL)
    assert _run(tmp_path, path, timepoint="all") == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "input.timepoint: the image has no timepoint axis" in err[0]


def test_nifti_labels_of_a_resized_region(tmp_path):
    """Labels made on a halved grid of a region still land where the scan lies."""
    path = write_nifti(tmp_path / "scan.nii", VOL, zooms=(0.9, 0.8, 2.0))
    cfg = {
        "input": {"path": str(path), "region": {"y": [4, 40]}},
        "steps": {
            "half": {"op": "resize", "scale": 0.5},
            "mask": {"op": "threshold", "method": "otsu"},
            "cells": {"op": "label", "connectivity": 1},
        },
        "output": {"path": str(tmp_path / "out"), "labels": "cells", "nifti": True},
    }
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert main(["run", str(config)]) == 0
    written = nib.load(tmp_path / "out" / "labels.nii.gz")
    assert written.shape == (24, 18, 6)  # x, y, z of the halved (12, 36, 48) region
    # Output voxel i is centred on input voxel 2 i + 0.5 (skimage's resize), from y = 4 on.
    index = np.array([[2, 0, 0, 0.5], [0, 2, 0, 4.5], [0, 0, 2, 0.5], [0, 0, 0, 1]])
    np.testing.assert_allclose(written.affine, nib.load(path).affine @ index, atol=1e-6)


def test_ome_zarr_series_and_level(tmp_path):
    root = zarr.open_group(tmp_path / "b2r.ome.zarr", mode="w")
    root.attrs["ome"] = {"version": "0.5", "bioformats2raw.layout": 3}
    write_ome_zarr_image(
        root.create_group("0"), [smooth_field((4, 16, 16), seed=2, sigma=1.2)], (1.0, 1.0, 1.0)
    )
    write_ome_zarr_image(root.create_group("1"), [VOL, VOL[:, ::2, ::2]], (2.0, 0.25, 0.25))
    assert _run(tmp_path, tmp_path / "b2r.ome.zarr", series=1, level=1) == 0
    _check(tmp_path / "out", _reference(VOL[:, ::2, ::2]), [2.0, 0.5, 0.5], "micrometer")
