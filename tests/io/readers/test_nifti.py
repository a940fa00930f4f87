"""NIfTI: the sample files nibabel ships, files written here, and labels written back."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pipeline.errors import DataError
from pipeline.io.nifti_labels import nifti_affine, write_nifti_labels
from pipeline.io.readers import open_source
from tests.input_files import write_nifti

nib = pytest.importorskip("nibabel")
SAMPLES = os.path.join(os.path.dirname(nib.__file__), "tests", "data")


def _all(src) -> np.ndarray:
    return src.read(tuple((0, n) for n in src.shape))


@pytest.mark.parametrize(
    ("name", "timepoint"),
    [("anatomical.nii", None), ("example4d.nii.gz", 1), ("functional.nii", 7)],
)
def test_nibabel_samples(name, timepoint):
    path = os.path.join(SAMPLES, name)  # shipped with nibabel: no download
    img = nib.load(path)
    src = open_source(path, timepoint=timepoint)
    data = np.asarray(img.dataobj)
    if timepoint is not None:
        data = data[..., timepoint]
    np.testing.assert_array_equal(_all(src), data.transpose(2, 1, 0))
    assert src.spacing == pytest.approx(tuple(float(z) for z in img.header.get_zooms()[:3][::-1]))
    assert src.unit == "millimeter"
    np.testing.assert_array_equal(np.asarray(src.affine), img.affine)
    assert src.world_space == "RAS"
    # anatomical.nii is big-endian: blocks arrive in native byte order
    assert np.dtype(src.dtype).isnative


def test_slab_reads(tmp_path):
    vol = np.random.default_rng(0).integers(0, 4000, (9, 7, 5)).astype(np.uint16)
    for name in ("v.nii", "v.nii.gz"):
        src = open_source(write_nifti(tmp_path / name, vol))
        assert src.shape == vol.shape and src.storage_chunks == (1, 7, 5)
        np.testing.assert_array_equal(src.read(((2, 6), (1, 7), (0, 3))), vol[2:6, 1:7, 0:3])
        assert src.spacing == pytest.approx((2.0, 0.8, 0.9))


def test_4d_needs_a_timepoint():
    with pytest.raises(DataError, match=r"2 timepoints: choose one with input\.timepoint"):
        open_source(os.path.join(SAMPLES, "example4d.nii.gz"))


def test_unreadable_nifti(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti file at all")
    with pytest.raises(DataError, match=r"bad\.nii\.gz: not a readable NIfTI"):
        open_source(bad)


@pytest.mark.parametrize("name", ["labels.nii.gz", "labels.nii"])
def test_labels_written_back_with_the_affine(tmp_path, name):
    vol = np.zeros((6, 5, 4), np.uint16)
    affine = np.array([[0, 0, 2.0, 3], [0, -0.8, 0, 4], [0.9, 0, 0, 5], [0, 0, 0, 1]])
    src = open_source(write_nifti(tmp_path / "in.nii.gz", vol, affine=affine), region={"z": [1, 5]})
    labels = np.arange(4 * 5 * 4, dtype=np.uint32).reshape(4, 5, 4) * 5
    out = write_nifti_labels(
        labels, int(labels.max()), tmp_path / name, nifti_affine(src), src.unit
    )
    img = nib.load(out)
    np.testing.assert_array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), labels)
    assert img.get_data_dtype() == np.uint16  # the largest label fits uint16
    # The region starts at z = 1: the label image's origin is input voxel (0, 0, 1).
    np.testing.assert_allclose(
        img.affine, affine @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]])
    )
    assert img.header.get_xyzt_units()[0] == "mm"
