"""NIfTI-1/2 volumes (``.nii``, ``.nii.gz``) through nibabel's array proxy.

NIfTI stores x fastest; the image is presented as (t,) z, y, x, and each task reads its
slab through the proxy (only those bytes of an uncompressed file; a ``.nii.gz`` is
decompressed up to the slab, faster with ``indexed_gzip`` installed). Spacing comes from
the header's zooms, the unit from its xyzt units, and the affine is kept.
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import DataError
from pipeline.io.readers.source import Source, cached, register_reader, stamp, unit_name

SUFFIXES = (".nii", ".nii.gz")


def nibabel():
    """The nibabel module, or one line saying how to install it."""
    try:
        import nibabel as nib
    except ImportError:
        raise DataError(
            "NIfTI needs nibabel: pip install 'segpipe[medical]' (or pip install nibabel)"
        ) from None
    return nib


def open_nifti(path: str) -> Source:
    """A NIfTI file as a (t,) z, y, x image, metadata only.

    Raises
    ------
    DataError
        Not a readable NIfTI file, or more than four dimensions.
    """
    nib = nibabel()
    try:
        img = nib.load(path)
        shape = tuple(int(n) for n in img.shape)
        zooms = [float(z) for z in img.header.get_zooms()]
        space_unit, _ = img.header.get_xyzt_units()
        corner = np.asarray(img.dataobj[(slice(0, 1),) * len(shape)])
    except Exception as exc:
        raise DataError(f"{path}: not a readable NIfTI file ({exc})") from None
    if not 2 <= len(shape) <= 4:
        raise DataError(f"{path}: expected a 2D, 3D or 4D NIfTI image, got shape {shape}")
    axes = "xyzt"[: len(shape)][::-1]
    spatial = min(len(shape), 3)
    spacing = tuple(zooms[:spatial][::-1])
    if any(s <= 0 for s in spacing):
        spacing = (1.0,) * spatial
    chunks = (1, shape[1], shape[0]) if spatial == 3 else (shape[1], shape[0])
    affine = tuple(tuple(float(v) for v in row) for row in np.asarray(img.affine))
    return Source(
        "nifti",
        path,
        shape[::-1],
        axes,
        corner.dtype.str,
        chunks,
        spacing,
        unit_name(None if space_unit == "unknown" else space_unit),
        affine=affine,
        world_space="RAS",
    )


def _read_nifti(src: Source, index: tuple) -> np.ndarray:
    nib = nibabel()
    img = cached(("nifti", src.path, stamp(src.path)), lambda: nib.load(src.path))
    block = np.asarray(img.dataobj[index[::-1]])
    return block.transpose(tuple(range(block.ndim))[::-1])


register_reader("nifti", _read_nifti)
