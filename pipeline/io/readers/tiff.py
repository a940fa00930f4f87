"""TIFF, BigTIFF and OME-TIFF files (any series, any pyramid level) through tifffile."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from pipeline.errors import DataError
from pipeline.io.readers.source import Source, cached, register_reader, stamp, unit_name

# tifffile's axis codes → segpipe's (z, y, x spatial; c colour samples; C channel; t time).
TIFF_AXES = {"Q": "z", "Z": "z", "I": "z", "Y": "y", "X": "x", "S": "c", "C": "C", "T": "t"}


def open_tiff(path: str, series: int = 0, level: int = 0) -> Source:
    """A TIFF file's ``series`` at pyramid ``level``, metadata only.

    Raises
    ------
    DataError
        Not a readable TIFF, or no such series or level (the message lists those there are).
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            chosen = _series(tif, path, series, level)
            shape, dtype = tuple(chosen.shape), chosen.dtype
            axes = "".join(TIFF_AXES.get(c, c) for c in chosen.axes)
            page = chosen.pages[0]
            chunks = tuple(page.chunks) if page.is_tiled else (page.rowsperstrip, page.imagewidth)
            spacing, unit = _spacing(tif, page, axes, series)
            if level:  # a reduced level: the voxel grows by the reduction along y and x
                full = tif.series[series].levels[0].shape
                for i, c in enumerate(axes):
                    if c in "yx":
                        spacing[_spatial_position(axes, i)] *= full[i] / shape[i]
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: not a readable TIFF ({exc})") from None
    storage = [1 if c in "zCt" else 0 for c in axes]
    yx = [i for i, c in enumerate(axes) if c in "yx"]
    for i, c in zip(yx, chunks[-2:], strict=False):
        storage[i] = min(int(c), shape[i])
    spatial = tuple(n for n, c in zip(storage, axes, strict=True) if c in "zyx")
    full_sp = [1.0] * sum(c in "zyx" for c in axes)
    full_sp[-len(spacing) :] = spacing
    return Source(
        "tiff", path, shape, axes, dtype.str, spatial, tuple(full_sp), unit, part=(series, level)
    )


def _spatial_position(axes: str, i: int) -> int:
    """Position among the spatial axes of native axis ``i``."""
    return sum(c in "zyx" for c in axes[:i])


def _series(tif, path: str, series: int, level: int):
    if not tif.series:
        raise DataError(f"{path}: not a readable TIFF (no images in it)")
    if not 0 <= series < len(tif.series):
        found = ", ".join(f"{i}: {s.axes} {s.shape}" for i, s in enumerate(tif.series))
        raise DataError(
            f"{path}: input.series: expected 0..{len(tif.series) - 1}, got {series} "
            f"(series {found})"
        )
    levels = tif.series[series].levels
    if not 0 <= level < len(levels):
        found = ", ".join(f"{i}: {lv.shape}" for i, lv in enumerate(levels))
        raise DataError(
            f"{path}: input.level: expected 0..{len(levels) - 1}, got {level} (levels {found})"
        )
    return levels[level]


def _read_tiff(src: Source, index: tuple) -> np.ndarray:
    return np.asarray(_tiff_array(src)[index])


def _tiff_array(src: Source):
    import tifffile
    import zarr

    def open_():
        tif = tifffile.TiffFile(src.path)
        series, level = src.part
        return tif, zarr.open_array(tif.series[series].aszarr(level=level), mode="r")

    key = ("tiff", src.path, src.part, stamp(src.path))
    return cached(key, open_, lambda opened: opened[0].close())[1]


register_reader("tiff", _read_tiff)


def _spacing(tif, page, axes: str, series: int) -> tuple[list[float], str | None]:
    """Voxel size and unit: OME-XML, else ImageJ metadata, else resolution tags in cm."""
    nsp = sum(c in "zyx" for c in axes)
    sp = [1.0] * nsp
    try:
        if tif.is_ome and tif.ome_metadata:
            found = ome_spacing(tif.ome_metadata, nsp, series)
            if found is not None:
                return found
        ij = tif.imagej_metadata or {}
        unit = unit_name(ij.get("unit"))
        resunit = int(page.tags["ResolutionUnit"].value) if "ResolutionUnit" in page.tags else 1
        scale = 1.0
        if not ij and resunit == 3:  # pixels per centimetre
            scale, unit = 1e4, "micrometer"
        elif not ij:
            return sp, None  # pixels per inch (72 dpi) says nothing about the sample
        xr = page.tags.get("XResolution")
        yr = page.tags.get("YResolution")
        if xr is not None and yr is not None:
            xn, xd = xr.value
            yn, yd = yr.value
            if xn and yn and (xn, xd) != (1, 1):
                sp[-1], sp[-2] = scale * xd / xn, scale * yd / yn
        if nsp == 3 and "spacing" in ij:
            sp[0] = float(ij["spacing"])
        return sp, unit
    except Exception:  # metadata we cannot read leaves the voxel size at 1
        return [1.0] * nsp, None


def ome_spacing(xml: str, nsp: int, image: int = 0) -> tuple[list[float], str | None] | None:
    """PhysicalSize{Z,Y,X} and their unit from ``image`` of an OME-XML document."""
    root = ET.fromstring(xml)
    images = [e for e in root if e.tag.endswith("}Image")]
    if not images:
        return None
    chosen = images[min(image, len(images) - 1)]
    pixels = next((e for e in chosen if e.tag.endswith("}Pixels")), None)
    if pixels is None:
        return None
    sp, units = [1.0] * nsp, set()
    for axis, i in zip("XYZ", range(nsp - 1, -1, -1), strict=False):
        value = pixels.get(f"PhysicalSize{axis}")
        if value is not None:
            sp[i] = float(value)
            units.add(pixels.get(f"PhysicalSize{axis}Unit", "µm"))
    if not units:
        return None
    return sp, unit_name(units.pop()) if len(units) == 1 else None
