"""Labels as a NIfTI-1 file, streamed slab by slab, placed where the input lies.

NIfTI stores x fastest, as a C-ordered (z, y, x) array lies in memory, so each z-slab of
the label image is appended as it is: the file is written in bounded memory, gzipped when
it ends in ``.gz``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from pipeline.errors import DataError
from pipeline.io.readers.nifti import nibabel
from pipeline.io.resized import ResizedSource

_RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_NIFTI_UNITS = {"millimeter": "mm", "micrometer": "micron", "meter": "meter"}


def nifti_affine(source) -> np.ndarray:
    """Voxel (x, y, z) of the label image → RAS world coordinates.

    The input's own affine where it has one (NIfTI; DICOM converted from LPS), shifted to
    a chosen region and scaled to a resized grid; else the voxel size on the diagonal.
    """
    ratios = np.ones(3)
    base = source
    if isinstance(source, ResizedSource):
        ratios[: len(source.shape)] = np.asarray(source.resize.ratios, float)[::-1]
        base = source.base
    if len(base.shape) != 3:
        raise DataError(f"{base.path}: output.nifti: expected a 3D image, got {base.shape}")
    if base.affine is None:
        affine = np.diag([*base.spacing[::-1], 1.0])
    else:
        affine = np.asarray(base.affine, float)
        if base.world_space == "LPS":
            affine = _RAS_FROM_LPS @ affine
    start = np.zeros(3)
    spatial = [i for i, c in enumerate(base.native_axes) if c in "zyx"]
    for axis, lo, _ in base.crop:  # native spatial axis → position in (x, y, z)
        start[len(spatial) - 1 - spatial.index(axis)] = lo
    # Output voxel i has its centre at input voxel i * ratio + (ratio - 1) / 2.
    index = np.eye(4)
    index[:3, :3] = np.diag(ratios)
    index[:3, 3] = start + (ratios - 1) / 2
    return affine @ index


def write_nifti_labels(
    labels, top: int, path: str | Path, affine: np.ndarray, unit: str | None
) -> Path:
    """Write the (z, y, x) label array ``labels`` (read a slab at a time) to ``path``.

    ``top`` is the largest label; the dtype is the smallest of uint8, uint16 and uint32
    that holds it.
    """
    nib = nibabel()
    path = Path(path)
    nz = labels.shape[0]
    slab = max(1, int(64 * 2**20 // max(1, labels.shape[1] * labels.shape[2] * 4)))
    dtype = next(np.dtype(t) for t in ("u1", "u2", "u4") if top <= np.iinfo(t).max)
    header = nib.Nifti1Header()
    header.set_data_shape(labels.shape[::-1])
    header.set_data_dtype(dtype)
    header.set_sform(affine, code=1)
    header.set_qform(affine, code=1)
    header.set_xyzt_units(xyz=_NIFTI_UNITS.get(unit or "", "unknown"))
    header["intent_code"] = 1002  # NIFTI_INTENT_LABEL
    header["cal_min"], header["cal_max"] = 0, top
    header.set_data_offset(352)
    tmp = path.with_name(path.name + ".part")
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(tmp, "wb") as fh:
        header.write_to(fh)
        fh.write(b"\0" * (352 - fh.tell()))  # up to the data: no extensions
        for z in range(0, nz, slab):
            fh.write(np.ascontiguousarray(labels[z : z + slab], dtype=dtype).tobytes())
    tmp.replace(path)
    return path
