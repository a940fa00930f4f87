"""Every reader's source is plain data: pickled to a fresh process, it reads the same block."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import tifffile

from pipeline.io.readers import open_source
from tests.input_files import write_dicom_series, write_nifti

VOL = np.random.default_rng(0).integers(0, 3000, (6, 10, 12)).astype(np.int16)
BOX = ((1, 5), (2, 9), (3, 12))


def _read(blob: bytes) -> tuple[int, np.ndarray]:
    return os.getpid(), pickle.loads(blob).read(BOX)


def _inputs(root):
    import h5py

    tifffile.imwrite(root / "v.tif", VOL)
    for z in range(VOL.shape[0]):
        for c in range(2):
            tifffile.imwrite(root / f"seq_z{z}_c{c}.tif", VOL[z] + c)
    with h5py.File(root / "v.h5", "w") as fh:
        fh.create_dataset("raw", data=VOL, chunks=(2, 5, 6))
    np.save(root / "v.npy", VOL)
    write_nifti(root / "v.nii.gz", VOL)
    write_dicom_series(root / "dicom", VOL, rescale=(1.0, 0.0))
    return {
        "tiff": (root / "v.tif", {}),
        "sequence": (str(root / "seq_*.tif"), {"channel": 1}),
        "hdf5": (root / "v.h5", {}),
        "npy": (root / "v.npy", {}),
        "nifti": (root / "v.nii.gz", {}),
        "dicom": (root / "dicom", {}),
    }


def test_sources_read_in_a_fresh_process(tmp_path):
    pytest.importorskip("h5py")
    pytest.importorskip("nibabel")
    pytest.importorskip("pydicom")
    sources = {k: open_source(p, **kw) for k, (p, kw) in _inputs(tmp_path).items()}
    blobs = {k: pickle.dumps(s) for k, s in sources.items()}
    ctx = multiprocessing.get_context("spawn")  # nothing inherited: the task opens the file
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        results = dict(zip(blobs, pool.map(_read, blobs.values()), strict=True))
    want = VOL[1:5, 2:9, 3:12]
    for kind, (pid, block) in results.items():
        assert pid != os.getpid()
        expected = want + 1 if kind == "sequence" else want
        np.testing.assert_array_equal(block, expected, err_msg=kind)
        assert sources[kind].kind == kind
