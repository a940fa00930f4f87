"""The lazily read image every reader returns, and the selection applied to it.

A :class:`Source` holds paths and numbers, never an open file: each task opens what it
reads (with a per-process cache of parsed files), so graphs run on remote workers.
Each format registers a function that reads a native index of its kind.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.errors import DataError

Box = tuple[tuple[int, int], ...]
Affine = tuple[tuple[float, ...], ...]

_CACHE: dict[tuple, object] = {}
_CLOSERS: list[Callable[[], None]] = []
_LOCK = threading.Lock()
READERS: dict[str, Callable[[Source, tuple], np.ndarray]] = {}

# Native axis letters: z, y, x spatial; c colour samples (kept, last); C channel (one
# chosen, or all kept and read as a last axis); t time.
SELECTABLE = {"channel": "C", "timepoint": "t"}


@dataclass(frozen=True)
class Source:
    """A lazily read image: spatial axes (z, y, x or y, x) plus an optional colour axis.

    ``native_axes`` names each axis of the stored array; ``fixed`` removes the chosen
    channel or timepoint, ``crop`` narrows spatial axes to a region.
    """

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
    crop: tuple[tuple[int, int, int], ...] = ()  # (native axis, start, stop)
    part: tuple[int, int] = (0, 0)  # (series, level) of a multi-series, multi-level file
    details: tuple = field(default=(), repr=False)  # what the reader of this kind needs
    affine: Affine | None = None  # NIfTI-style voxel (x, y, z) → world, see world_space
    world_space: str | None = None  # "RAS" (NIfTI) or "LPS" (DICOM patient coordinates)
    allow_missing_chunks: bool = False  # a Zarr chunk not stored reads as the fill value

    @property
    def axes(self) -> str:
        """Axes of the selected image (lower case; ``c`` is a colour axis, last)."""
        drop = {a for a, _ in self.fixed}
        return "".join(c for i, c in enumerate(self.native_axes) if i not in drop)

    @property
    def spatial_axes(self) -> str:
        return self.axes.replace("c", "").replace("C", "")

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape of the selected image."""
        drop = {a for a, _ in self.fixed}
        crop = {a: hi - lo for a, lo, hi in self.crop}
        return tuple(
            crop.get(i, n)
            for i, (n, c) in enumerate(zip(self.native_shape, self.native_axes, strict=True))
            if i not in drop and c in "zyx"
        )

    @property
    def color(self) -> bool:
        """Whether blocks have a last axis of samples: colour, or every channel kept."""
        return "c" in self.axes or "C" in self.axes

    @property
    def samples(self) -> int:
        """Samples per voxel on the blocks' last axis (1 without one)."""
        letter = next((c for c in "cC" if c in self.axes), None)
        return 1 if letter is None else self.native_shape[self.native_axes.index(letter)]

    def native_index(self, box: Box) -> tuple:
        """The index into the stored array of the spatial ``box`` of the selection."""
        fixed = dict(self.fixed)
        start = {a: lo for a, lo, _ in self.crop}
        it = iter(box)
        index: list = []
        for i, c in enumerate(self.native_axes):
            if i in fixed:
                index.append(fixed[i])
            elif c in "zyx":
                lo, hi = next(it)
                off = start.get(i, 0)
                index.append(slice(lo + off, hi + off))
            else:
                index.append(slice(None))
        return tuple(index)

    def read(self, box: Box) -> np.ndarray:
        """Read the spatial ``box`` (opening the file in this process)."""
        keep_library_messages()  # in a worker process too
        try:
            block = READERS[self.kind](self, self.native_index(box))
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{self.path}: cannot read block {box}: {exc}") from exc
        if "C" in self.axes:  # every channel kept: read as the last axis
            block = np.moveaxis(block, self.axes.index("C"), -1)
        if not block.dtype.isnative:  # big-endian files (NIfTI, DICOM, TIFF) read as native
            block = block.astype(block.dtype.newbyteorder("="))
        if block.dtype == np.float16:  # read as float32: scipy.ndimage has no float16 loops
            block = block.astype(np.float32)
        want = tuple(hi - lo for lo, hi in box)
        if block.shape[: len(want)] != want:
            raise DataError(
                f"{self.path}: block {box} read with shape {block.shape[: len(want)]}, "
                f"expected {want} (a slice or chunk of the wrong shape?)"
            )
        if block.dtype.kind in "fc" and not np.isfinite(block).all():
            raise DataError(self._not_finite(block, box))
        return block

    def _not_finite(self, block: np.ndarray, box: Box) -> str:
        """The error of a block holding NaN or infinity: what, where, how many."""
        bad = ~np.isfinite(block)
        first = np.unravel_index(int(np.argmax(bad)), bad.shape)
        at = tuple(int(lo + i) for (lo, _), i in zip(box, first, strict=False))
        value = block[first]
        what = "NaN" if np.isnan(value) else "infinity"
        axes = ",".join(self.spatial_axes)
        return (
            f"{self.path}: the image holds {what} at voxel ({axes}) = "
            f"{','.join(map(str, at))} ({int(bad.sum())} values not finite in block {box}); "
            "segpipe segments finite values only: replace NaN and infinity in the image first"
        )


