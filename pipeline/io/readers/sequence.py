"""Many TIFF files as one image: a folder or glob of slices, or files named by z, channel, time.

Files whose names carry axis letters and numbers (``img_z012_c1.tif``, ``t3_z40.tif``) are
arranged on a grid of those axes, parsed by tifffile's file-sequence patterns (or the
regular expression in ``input.pattern``, with named groups ``z``, ``c``, ``t``); other
files are slices stacked along z in
natural order. Each file may hold a plane or a stack.
"""

from __future__ import annotations

import glob
import math
import os
import re

import numpy as np

from pipeline.errors import DataError
from pipeline.io.readers.source import Source, natural_key, register_reader
from pipeline.io.readers.tiff import TIFF_AXES

_GRID_AXES = {"Z": "z", "C": "C", "T": "t"}


def open_sequence(path: str, pattern: str | None = None) -> Source:
    """The TIFF files of a folder or glob ``path`` as one image, metadata only.

    Raises
    ------
    DataError
        No files, a file that is not a readable TIFF or differs in shape or dtype, file names
        that do not fill the grid of their axes, or an axis letter that is not z, c or t.
    """
    spec = os.path.join(path, "*.tif*") if os.path.isdir(path) else path
    files = sorted(glob.glob(spec), key=natural_key)
    if not files:
        raise DataError(f"{path}: no TIFF files found (pattern {spec})")
    grid_axes, grid_shape, files = _grid(path, files, pattern)
    file_axes, file_shape, dtype = _file_layout(files)
    if grid_axes == "z" and pattern is None and "z" in file_axes:
        raise DataError(f"{files[0]}: expected 2D slices, got shape {file_shape}")
    both = sorted(set(grid_axes) & set(file_axes))
    if both:
        raise DataError(
            f"{path}: axis {both} is both in the file names and inside the files ({file_axes})"
        )
    axes = grid_axes + file_axes
    shape = grid_shape + file_shape
    # One file per z: a block spans whole planes; stacks inside files: whole files.
    chunks = tuple(
        1 if c in grid_axes else n for c, n in zip(axes, shape, strict=True) if c in "zyx"
    )
    return Source(
        "sequence",
        path,
        shape,
        axes,
        np.dtype(dtype).str,
        chunks,
        (1.0,) * sum(c in "zyx" for c in axes),
        None,
        files=tuple(files),
        details=(len(grid_axes),),
    )


def _grid(path: str, files: list[str], pattern: str | None) -> tuple[str, tuple, list[str]]:
    """Axes and shape of the file grid, and the files in its C order."""
    if pattern is not None:
        axes, numbers = _named_numbers(path, files, pattern)
    else:
        import tifffile

        try:
            parsed = tifffile.TiffSequence(files, pattern="axes")
        except Exception:  # no axis letters in the names: slices in natural order
            return "z", (len(files),), files
        if len(parsed.axes) < 2:
            return "z", (len(files),), files
        unknown = [a for a in parsed.axes if a.upper() not in _GRID_AXES]
        if unknown:
            raise DataError(
                f"{path}: file names carry axis {unknown[0]!r}; expected z, c or t "
                "(or give input.pattern, e.g. '_z(?P<z>\\d+)_c(?P<c>\\d+)')"
            )
        axes = "".join(_GRID_AXES[a.upper()] for a in parsed.axes)
        files, numbers = list(parsed), [tuple(i) for i in parsed.indices]
    # Each axis's distinct numbers, in order, are its positions (0, 1, 2, ...).
    values = [sorted({n[k] for n in numbers}) for k in range(len(axes))]
    shape = tuple(len(v) for v in values)
    grid: list[str | None] = [None] * math.prod(shape)
    for f, n in zip(files, numbers, strict=True):
        at = int(np.ravel_multi_index([v.index(i) for v, i in zip(values, n, strict=True)], shape))
        if grid[at] is not None:
            raise DataError(f"{path}: {grid[at]} and {f} have the same {axes} numbers {n}")
        grid[at] = f
    missing = [np.unravel_index(i, shape) for i, f in enumerate(grid) if f is None]
    if missing:
        where = ", ".join(
            f"{a}={v[int(i)]}" for a, v, i in zip(axes, values, missing[0], strict=True)
        )
        raise DataError(
            f"{path}: {len(missing)} files missing from the {axes} grid {shape}, first at {where}"
        )
    return axes, shape, grid  # type: ignore[return-value]


def _named_numbers(path: str, files: list[str], pattern: str) -> tuple[str, list[tuple]]:
    """The axes named in ``pattern`` (groups ``z``, ``c``, ``t``) and each file's numbers."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise DataError(f"{path}: input.pattern {pattern!r}: {exc}") from None
    names = sorted(regex.groupindex, key=regex.groupindex.get)
    if not names or set(names) - {"z", "c", "t"}:
        raise DataError(
            f"{path}: input.pattern {pattern!r}: expected named groups z, c or t, "
            "e.g. '_z(?P<z>\\d+)_c(?P<c>\\d+)'"
        )
    numbers = []
    for f in files:
        m = regex.search(os.path.basename(f))
        if m is None:
            raise DataError(f"{f}: file name does not match input.pattern {pattern!r}")
        numbers.append(tuple(int(m.group(n)) for n in names))
    return "".join("C" if n == "c" else n for n in names), numbers


def _file_layout(files: list[str]) -> tuple[str, tuple, np.dtype]:
    import tifffile

    first = None
    for f in files:
        try:
            with tifffile.TiffFile(f) as tif:
                s = tif.series[0]
                found = (tuple(s.shape), s.dtype, "".join(TIFF_AXES.get(c, c) for c in s.axes))
        except Exception as exc:
            raise DataError(f"{f}: not a readable TIFF ({exc})") from None
        if first is None:
            first = found
        elif found[:2] != first[:2]:
            raise DataError(
                f"{f}: shape {found[0]} {found[1]}, expected {first[0]} {first[1]} like {files[0]}"
            )
    shape, dtype, axes = first  # type: ignore[misc]
    if axes not in ("yx", "yxc", "zyx", "zyxc"):
        raise DataError(f"{files[0]}: expected planes or stacks (yx or zyx), got axes {axes!r}")
    return axes, shape, dtype


def _read_sequence(src: Source, index: tuple) -> np.ndarray:
    import tifffile
    import zarr

    ngrid = src.details[0]
    grid_shape = src.native_shape[:ngrid]
    grid_index, file_index = index[:ngrid], index[ngrid:]
    ranges = [
        [i] if isinstance(i, int) else range(*i.indices(n))
        for i, n in zip(grid_index, grid_shape, strict=True)
    ]
    keep = [k for k, i in enumerate(grid_index) if not isinstance(i, int)]
    pieces = []
    for at in np.ndindex(*[len(r) for r in ranges]):
        cell = tuple(r[k] for r, k in zip(ranges, at, strict=True))
        name = src.files[int(np.ravel_multi_index(cell, grid_shape))]
        with tifffile.TiffFile(name) as tif:
            s = tif.series[0]
            if tuple(s.shape) != src.native_shape[ngrid:]:
                raise DataError(
                    f"{name}: shape {tuple(s.shape)}, expected {src.native_shape[ngrid:]}"
                )
            pieces.append(np.asarray(zarr.open_array(s.aszarr(), mode="r")[file_index]))
    counts = [len(ranges[k]) for k in keep]
    if not pieces:
        return np.empty((*counts, *[0] * len(file_index)), src.dtype)
    return np.stack(pieces).reshape(*counts, *pieces[0].shape)


register_reader("sequence", _read_sequence)
