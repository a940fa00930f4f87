"""What a reader refuses or reports of the data itself: values that are not finite, Zarr
chunks that are not there, and the reading library's own messages."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tifffile
import zarr
from skimage.filters import threshold_otsu
from skimage.measure import label

from pipeline import run
from pipeline.cli import main
from pipeline.errors import DataError
from pipeline.io.readers import open_source


def volume() -> np.ndarray:
    rng = np.random.default_rng(4)
    img = rng.integers(1, 50, (12, 24, 24)).astype(np.uint16)
    img[2:5, 3:9, 3:9] = 900
    img[7:11, 14:22, 12:20] = 800
    return img


def write_zarr(path, img, chunks=(6, 12, 12), **kw):
    arr = zarr.create_array(str(path), shape=img.shape, chunks=chunks, dtype=img.dtype, **kw)
    arr[...] = img
    return arr


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_a_block_with_a_value_not_finite_is_refused(tmp_path, value, dtype):
    img = volume().astype(dtype)
    img[10, 20, 3] = value
    tifffile.imwrite(tmp_path / "f.tif", img)
    src = open_source(tmp_path / "f.tif")
    assert src.read(((0, 6), (0, 24), (0, 24))).shape == (6, 24, 24)  # this block is finite
    with pytest.raises(DataError, match=r"f\.tif: the image holds (NaN|infinity) at voxel "
                       r"\(z,y,x\) = 10,20,3 \(1 values not finite"):  # fmt: skip
        src.read(((6, 12), (12, 24), (0, 24)))


def test_a_zarr_store_that_leaves_out_empty_chunks(tmp_path):
    """zarr leaves out chunks that are all fill value; with allow_missing_chunks they read
    as the fill value and the labels equal skimage's on the whole image."""
    img = volume()
    img[:6, :12, 12:] = 0  # one chunk of background, not stored
    write_zarr(tmp_path / "sparse.zarr", img, fill_value=0)
    assert not os.path.exists(tmp_path / "sparse.zarr" / "c" / "0" / "0" / "1")
    cfg = {
        "input": {"path": str(tmp_path / "sparse.zarr"), "chunks": [6, 12, 12]},
        "steps": {"mask": {"op": "threshold", "method": "otsu"}, "cells": {"op": "label"}},
        "output": {"path": str(tmp_path / "out"), "labels": "cells"},
    }
    with pytest.raises(DataError, match=r"chunk c/0/0/1 is missing"):
        run(cfg)
    cfg["input"]["allow_missing_chunks"] = True
    res = run(cfg, overwrite=True)
    got = zarr.open_array(str(res.labels_path / "0"))[:]
    want = label(img > threshold_otsu(img))
    assert res.count == want.max()
    assert np.array_equal(got > 0, want > 0)


def test_a_missing_chunk_of_a_store_read_through_zarr(tmp_path):
    """Arrays zarr itself reads (here: sharded) are checked by their stored keys."""
    img = volume()
    write_zarr(tmp_path / "s.zarr", img, chunks=(6, 12, 12), shards=(6, 24, 24))
    os.remove(tmp_path / "s.zarr" / "c" / "1" / "0" / "0")
    src = open_source(tmp_path / "s.zarr")
    assert np.array_equal(src.read(((0, 6), (0, 24), (0, 24))), img[:6])
    with pytest.raises(DataError, match=r"s\.zarr: chunk c/1/0/0 is missing"):
        src.read(((6, 12), (0, 12), (0, 12)))
    lax = open_source(tmp_path / "s.zarr", allow_missing_chunks=True)
    assert (lax.read(((6, 12), (0, 12), (0, 12))) == 0).all()


def _bad_ome_tiff(path):
    """An OME-TIFF whose metadata promise more frames than it holds (tifffile warns)."""
    img = volume()
    ome = (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/'
        'Schemas/OME/2016-06"><Image ID="Image:0"><Pixels DimensionOrder="XYZCT" '
        'ID="Pixels:0" SizeX="99" SizeY="24" SizeZ="12" SizeC="1" SizeT="1" Type="uint16">'
        "<TiffData/></Pixels></Image></OME>"
    )
    tifffile.imwrite(path, img, description=ome, metadata=None)


def test_tifffile_messages_stay_off_stderr_and_reach_the_summary(tmp_path, capfd):
    _bad_ome_tiff(tmp_path / "odd.tif")
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({
        "input": {"path": str(tmp_path / "odd.tif")},
        "steps": {"mask": {"op": "threshold", "method": "otsu"}, "cells": {"op": "label"}},
        "output": {"path": str(tmp_path / "out"), "labels": "cells"},
    }))  # fmt: skip
    assert main(["run", str(cfg)]) == 0
    assert capfd.readouterr().err == ""
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    said = summary["input_messages"]
    assert said and all(m.startswith("tifffile: ") and "odd.tif" in m for m in said)


def test_a_float16_image_is_read_as_float32(tmp_path):
    """scipy.ndimage has no float16 loops: blocks read as float32, every value exact."""
    img = (volume() / 900).astype(np.float16)
    tifffile.imwrite(tmp_path / "h.tif", img)
    src = open_source(tmp_path / "h.tif")
    assert np.dtype(src.dtype) == np.float32
    block = src.read(((0, 12), (0, 24), (0, 24)))
    assert block.dtype == np.float32
    np.testing.assert_array_equal(block, img.astype(np.float32))
    res = run({
        "input": {"path": str(tmp_path / "h.tif"), "chunks": [5, 10, 12]},
        "steps": {
            "smooth": {"op": "gaussian", "sigma": 1.0, "dtype": "float32"},
            "mask": {"op": "threshold", "method": "otsu"},
            "cells": {"op": "label"},
        },
        "output": {"path": str(tmp_path / "out"), "labels": "cells"},
    })  # fmt: skip
    from scipy import ndimage as ndi

    smooth = ndi.gaussian_filter(img.astype(np.float32), 1.0, mode="nearest", output=np.float32)
    expected = label(smooth > threshold_otsu(smooth))
    got = zarr.open_array(str(res.labels_path / "0"), mode="r")[:]
    np.testing.assert_array_equal(got, expected)
