"""Lazy, worker-safe readers of every supported input format.

Opening a reader reads metadata only; the returned :class:`Source` reads blocks, each
task opening the file itself.
"""

from __future__ import annotations

import os
from dataclasses import replace

from pipeline.errors import DataError
from pipeline.io import storage
from pipeline.io.readers import dicom, hdf5, nifti
from pipeline.io.readers.arrays import is_zarr, is_zarr_url, open_npy, open_zarr
from pipeline.io.readers.sequence import open_sequence
from pipeline.io.readers.source import (
    Source,
    close_files,
    keep_library_messages,
    library_messages,
    select,
)
from pipeline.io.readers.tiff import open_tiff

__all__ = ["FORMATS", "Source", "close_files", "library_messages", "open_source"]

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")

# The inputs segpipe reads, as the error for an unknown format lists them.
FORMATS = (
    "TIFF/BigTIFF/OME-TIFF (.tif, .tiff, .btf)",
    "a folder or glob of TIFF files (slices, or names with z/c/t numbers)",
    "Zarr v2/v3 and OME-Zarr (.zarr; also at s3://, gs://, az://, https:// URLs)",
    "NIfTI (.nii, .nii.gz)",
    "a DICOM series (folder of .dcm slices)",
    "HDF5 (.h5, .hdf5)",
    ".npy",
)


def open_source(
    path: str | os.PathLike,
    channel: int | str | None = None,
    timepoint: int | None = None,
    dataset: str | None = None,
    spacing: list[float] | None = None,
    unit: str | None = None,
    *,
    series: int | str | None = None,
    level: int = 0,
    region: dict[str, list[int]] | None = None,
    pattern: str | None = None,
    allow_missing_chunks: bool = False,
) -> Source:
    """Open ``path`` lazily (metadata only) and apply the selection.

    Parameters
    ----------
    path : str or PathLike
        A file, a folder (TIFF slices, DICOM series, Zarr store) or a glob of TIFF files;
        or the URL of a Zarr store in an object store (``s3://``, ``gs://``, ``az://``,
        ``https://``; see :mod:`pipeline.io.storage`).
    channel, timepoint : int, optional
        Index of the channel and timepoint to use of an image that has several (a
        channel ``"all"``: every channel, read as a last axis).
    dataset : str, optional
        Array inside a Zarr group or an HDF5 file.
    spacing : list of float, optional
        Voxel size per spatial axis, replacing the file's.
    unit : str, optional
        Unit of the spacing, replacing the file's.
    series : int or str, optional
        Series of a multi-series TIFF or OME-Zarr (number), or of a DICOM folder
        (SeriesInstanceUID or number).
    level : int
        Pyramid level of a multi-resolution TIFF or OME-Zarr (0: full resolution).
    region : dict, optional
        ``{"z": [start, stop], ...}``: the part of each spatial axis to use.
    pattern : str, optional
        Regular expression naming axes and numbers in the file names of a TIFF sequence.
    allow_missing_chunks : bool
        Read a chunk missing from a Zarr store as the fill value (by default a block
        covering one is an error: the volume has a hole).

    Raises
    ------
    DataError
        Missing or unreadable file, unknown format, or a selection that does not fit.
    """
    keep_library_messages()
    if "\0" in str(path):
        raise DataError(f"input.path {str(path)!r}: a path cannot hold a NUL character")
    if storage.is_url(str(path)):
        src = _open_url(str(path).rstrip("/"), dataset, series, level)
        return _selected(src, channel, timepoint, spacing, unit, region, allow_missing_chunks)
    p = os.path.abspath(storage.local_path(str(path)))
    lower = p.lower()
    glob_like = any(ch in p for ch in "*?[")
    if not glob_like and not os.path.exists(p):
        raise DataError(f"{p}: input file not found")
    if not glob_like and not os.path.isdir(p) and not os.path.isfile(p):
        raise DataError(f"{p}: expected an image file or folder, got a special file (a pipe?)")
    dicom_series = _dicom_path(p)
    if series is not None and not isinstance(series, int) and not dicom_series:
        raise DataError(f"{p}: input.series: expected a number, got {series!r}")
    if is_zarr(p):
        src = open_zarr(p, dataset, series or 0, level)
    elif dicom_series:
        src = dicom.open_dicom(p, series)
    elif glob_like or os.path.isdir(p):
        src = open_sequence(p, pattern)
    elif lower.endswith(TIFF_SUFFIXES):
        src = open_tiff(p, series or 0, level)
    elif lower.endswith(nifti.SUFFIXES):
        src = nifti.open_nifti(p)
    elif lower.endswith(hdf5.SUFFIXES):
        src = hdf5.open_hdf5(p, dataset)
    elif lower.endswith(".npy"):
        src = open_npy(p)
    else:
        raise DataError(f"{p}: unknown input format (expected {'; '.join(FORMATS)})")
    return _selected(src, channel, timepoint, spacing, unit, region, allow_missing_chunks)


def _selected(src, channel, timepoint, spacing, unit, region, allow_missing_chunks) -> Source:
    src = select(src, channel, timepoint, spacing, unit, region)
    if 0 in src.shape:
        raise DataError(f"{src.path}: the image has an axis of length 0 (shape {src.shape})")
    return replace(src, allow_missing_chunks=allow_missing_chunks)


def _open_url(url: str, dataset: str | None, series, level: int) -> Source:
    """A Zarr store in an object store (the only format read from one)."""
    storage.check_url(url, "input.path")
    if series is not None and not isinstance(series, int):
        raise DataError(f"{url}: input.series: expected a number, got {series!r}")
    if not is_zarr_url(url):
        raise DataError(
            f"{url}: expected a Zarr or OME-Zarr store there (zarr.json, .zgroup or .zarray); "
            "images in other formats are read from local files"
        )
    return open_zarr(url, dataset, series or 0, level)


def _dicom_path(p: str) -> bool:
    return os.path.exists(p) and not is_zarr(p) and dicom.is_dicom(p)
