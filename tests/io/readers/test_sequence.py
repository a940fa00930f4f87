"""TIFF sequences: slices in natural order, and files named by z, channel and time."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from pipeline.errors import DataError
from pipeline.io.readers import open_source

RNG = np.random.default_rng(0)
VOL = RNG.integers(0, 60000, (2, 3, 5, 6, 7)).astype(np.uint16)  # t, c, z, y, x


def _all(src) -> np.ndarray:
    return src.read(tuple((0, n) for n in src.shape))


def test_z_and_channel_in_names(tmp_path):
    for c in range(3):
        for z in range(5):  # names sort by channel first: the grid still comes out z, c
            tifffile.imwrite(tmp_path / f"img_c{c}_z{z:03d}.tif", VOL[0, c, z])
    for c in range(3):
        src = open_source(str(tmp_path / "*.tif"), channel=c)
        assert src.shape == (5, 6, 7)
        np.testing.assert_array_equal(_all(src), VOL[0, c])
        np.testing.assert_array_equal(src.read(((1, 4), (2, 5), (0, 7))), VOL[0, c, 1:4, 2:5])
    with pytest.raises(DataError, match="3 channels: choose one with input.channel"):
        open_source(tmp_path)


def test_explicit_pattern(tmp_path):
    for t in range(2):
        for z in range(5):  # numbers need not start at 0 or be contiguous
            tifffile.imwrite(tmp_path / f"run-T{t}-plane{10 + 2 * z}.tif", VOL[t, 2, z])
    pattern = r"-T(?P<t>\d+)-plane(?P<z>\d+)"
    src = open_source(tmp_path, timepoint=1, pattern=pattern)
    assert src.native_axes == "tzyx"
    np.testing.assert_array_equal(_all(src), VOL[1, 2])
    with pytest.raises(DataError, match="expected named groups z, c or t"):
        open_source(tmp_path, pattern=r"-T(\d+)")
    (tmp_path / "notes.tif").write_bytes(b"")
    with pytest.raises(DataError, match=r"notes\.tif: file name does not match input\.pattern"):
        open_source(tmp_path, pattern=pattern)


def test_per_channel_stacks(tmp_path):
    for c in range(3):
        tifffile.imwrite(tmp_path / f"cells_c{c}_t0.tif", VOL[0, c])
    src = open_source(str(tmp_path / "cells_*.tif"), channel=2)
    np.testing.assert_array_equal(_all(src), VOL[0, 2])


def test_missing_file_in_the_grid(tmp_path):
    for c in range(2):
        for z in range(3):
            if (c, z) != (1, 2):
                tifffile.imwrite(tmp_path / f"img_z{z}_c{c}.tif", VOL[0, c, z])
    with pytest.raises(
        DataError, match=r"1 files missing from the zC grid \(3, 2\), first at z=2, C=1"
    ):  # noqa: E501
        open_source(tmp_path)


def test_plain_slices_in_natural_order(tmp_path):
    for z in (0, 1, 2, 10, 11):  # natural order: 2 before 10
        tifffile.imwrite(tmp_path / f"slice_{z}.tif", VOL[0, 0, min(z, 4)])
    src = open_source(tmp_path)
    np.testing.assert_array_equal(_all(src), VOL[0, 0, [0, 1, 2, 4, 4]])
