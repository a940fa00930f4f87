"""HDF5 datasets: dataset choice, axes, voxel size, chunked block reads."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import DataError
from pipeline.io.readers import open_source

h5py = pytest.importorskip("h5py")


def _file(path, **datasets):
    with h5py.File(path, "w") as fh:
        for name, (data, attrs) in datasets.items():
            ds = fh.create_dataset(name.replace("__", "/"), data=data, chunks=True)
            ds.attrs.update(attrs)
    return path


def test_dataset_axes_spacing_and_blocks(tmp_path):
    vol = np.random.default_rng(0).integers(0, 9, (2, 6, 7, 8)).astype(np.uint8)
    path = _file(
        tmp_path / "a.h5",
        exported__data=(vol, {"axes": "czyx", "element_size_um": [2.0, 0.5, 0.25]}),
        other=(np.zeros(3), {}),
    )
    with pytest.raises(DataError, match="give input.dataset, one of: exported/data, other"):
        open_source(path)
    src = open_source(path, channel=1, dataset="exported/data")
    assert src.shape == (6, 7, 8)
    assert src.spacing == (2.0, 0.5, 0.25) and src.unit == "micrometer"
    np.testing.assert_array_equal(src.read(((1, 4), (2, 7), (0, 8))), vol[1, 1:4, 2:7])


def test_single_dataset_found_and_dimension_labels(tmp_path):
    vol = np.arange(5 * 6, dtype=np.float32).reshape(5, 6)
    path = tmp_path / "b.hdf5"
    with h5py.File(path, "w") as fh:
        ds = fh.create_dataset("img", data=vol)
        ds.dims[0].label, ds.dims[1].label = "y", "x"
    src = open_source(path)
    assert src.axes == "yx"
    np.testing.assert_array_equal(src.read(((0, 5), (0, 6))), vol)


def test_bad_hdf5_inputs(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"nope")
    with pytest.raises(DataError, match=r"bad\.h5: not a readable HDF5"):
        open_source(bad)
    path = _file(tmp_path / "c.h5", grp__x=(np.zeros((2, 2, 2, 2)), {}))
    with pytest.raises(DataError, match="cannot tell the axes"):
        open_source(path, dataset="grp/x")
    with pytest.raises(DataError, match="'grp' is not a dataset"):
        open_source(path, dataset="grp")