def register_reader(kind: str, read: Callable[[Source, tuple], np.ndarray]) -> None:
    """Make ``read(source, native_index)`` the reader of sources of ``kind``."""
    READERS[kind] = read


def stamp(path: str) -> tuple:
    """The identity of a file's current contents (a rewritten file differs)."""
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def cached(key: tuple, open_: Callable[[], object], close: Callable[[object], None] | None = None):
    """The object ``open_()`` made for ``key`` in this process, made once.

    ``close(obj)`` is called by :func:`close_files`.
    """
    with _LOCK:
        obj = _CACHE.get(key)
        if obj is None:
            obj = _CACHE[key] = open_()
            if close is not None:
                _CLOSERS.append(lambda: close(obj))
    return obj


def close_files() -> None:
    """Close the files this process opened for reading and forget them."""
    with _LOCK:
        for close in _CLOSERS:
            close()
        _CLOSERS.clear()
        _CACHE.clear()


def natural_key(s: str) -> list:
    """Sort key that orders ``z2`` before ``z10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


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
    "s": "second",
    "ms": "millisecond",
}


_AXIS_NAMES = {"z": "z", "y": "y", "x": "x", "c": "C", "channel": "C", "t": "t", "time": "t"}


def axis_letters(names) -> str | None:
    """segpipe's axis letters for axis ``names`` (z, y, x, c/channel, t/time), or None
    when a name is none of these."""
    letters = [_AXIS_NAMES.get(str(n).lower()) for n in names]
    return "".join(letters) if all(letters) else None


def unit_name(unit: str | None) -> str | None:
    """The OME-NGFF name of a unit as TIFF, OME, NIfTI and DICOM metadata write it."""
    if unit is None:
        return None
    return _UNITS.get(unit, _UNITS.get(unit.lower(), unit))


def select(
    src: Source,
    channel: int | str | None = None,
    timepoint: int | None = None,
    spacing: list[float] | None = None,
    unit: str | None = None,
    region: dict[str, list[int]] | None = None,
) -> Source:
    """``src`` with one channel (or ``"all"``) and timepoint chosen, a spatial region,
    and voxel size.

    Raises
    ------
    DataError
        A selection the image has no axis for, or an index or range outside it.
    """
    fixed = list(src.fixed)
    for name, value in (("channel", channel), ("timepoint", timepoint)):
        pos = [i for i, c in enumerate(src.native_axes) if c == SELECTABLE[name]]
        if value == "all" and name == "channel":
            if not pos:
                raise DataError(f"{src.path}: input.channel: all: the image has no channel axis")
            if "c" in src.native_axes:
                raise DataError(
                    f"{src.path}: input.channel: all: the image has colour samples and "
                    "channels; choose one channel"
                )
            continue
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
                + (" (or all: input.timepoint: all)" if name == "timepoint" else "")
            )
        elif pos:
            fixed.append((pos[0], 0))
    out = replace(src, fixed=tuple(fixed), crop=_crop(src, region or {}))
    nsp = len(out.shape)
    if nsp not in (2, 3):
        raise DataError(f"{src.path}: expected 2 or 3 spatial axes, got axes {out.axes!r}")
    sp = tuple(spacing) if spacing is not None else out.spacing[-nsp:]
    if len(sp) != nsp:
        raise DataError(f"{src.path}: input.spacing: expected {nsp} values, got {len(sp)}")
    dtype = np.dtype(out.dtype).newbyteorder("=")
    return replace(
        out,
        dtype=np.dtype(np.float32).str if dtype == np.float16 else dtype.str,
        spacing=tuple(float(s) for s in sp),
        unit=unit_name(unit) or out.unit,
    )


def _crop(src: Source, region: dict[str, list[int]]) -> tuple[tuple[int, int, int], ...]:
    crop = []
    for axis, (lo, hi) in sorted(region.items()):
        pos = [i for i, c in enumerate(src.native_axes) if c == axis]
        if not pos:
            raise DataError(f"{src.path}: input.region.{axis}: the image has no {axis} axis")
        n = src.native_shape[pos[0]]
        if not 0 <= lo < hi <= n:
            raise DataError(
                f"{src.path}: input.region.{axis}: expected start < stop within 0..{n}, "
                f"got [{lo}, {hi}]"
            )
        crop.append((pos[0], lo, hi))
    return tuple(crop)


LIBRARIES = ("tifffile",)  # readers whose log messages a run keeps, not prints


class _Kept(logging.Handler):
    """Keeps the reading libraries' messages (each once, at most 100) for the summary."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: dict[str, None] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < 100:
            self.messages.setdefault(f"{record.name}: {record.getMessage()}", None)


_KEPT = _Kept()


def keep_library_messages() -> None:
    """Keep the reading libraries' warnings off stderr (a run lists them in its
    summary): they still reach a handler the calling program configures."""
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        if _KEPT not in logger.handlers:
            logger.addHandler(_KEPT)


def library_messages(path: str) -> list[str]:
    """The reading libraries' messages that name the file or folder ``path``."""
    name = os.path.basename(os.path.normpath(path))
    return [m for m in _KEPT.messages if name and name in m]
