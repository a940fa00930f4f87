"""DICOM series: slice order by position, rescale, spacing, mixed series, decoders."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from pipeline.errors import DataError
from pipeline.io.readers import open_source
from tests.input_files import write_dicom_series

pydicom = pytest.importorskip("pydicom")


def _volume(shape=(6, 10, 12), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-500, 1500, shape).astype(np.int16)


def _all(src) -> np.ndarray:
    return src.read(tuple((0, n) for n in src.shape))


def test_slices_ordered_by_position_not_name_or_instance_number(tmp_path):
    vol = _volume()
    # Names and InstanceNumbers both disagree with the order along the normal.
    names = [f"img{n}.dcm" for n in (5, 2, 4, 0, 3, 1)]
    # Rows run along x, columns along -z: the normal is +y (a coronal series).
    orientation = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
    write_dicom_series(
        tmp_path / "ct", vol, names=names, instance_numbers=[6, 5, 4, 3, 2, 1],
        orientation=orientation,
    )  # fmt: skip
    src = open_source(tmp_path / "ct")
    assert src.shape == vol.shape
    np.testing.assert_array_equal(_all(src), vol.astype(np.int32) - 1024)
    assert src.dtype == np.dtype(np.int32).str  # int16 minus 1024 needs more than int16
    assert src.spacing == pytest.approx((2.5, 0.8, 0.7))
    assert src.unit == "millimeter"
    affine = np.asarray(src.affine)
    # Voxel (x, y, z) → LPS: x along the row cosine, y along the column cosine, z the normal.
    np.testing.assert_allclose(affine[:3, 0], [0.7, 0, 0])
    np.testing.assert_allclose(affine[:3, 1], [0, 0, -0.8])
    np.testing.assert_allclose(affine[:3, 2], [0, 2.5, 0])
    np.testing.assert_allclose(affine[:3, 3], [-100, -120, 30])
    assert src.world_space == "LPS"


def test_slices_in_descending_position_are_sorted(tmp_path):
    vol = _volume(seed=1)
    # Written so that file k lies at -k * spacing: the lowest position is the last file.
    write_dicom_series(tmp_path / "s", vol, orientation=(1, 0, 0, 0, -1, 0), spacing=(2.0, 1, 1))
    src = open_source(tmp_path / "s")
    # The normal of (1,0,0)x(0,-1,0) is -z; sorting along it keeps the written order.
    np.testing.assert_array_equal(_all(src), vol.astype(np.int32) - 1024)
    assert src.spacing[0] == pytest.approx(2.0)


def test_rescale_slope_gives_exact_floats(tmp_path):
    vol = _volume(seed=2)
    write_dicom_series(tmp_path / "pet", vol, rescale=(0.25, -3.5))
    src = open_source(tmp_path / "pet")
    assert src.dtype == np.dtype(np.float64).str
    np.testing.assert_array_equal(_all(src), vol.astype(np.float64) * 0.25 - 3.5)


def test_block_read_matches_whole(tmp_path):
    vol = _volume((7, 9, 11), seed=3)
    write_dicom_series(tmp_path / "b", vol, rescale=(1.0, 0.0))
    src = open_source(tmp_path / "b")
    block = src.read(((2, 5), (1, 8), (3, 11)))
    np.testing.assert_array_equal(block, vol[2:5, 1:8, 3:11])


def test_other_files_in_the_folder_are_ignored(tmp_path):
    vol = _volume((3, 5, 6), seed=4)
    write_dicom_series(tmp_path / "d", vol)
    (tmp_path / "d" / "README.txt").write_text("notes")
    (tmp_path / "d" / "DICOMDIR.bin").write_bytes(b"\0" * 300)
    assert open_source(tmp_path / "d").shape == vol.shape


def test_mixed_series_reported_and_chosen(tmp_path):
    a, b = _volume((4, 8, 8), seed=5), _volume((3, 8, 8), seed=6)
    folder = tmp_path / "mixed"
    write_dicom_series(folder, a, series_uid="1.2.3.4", description="arterial",
                       names=[f"a{k}.dcm" for k in range(4)])  # fmt: skip
    write_dicom_series(folder, b, series_uid="1.2.3.5", description="venous",
                       names=[f"b{k}.dcm" for k in range(3)])  # fmt: skip
    with pytest.raises(DataError, match=r"several series.*input\.series.*1\.2\.3\.4.*arterial"):
        open_source(folder)
    src = open_source(folder, series="1.2.3.5")
    np.testing.assert_array_equal(_all(src), b.astype(np.int32) - 1024)
    assert open_source(folder, series=0).shape == a.shape
    with pytest.raises(DataError, match=r"has no series '9\.9'"):
        open_source(folder, series="9.9")


def test_two_slices_at_one_position(tmp_path):
    vol = _volume((3, 5, 5), seed=7)
    write_dicom_series(tmp_path / "a", vol[:2], names=["a0.dcm", "a1.dcm"])
    write_dicom_series(tmp_path / "a", vol[2:], names=["b0.dcm"])  # at slice 0's position
    with pytest.raises(DataError, match="same position"):
        open_source(tmp_path / "a")


def test_missing_slice_is_reported(tmp_path):
    vol = _volume((5, 5, 5), seed=8)
    write_dicom_series(tmp_path / "gap", vol)
    os.remove(tmp_path / "gap" / "slice002.dcm")
    with pytest.raises(DataError, match="slice spacing varies from 2.5 to 5 mm"):
        open_source(tmp_path / "gap")


def test_pydicom_sample_files():
    from pydicom.data import get_testdata_file

    for name in ("CT_small.dcm", "MR_small.dcm"):
        path = get_testdata_file(name)  # shipped with pydicom: no download
        ds = pydicom.dcmread(path)
        src = open_source(path)
        assert src.shape == (1, ds.Rows, ds.Columns)
        want = ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(
            ds.get("RescaleIntercept", 0)
        )
        np.testing.assert_array_equal(_all(src)[0], want)
        assert src.spacing[1:] == pytest.approx(tuple(float(v) for v in ds.PixelSpacing))


def test_missing_decoder_names_the_plugin(tmp_path):
    from pydicom.data import get_testdata_file
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    folder = tmp_path / "jls"
    folder.mkdir()
    shutil.copy(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"), folder / "a.dcm")
    with pytest.raises(DataError, match=r"compressed as JPEG-LS.*pip install pylibjpeg"):
        open_source(folder)


def test_colour_dicom_refused():
    from pydicom.data import get_testdata_file

    with pytest.raises(DataError, match="colour DICOM"):
        open_source(get_testdata_file("SC_rgb_small_odd.dcm"))


def test_unreadable_dicom(tmp_path):
    from pydicom.data import get_testdata_file

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 10)
    with pytest.raises(DataError, match=r"junk: no DICOM images found"):
        open_source(junk)
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copy(get_testdata_file("MR_truncated.dcm"), cut / "a.dcm")  # pixel data cut short
    with pytest.raises(DataError, match=r"a\.dcm: cannot decode the pixel data"):
        open_source(cut)
