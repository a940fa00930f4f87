"""Lazy, worker-safe readers: TIFF, folders of TIFF slices, Zarr / OME-Zarr, .npy.

Opening a reader reads metadata only. A reader object holds paths and numbers,
never an open file: each task opens what it reads (with a per-process cache of
parsed files), so graphs run on remote workers.
"""

from __future__ import annotations

import glob
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import DataError

Box = tuple[tuple[int, int], ...]
_CACHE: dict[tuple, object] = {}
_OPEN_FILES: list = []
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Source:
    """A lazily read image: spatial axes (z, y, x or y, x) plus an optional colour axis."""

    kind: str
    path: str
    native_shape: tuple[int, ...]
    native_axes: str
    dtype: str
    storage_chunks: tuple[int, ...]
    spacing: tuple[float, ...]
    unit: str | None
    fixed: tuple[tuple[int, int], ...] = ()  # (native axis, index) removed by selection
    files: tuple[str, ...] = field(default=(), repr=False)
    dataset: str | None = None

    @property
    def axes(self) -> str:
        """Axes of the selected image (lower case; ``c`` is a colour axis, last)."""
        drop = {a for a, _ in self.fixed}
        return "".join(c for i, c in enumerate(self.native_axes) if i not in drop)

    @property
    def spatial_axes(self) -> str:
        return self.axes.replace("c", "")

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape of the selected image."""
        drop = {a for a, _ in self.fixed}
        return tuple(
            n
            for i, (n, c) in enumerate(zip(self.native_shape, self.native_axes, strict=True))
            if i not in drop and c != "c"
        )

    @property
    def color(self) -> bool:
        return "c" in self.axes

    def _native_index(self, box: Box) -> tuple:
        fixed = dict(self.fixed)
        it = iter(box)
        index = []
        for i, c in enumerate(self.native_axes):
            if i in fixed:
                index.append(fixed[i])
            elif c == "c":
                index.append(slice(None))
            else:
                lo, hi = next(it)
                index.append(slice(lo, hi))
        return tuple(index)

    def read(self, box: Box) -> np.ndarray:
        """Read the spatial ``box`` (opening the file in this process)."""
        index = self._native_index(box)
        try:
            if self.kind == "slices":
                z = index[0]
                planes = [_read_slice(f, index[1:], self.shape[1:]) for f in self.files[z]]
                block = np.stack(planes) if planes else np.empty((0,), self.dtype)
            else:
                block = np.asarray(_array(self)[index])
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{self.path}: cannot read block {box}: {exc}") from exc
        want = tuple(hi - lo for lo, hi in box)
        if block.shape[: len(want)] != want:
            raise DataError(
                f"{self.path}: block {box} read with shape {block.shape[: len(want)]}, "
                f"expected {want} (a slice or chunk of the wrong shape?)"
            )
        return block


def _stamp(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _array(src: Source):
    # Keyed by the file's identity too: a rewritten file is opened afresh.
    key = (src.kind, src.path, src.dataset, _stamp(src.path))
    with _LOCK:
        arr = _CACHE.get(key)
        if arr is None:
            if src.kind == "tiff":
                arr = _open_tiff_array(src.path)
            elif src.kind == "npy":
                arr = np.load(src.path, mmap_mode="r")
            else:
                import zarr

                arr = zarr.open_array(
                    src.path if src.dataset is None else os.path.join(src.path, src.dataset),
                    mode="r",
                )
            _CACHE[key] = arr
    return arr


def _open_tiff_array(path: str):
    import tifffile
    import zarr

    tif = tifffile.TiffFile(path)
    _OPEN_FILES.append(tif)
    return zarr.open_array(tif.series[0].aszarr(), mode="r")


def _read_slice(path: str, index: tuple, plane_shape: tuple[int, ...]) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        plane = tif.series[0].asarray()
    if plane.shape != plane_shape:
        raise DataError(f"{path}: slice of shape {plane.shape}, expected {plane_shape}")
    return plane[index]


def close_files() -> None:
    """Close the files this process opened for reading and forget them."""
    with _LOCK:
        for f in _OPEN_FILES:
            f.close()
        _OPEN_FILES.clear()
        _CACHE.clear()


def _natural_key(s: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


_TIFF_AXES = {"Q": "z", "Z": "z", "I": "z", "Y": "y", "X": "x", "S": "c", "C": "ch", "T": "t"}


def open_source(
    path: str | os.PathLike,
    channel: int | None = None,
    timepoint: int | None = None,
    dataset: str | None = None,
    spacing: list[float] | None = None,
    unit: str | None = None,
) -> Source:
    """Open ``path`` lazily (metadata only) and apply channel/time selection.

    Raises
    ------
    DataError
        Missing or unreadable file, unknown format, or a selection that does not fit.
    """
    p = os.path.abspath(str(path))
    if any(ch in p for ch in "*?[") or os.path.isdir(p) and not _is_zarr(p):
        src = _open_slices(p)
    elif not os.path.exists(p):
        raise DataError(f"{p}: input file not found")
    elif _is_zarr(p):
        src = _open_zarr(p, dataset)
    elif p.lower().endswith((".tif", ".tiff", ".btf", ".tf8")):
        src = _open_tiff(p)
    elif p.lower().endswith(".npy"):
        try:
            arr = np.load(p, mmap_mode="r")
        except Exception as exc:
            raise DataError(f"{p}: not a readable .npy file ({exc})") from None
        axes = {2: "yx", 3: "zyx"}.get(arr.ndim, "")
        if not axes:
            raise DataError(f"{p}: expected a 2D or 3D array, got shape {arr.shape}")
        src = Source("npy", p, arr.shape, axes, arr.dtype.str, arr.shape, (1.0,) * arr.ndim, None)
    else:
        raise DataError(
            f"{p}: unknown input format (expected .tif/.tiff, .zarr, .ome.zarr, .npy or a folder)"
        )
    return _select(src, channel, timepoint, spacing, unit)


def _is_zarr(p: str) -> bool:
    return os.path.isdir(p) and any(
        os.path.exists(os.path.join(p, f)) for f in ("zarr.json", ".zarray", ".zgroup")
    )


def _select(src, channel, timepoint, spacing, unit) -> Source:
    fixed = list(src.fixed)
    axes = src.native_axes
    for name, value, ax in (("channel", channel, "ch"), ("timepoint", timepoint, "t")):
        pos = [i for i, c in enumerate(_split_axes(axes)) if c == ax]
        if value is not None:
            if not pos:
                raise DataError(f"{src.path}: input.{name}: the image has no {name} axis")
            n = src.native_shape[pos[0]]
            if not 0 <= value < n:
                raise DataError(f"{src.path}: input.{name}: expected 0..{n - 1}, got {value}")
            fixed.append((pos[0], value))
        elif pos and src.native_shape[pos[0]] > 1:
            raise DataError(
                f"{src.path}: the image has {src.native_shape[pos[0]]} {name}s: "
                f"choose one with input.{name}"
            )
        elif pos:
            fixed.append((pos[0], 0))
    out = Source(
        src.kind,
        src.path,
        src.native_shape,
        "".join(_axis_char(a) for a in _split_axes(axes)),
        src.dtype,
        src.storage_chunks,
        src.spacing,
        src.unit,
        tuple(fixed),
        src.files,
        src.dataset,
    )
    nsp = len(out.shape)
    if nsp not in (2, 3):
        raise DataError(f"{src.path}: expected 2 or 3 spatial axes, got axes {out.axes!r}")
    sp = tuple(spacing) if spacing is not None else out.spacing[-nsp:]
    if len(sp) != nsp:
        raise DataError(f"{src.path}: input.spacing: expected {nsp} values, got {len(sp)}")
    return Source(
        out.kind,
        out.path,
        out.native_shape,
        out.native_axes,
        out.dtype,
        out.storage_chunks,
        tuple(float(s) for s in sp),
        unit or out.unit,
        out.fixed,
        out.files,
        out.dataset,
    )


def _split_axes(axes: str) -> list[str]:
    # Multi-letter tokens: 'ch' (channel), single letters otherwise.
    return ["ch" if c == "C" else c for c in axes]


def _axis_char(a: str) -> str:
    return {"ch": "C", "t": "t"}.get(a, a)


def _open_tiff(p: str) -> Source:
    import tifffile

    try:
        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            shape, dtype = tuple(series.shape), series.dtype
            axes = "".join(_TIFF_AXES.get(c, c) for c in series.axes)
            page = series.pages[0]
            chunks = tuple(page.chunks) if page.is_tiled else (page.rowsperstrip, page.imagewidth)
            spacing, unit = _tiff_spacing(tif, page, axes)
    except Exception as exc:
        raise DataError(f"{p}: not a readable TIFF ({exc})") from None
    axes = axes.replace("ch", "C")
    storage = tuple(1 if c in "zCt" else 0 for c in axes)
    yx = [i for i, c in enumerate(axes) if c in "yx"]
    storage = list(storage)
    for i, c in zip(yx, chunks[-2:], strict=False):
        storage[i] = min(int(c), shape[i])
    for i, c in enumerate(axes):
        if c == "c":
            storage[i] = shape[i]
    spatial = tuple(n for n, c in zip(storage, axes, strict=True) if c in "zyx")
    full_sp = [1.0] * sum(c in "zyx" for c in axes)
    full_sp[-len(spacing) :] = spacing
    return Source("tiff", p, shape, axes, dtype.str, spatial, tuple(full_sp), unit)


_UNITS = {
    "µm": "micrometer",  # micro sign
    "μm": "micrometer",  # Greek mu
    "um": "micrometer",
    "micron": "micrometer",
    "microns": "micrometer",
    "\\u00B5m": "micrometer",  # ImageJ's escaped micro sign
    "nm": "nanometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "Å": "angstrom",
}


def _unit_name(unit: str | None) -> str | None:
    """The OME-NGFF name of a unit as TIFF and OME metadata write it."""
    if unit is None:
        return None
    return _UNITS.get(unit, _UNITS.get(unit.lower(), unit))


def _tiff_spacing(tif, page, axes: str) -> tuple[list[float], str | None]:
    """Voxel size and unit: OME-XML, else ImageJ metadata, else resolution tags in cm."""
    nsp = sum(c in "zyx" for c in axes)
    sp = [1.0] * nsp
    try:
        if tif.is_ome and tif.ome_metadata:
            found = _ome_tiff_spacing(tif.ome_metadata, nsp)
            if found is not None:
                return found
        ij = tif.imagej_metadata or {}
        unit = _unit_name(ij.get("unit"))
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


def _ome_tiff_spacing(xml: str, nsp: int) -> tuple[list[float], str | None] | None:
    """PhysicalSize{Z,Y,X} and their unit from the first image of an OME-XML document."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels")), None)
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
    return sp, _unit_name(units.pop()) if len(units) == 1 else None


