"""``input.channel: all``: every channel kept, read as the blocks' last axis, from each
format that has a channel axis; one-line refusals where there is none or it is taken."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from pipeline.errors import DataError
from pipeline.io.readers import open_source
from tests.input_files import write_ome_zarr_channels

VOL = np.random.default_rng(0).integers(0, 60000, (3, 5, 6, 7)).astype(np.uint16)  # c, z, y, x
BOX = ((1, 4), (2, 5), (3, 7))


def _ome_zarr(path):
    return write_ome_zarr_channels(path, VOL, (1, 2, 4, 4))


def _ome_tiff(path):
    tifffile.imwrite(path, VOL, ome=True, metadata={"axes": "CZYX"})
    return str(path)


def _slices(folder):
    folder.mkdir()
    for c in range(3):
        for z in range(5):
            tifffile.imwrite(folder / f"img_c{c}_z{z:03d}.tif", VOL[c, z])
    return str(folder / "*.tif")


@pytest.mark.parametrize("write", [_ome_zarr, _ome_tiff, _slices], ids=lambda f: f.__name__)
def test_every_channel_on_the_last_axis(tmp_path, write):
    path = write(
        tmp_path
        / {"_ome_zarr": "img.ome.zarr", "_ome_tiff": "img.ome.tif"}.get(write.__name__, "slices")
    )
    src = open_source(path, channel="all")
    assert src.shape == (5, 6, 7) and src.color and src.samples == 3
    assert src.spatial_axes == "zyx"
    want = np.moveaxis(VOL, 0, -1)[tuple(slice(lo, hi) for lo, hi in BOX)]
    np.testing.assert_array_equal(src.read(BOX), want)
    one = open_source(path, channel=1)  # one channel, as before
    np.testing.assert_array_equal(one.read(BOX), VOL[1][tuple(slice(lo, hi) for lo, hi in BOX)])


def test_refusals(tmp_path):
    tifffile.imwrite(tmp_path / "gray.tif", VOL[0])
    with pytest.raises(DataError, match="input.channel: all: the image has no channel axis"):
        open_source(str(tmp_path / "gray.tif"), channel="all")
