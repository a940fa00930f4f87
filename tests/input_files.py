"""Small input files written by the tests themselves: DICOM series, NIfTI, OME-Zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr


def write_dicom_series(
    folder: Path,
    volume: np.ndarray,
    spacing=(2.5, 0.8, 0.7),
    origin=(-100.0, -120.0, 30.0),
    orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    rescale=(1.0, -1024.0),
    series_uid: str = "1.2.826.0.1.3680043.8.498.1",
    description: str = "test series",
    names=None,
    instance_numbers=None,
) -> list[Path]:
    """Write ``volume`` (z, y, x; stored values, int16) as one CT slice per file.

    Slice k lies at ``origin + k * spacing[0] * normal``. ``names`` and
    ``instance_numbers`` (per slice) let a test scramble both.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row, col)
    paths = []
    for k, plane in enumerate(volume):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.SeriesInstanceUID = series_uid
        ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
        ds.SeriesDescription = description
        ds.InstanceNumber = int(instance_numbers[k]) if instance_numbers is not None else k + 1
        ds.ImagePositionPatient = [float(v) for v in np.add(origin, k * spacing[0] * normal)]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[2])]
        ds.SliceThickness = float(spacing[0])
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope, ds.RescaleIntercept = rescale
        ds.PixelData = np.ascontiguousarray(plane, dtype="<i2").tobytes()
        name = names[k] if names is not None else f"slice{k:03d}.dcm"
        path = folder / name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_nifti(path: Path, volume: np.ndarray, zooms=(0.9, 0.8, 2.0), affine=None) -> Path:
    """Write ``volume`` (z, y, x) as NIfTI-1 (x fastest), with ``zooms`` (x, y, z) in mm."""
    import nibabel as nib

    if affine is None:
        affine = np.diag([*zooms, 1.0])
        affine[:3, 3] = (-10.0, 20.0, 5.0)
    img = nib.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), affine)
    img.header.set_zooms(zooms)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, path)
    return path


def write_ome_zarr_image(group, levels, scale) -> None:
    """Write ``levels`` (z, y, x arrays, each half the last in y and x) as an OME-Zarr 0.5
    image into ``group``, with the image's ``scale`` in micrometres."""
    datasets = []
    for i, data in enumerate(levels):
        group.create_array(str(i), data=data, chunks=(2, 8, 8))
        f = 2**i
        datasets.append({
            "path": str(i),
            "coordinateTransformations": [{"type": "scale", "scale": [1.0, f * 1.0, f * 1.0]}],
        })  # fmt: skip
    axes = [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{
            "axes": axes,
            "datasets": datasets,
            "coordinateTransformations": [{"type": "scale", "scale": list(scale)}],
        }],
    }  # fmt: skip


def write_ome_zarr_channels(path, data: np.ndarray, chunks) -> str:
    """Write ``data`` (c, then z, y, x or y, x) as an OME-Zarr 0.5 image of channels."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    group.create_array("0", data=data, chunks=chunks)
    space = "zyx"[3 - (data.ndim - 1) :]
    axes = [{"name": "c", "type": "channel"}]
    axes += [{"name": n, "type": "space", "unit": "micrometer"} for n in space]
    transform = [{"type": "scale", "scale": [1.0] * data.ndim}]
    dataset = {"path": "0", "coordinateTransformations": transform}
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [dataset]}]}
    return str(path)