def _open_slices(p: str) -> Source:
    pattern = os.path.join(p, "*.tif*") if os.path.isdir(p) else p
    files = sorted(glob.glob(pattern), key=_natural_key)
    if not files:
        raise DataError(f"{p}: no TIFF slices found (pattern {pattern})")
    import tifffile

    shape = dtype = None
    for f in files:
        try:
            with tifffile.TiffFile(f) as tif:
                s = tif.series[0]
                fshape, fdtype = tuple(s.shape), s.dtype
        except Exception as exc:
            raise DataError(f"{f}: not a readable TIFF ({exc})") from None
        if shape is None:
            shape, dtype = fshape, fdtype
        elif (fshape, fdtype) != (shape, dtype):
            raise DataError(
                f"{f}: slice of shape {fshape} {fdtype}, expected {shape} {dtype} like {files[0]}"
            )
    if len(shape) != 2:
        raise DataError(f"{files[0]}: expected 2D slices, got shape {shape}")
    return Source(
        "slices",
        p,
        (len(files), *shape),
        "zyx",
        np.dtype(dtype).str,
        (1, *shape),
        (1.0, 1.0, 1.0),
        None,
        files=tuple(files),
    )


def _open_zarr(p: str, dataset: str | None) -> Source:
    import zarr

    try:
        node = zarr.open(p, mode="r")
    except Exception as exc:
        raise DataError(f"{p}: not a readable Zarr store ({exc})") from None
    spacing, unit, axes = None, None, None
    if isinstance(node, zarr.Group):
        attrs = dict(node.attrs)
        ms = attrs.get("ome", attrs).get("multiscales")
        if dataset is None and ms:
            ds = ms[0]["datasets"][0]
            dataset = ds["path"]
            axes = "".join(_ome_axis(a) for a in ms[0].get("axes", []))
            for t in ds.get("coordinateTransformations", []):
                if t.get("type") == "scale":
                    spacing = t["scale"]
            units = [a.get("unit") for a in ms[0].get("axes", []) if a.get("type") == "space"]
            unit = units[-1] if units else None
        if dataset is None:
            raise DataError(f"{p}: a Zarr group without multiscales: give input.dataset")
        try:
            arr = node[dataset]
        except KeyError:
            raise DataError(f"{p}: input.dataset {dataset!r} not found") from None
    else:
        arr = node
    shape = tuple(arr.shape)
    if axes is None:
        dims = getattr(arr.metadata, "dimension_names", None)
        if dims and all(dims):
            axes = "".join(_ome_axis({"name": d}) for d in dims)
        else:
            axes = {2: "yx", 3: "zyx"}.get(len(shape), "")
    if len(axes) != len(shape):
        raise DataError(f"{p}: cannot tell the axes of an array of shape {shape}")
    sp_axes = [i for i, c in enumerate(axes) if c in "zyx"]
    sp = tuple(float(spacing[i]) for i in sp_axes) if spacing else (1.0,) * len(sp_axes)
    chunks = tuple(int(c) for c, a in zip(arr.chunks, axes, strict=True) if a in "zyx")
    return Source("zarr", p, shape, axes, arr.dtype.str, chunks, sp, unit, dataset=dataset)


def _ome_axis(a: dict) -> str:
    name = a.get("name", "").lower()
    return {"c": "C", "channel": "C", "t": "t", "time": "t"}.get(name, name[:1])


def output_inside(output: str | os.PathLike, source: Source) -> bool:
    """True when ``output`` lies inside (or is) the input path."""
    out = Path(output).resolve()
    roots = [Path(source.path).resolve()]
    return any(out == r or r in out.parents for r in roots)
