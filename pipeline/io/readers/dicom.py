"""DICOM series through pydicom: a folder of single-frame slices (or one slice).

Slices are ordered by their ImagePositionPatient projected on the slice normal (the cross
product of the ImageOrientationPatient cosines), never by file name or InstanceNumber.
RescaleSlope and RescaleIntercept are applied per slice; the voxel size comes from
PixelSpacing and the distance between slice positions. A folder holding several series
is reported; ``input.series`` chooses one by SeriesInstanceUID (or by its number in that
list). The affine maps voxel (x, y, z) to DICOM patient coordinates (LPS, millimetres).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from pipeline.errors import DataError
from pipeline.io.readers.source import Source, natural_key, register_reader

_PLUGINS = (
    "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg (JPEG, JPEG-LS, JPEG 2000) "
    "or pip install python-gdcm"
)


def pydicom():
    """The pydicom module, or one line saying how to install it."""
    try:
        import pydicom as dcm
    except ImportError:
        raise DataError(
            "DICOM needs pydicom: pip install 'segpipe[medical]' (or pip install pydicom)"
        ) from None
    return dcm


@dataclass(frozen=True)
class _Slice:
    path: str
    position: np.ndarray  # ImagePositionPatient
    orientation: tuple[float, ...]
    shape: tuple[int, int]
    spacing: tuple[float, float]  # PixelSpacing: between rows, between columns
    rescale: tuple[float, float]  # slope, intercept
    thickness: float | None


def is_dicom(path: str) -> bool:
    """True for a DICOM file (``DICM`` at byte 128) or a folder whose first file is one."""
    if os.path.isdir(path):
        names = sorted(os.listdir(path), key=natural_key)
        return any(is_dicom(os.path.join(path, n)) for n in names[:3] if not n.startswith("."))
    if path.lower().endswith((".dcm", ".dicom")):
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:] == b"DICM"
    except OSError:
        return False


def open_dicom(path: str, series: int | str | None = None) -> Source:
    """The DICOM series in folder ``path`` (or the file ``path``), metadata only.

    Raises
    ------
    DataError
        No DICOM files, several series and no choice, slices of different size or
        orientation, two slices at one position, uneven slice spacing, a colour image,
        or pixel data no installed decoder can read.
    """
    dcm = pydicom()
    files = (
        [path]
        if os.path.isfile(path)
        else [
            os.path.join(path, n)
            for n in sorted(os.listdir(path), key=natural_key)
            if os.path.isfile(os.path.join(path, n)) and not n.startswith(".")
        ]
    )
    by_series: dict[str, list] = {}
    for f in files:
        try:
            ds = dcm.dcmread(f, stop_before_pixels=True)
        except Exception:  # not DICOM (a DICOMDIR, notes, thumbnails): not part of a series
            continue
        if "PixelData" not in ds and "Rows" not in ds:
            continue
        by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((f, ds))
    if not by_series:
        raise DataError(f"{path}: no DICOM images found")
    uid = _choose_series(path, by_series, series)
    items = by_series[uid]
    first = items[0][1]
    if int(first.get("SamplesPerPixel", 1)) != 1:
        raise DataError(
            f"{items[0][0]}: colour DICOM ({first.get('PhotometricInterpretation')}) "
            "is not supported; expected a grayscale series"
        )
    if len(items) == 1 and int(first.get("NumberOfFrames", 1) or 1) > 1:
        raise DataError(
            f"{items[0][0]}: multi-frame DICOM is not supported yet; export the series as "
            "single-frame slices"
        )
    slices = [_slice(f, ds) for f, ds in items]
    ordered, step = _order(path, slices)
    dtype = _dtype(first, [s.rescale for s in ordered])
    _check_decodable(dcm, ordered[0].path)
    rows, cols = ordered[0].shape
    dy, dx = ordered[0].spacing
    dz = float(np.linalg.norm(step)) if len(ordered) > 1 else ordered[0].thickness or 1.0
    row_cos = np.array(ordered[0].orientation[:3])
    col_cos = np.array(ordered[0].orientation[3:])
    if len(ordered) == 1:
        step = np.cross(row_cos, col_cos) * dz
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = row_cos * dx, col_cos * dy, step
    affine[:3, 3] = ordered[0].position
    return Source(
        "dicom",
        path,
        (len(ordered), rows, cols),
        "zyx",
        dtype.str,
        (1, rows, cols),
        (dz, dy, dx),
        "millimeter",
        files=tuple(s.path for s in ordered),
        details=tuple(s.rescale for s in ordered),
        affine=tuple(tuple(float(v) for v in row) for row in affine),
        world_space="LPS",
    )


def _choose_series(path: str, by_series: dict, series: int | str | None) -> str:
    uids = list(by_series)
    if series is None and len(uids) == 1:
        return uids[0]
    if isinstance(series, int) and 0 <= series < len(uids):
        return uids[series]
    if isinstance(series, str) and series in by_series:
        return series
    listing = "; ".join(
        f"{i}: {u} ({by_series[u][0][1].get('Modality', '?')} "
        f"{by_series[u][0][1].get('SeriesDescription', '')!s}, {len(by_series[u])} files)"
        for i, u in enumerate(uids)
    )
    what = "holds several series" if series is None else f"has no series {series!r}"
    raise DataError(f"{path}: {what}; choose one with input.series: {listing}")


def _slice(f: str, ds) -> _Slice:
    try:
        position = np.array([float(v) for v in ds.ImagePositionPatient])
        orientation = tuple(float(v) for v in ds.ImageOrientationPatient)
        spacing = tuple(float(v) for v in ds.get("PixelSpacing", (1.0, 1.0)))
        shape = (int(ds.Rows), int(ds.Columns))
    except (AttributeError, ValueError, TypeError) as exc:
        raise DataError(f"{f}: slice geometry missing or unreadable ({exc})") from None
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    thickness = ds.get("SliceThickness")
    return _Slice(
        f,
        position,
        orientation,
        shape,
        (spacing[0], spacing[1]),
        (slope, intercept),
        float(thickness) if thickness not in (None, "") else None,
    )


def _order(path: str, slices: list[_Slice]) -> tuple[list[_Slice], np.ndarray]:
    """Slices sorted along the normal, and the step between neighbours."""
    ref = slices[0]
    for s in slices[1:]:
        if s.shape != ref.shape or not np.allclose(s.orientation, ref.orientation, atol=1e-4):
            raise DataError(
                f"{s.path}: slice of {s.shape} oriented {s.orientation}, expected {ref.shape} "
                f"oriented {ref.orientation} like {ref.path}"
            )
    normal = np.cross(ref.orientation[:3], ref.orientation[3:])
    ordered = sorted(slices, key=lambda s: float(normal @ s.position))
    if len(ordered) == 1:
        return ordered, np.zeros(3)
    where = np.array([float(normal @ s.position) for s in ordered])
    gaps = np.diff(where)
    twice = np.flatnonzero(gaps < 1e-4)
    if twice.size:
        a, b = ordered[twice[0]], ordered[twice[0] + 1]
        raise DataError(
            f"{path}: {a.path} and {b.path} lie at the same position {where[twice[0]]:.4g} "
            "(several acquisitions in one series?)"
        )
    if gaps.max() - gaps.min() > 0.01 * gaps.mean() + 1e-4:
        i = int(np.argmax(np.abs(gaps - np.median(gaps))))
        raise DataError(
            f"{path}: slice spacing varies from {gaps.min():.4g} to {gaps.max():.4g} mm "
            f"(after {ordered[i].path}: a slice missing?)"
        )
    step = (ordered[-1].position - ordered[0].position) / (len(ordered) - 1)
    return ordered, step


def _dtype(ds, rescale: list[tuple[float, float]]) -> np.dtype:
    bits = int(ds.get("BitsAllocated", 16))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    raw = np.dtype(f"{'i' if signed else 'u'}{max(bits, 8) // 8}")
    if all(s == 1 and float(i).is_integer() for s, i in rescale):
        lo = int(np.iinfo(raw).min) + int(min(i for _, i in rescale))
        hi = int(np.iinfo(raw).max) + int(max(i for _, i in rescale))
        return np.result_type(np.min_scalar_type(lo), np.min_scalar_type(hi))
    return np.dtype(np.float64)


def _check_decodable(dcm, path: str) -> None:
    ds = dcm.dcmread(path)
    try:
        ds.pixel_array  # noqa: B018 - decoding one slice shows a missing plugin now
    except Exception as exc:
        ts = ds.file_meta.get("TransferSyntaxUID")
        name = getattr(ts, "name", ts)
        if ts is not None and ts.is_compressed:
            raise DataError(
                f"{path}: pixel data compressed as {name} and no installed decoder reads "
                f"it: {_PLUGINS}"
            ) from None
        raise DataError(f"{path}: cannot decode the pixel data ({exc})") from None


def _read_dicom(src: Source, index: tuple) -> np.ndarray:
    dcm = pydicom()
    zs, ys, xs = index
    planes = []
    dtype = np.dtype(src.dtype)
    for k in range(*zs.indices(len(src.files))):
        ds = dcm.dcmread(src.files[k])
        raw = ds.pixel_array[ys, xs]
        slope, intercept = src.details[k]
        if dtype.kind == "f":
            planes.append(raw.astype(np.float64) * slope + intercept)
        else:
            planes.append(raw.astype(dtype) + dtype.type(intercept))
    if not planes:
        return np.empty((0, 0, 0), dtype)
    return np.stack(planes).astype(dtype, copy=False)


register_reader("dicom", _read_dicom)
