"""Which volumes an ``input.path`` names: one, or a batch (a list, a CSV manifest, a glob)."""

from __future__ import annotations

import csv
import fnmatch
import glob
import os
from collections.abc import Callable
from typing import NamedTuple

from pipeline.errors import DataError
from pipeline.io import storage
from pipeline.io.readers.source import natural_key
from pipeline.io.storage import is_url

_VOLUME_SUFFIXES = (
    ".ome.tiff",
    ".ome.tif",
    ".ome.zarr",
    ".tiff",
    ".tif",
    ".zarr",
    ".npy",
    ".nii.gz",
    ".nii",
    ".h5",
    ".hdf5",
)


class BatchInput(NamedTuple):
    """One input of a batch: its name, path, and timepoint of a time series run per timepoint."""

    name: str
    path: str
    timepoint: int | None = None


def input_name(path: str) -> str:
    """A short name for an input: its file or folder name without the volume suffix."""
    if is_url(path):
        base = path.rstrip("/").rsplit("/", 1)[-1]
    else:
        base = os.path.basename(os.path.normpath(path))
    for suffix in _VOLUME_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def _is_slice(path: str) -> bool:
    """True for a TIFF file holding a single 2D image (a slice of a stack)."""
    if not path.lower().endswith((".tif", ".tiff")) or not os.path.isfile(path):
        return False
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return len(tif.series[0].shape) == 2
    except Exception:  # an unreadable file is reported by the reader
        return True


def _manifest(path: str) -> list[tuple[str, str]]:
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not os.path.isfile(path):
        raise DataError(f"{path}: expected a CSV manifest file, got a folder or special file")
    try:  # utf-8-sig: a byte order mark (as spreadsheets save) is not part of the header
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = reader.fieldnames or []
    except FileNotFoundError:
        raise DataError(f"{path}: input manifest not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except (OSError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV manifest ({exc})") from None
    if "path" not in header:
        got = f"columns {header}" if header else "an empty file"
        raise DataError(f"{path}:1: expected a CSV header with a 'path' column, got {got}")
    if not rows:
        raise DataError(f"{path}: the manifest lists no inputs (a header and no rows)")
    out = []
    for line, row in enumerate(rows, start=2):
        p = (row.get("path") or "").strip()
        if not p:
            raise DataError(f"{path}:{line}: empty path")
        p = p if os.path.isabs(p) or is_url(p) else os.path.join(folder, p)
        name = (row.get("name") or "").strip() or input_name(p)
        check_name(name, f"{path}:{line}: name")
        out.append((name, p))
    return out


def check_name(name: str, where: str) -> None:
    """Refuse an input name that could not be one folder's name (``{name}`` in
    ``output.path``): empty, ``.``, ``..``, with a path separator or a NUL."""
    bad = name in ("", ".", "..") or any(c in name for c in ("/", "\\", "\0", os.sep))
    if bad:
        raise DataError(
            f"{where} {name!r}: expected a plain name (no '/', '\\', '..' or absolute path), "
            "as it names the input's output folder"
        )


def url_matches(pattern: str) -> list[str]:
    """The objects and "folders" of an object store whose URL matches ``pattern``, a URL
    with ``*``, ``?`` or ``[...]`` in its last part (``s3://bucket/plates/*.zarr``)."""
    parent, _, name = pattern.rstrip("/").rpartition("/")
    if any(ch in parent for ch in "*?["):
        raise DataError(f"{pattern}: only the last part of a URL may hold * ? or [")
    files, folders = storage.children(parent)
    found = fnmatch.filter(sorted({*files, *folders}), name)
    return [storage.join(parent, n) for n in sorted(found, key=natural_key)]


def batch_inputs(path: str | list[str], batch: bool | None = None) -> list[BatchInput] | None:
    """Each volume of a batch, or None for a single input.

    A list and a ``.csv`` manifest (column ``path``, optional ``name``; paths relative to
    the manifest) are batches. A glob is a batch unless it matches 2D TIFF files only,
    which are the slices of one stack; ``batch`` decides instead when given.
    """
    if isinstance(path, list):
        items = [(input_name(p), p) for p in path]
    elif path.lower().endswith(".csv"):
        items = _manifest(path)
    elif any(ch in path for ch in "*?[") and batch is not False:
        files = url_matches(path) if is_url(path) else sorted(glob.glob(path), key=natural_key)
        if not files:
            raise DataError(f"{path}: no input matches this pattern")
        if (
            batch is None
            and all(_is_slice(f) for f in files[:1])
            and all(f.lower().endswith((".tif", ".tiff")) for f in files)
        ):
            return None
        items = [(input_name(f), f) for f in files]
    else:
        return None
    for name, p in items:
        check_name(name, f"{p}: input name")
    seen: dict[str, int] = {}
    named = []
    for name, p in items:  # equal names get a suffix: a_1, a_2
        seen[name] = seen.get(name, 0) + 1
        named.append(BatchInput(name if seen[name] == 1 else f"{name}_{seen[name]}", p))
    if len({n.name for n in named}) != len(named):
        raise DataError(f"{path}: input names are not unique: {[n.name for n in named]}")
    return named


def per_timepoint(
    inputs: list[BatchInput] | None,
    path: str,
    timepoint: int | list[int] | str | None,
    count: Callable[[str], int],
) -> list[BatchInput] | None:
    """``inputs`` with each volume split into one input per timepoint when ``timepoint`` is
    a list or ``"all"``; ``count(path)`` is the number of timepoints of a volume."""
    if not isinstance(timepoint, list) and timepoint != "all":
        return inputs
    single = inputs is None
    out = []
    for item in inputs or [BatchInput(input_name(path), path)]:
        n = count(item.path)
        chosen = list(range(n)) if timepoint == "all" else timepoint
        bad = [t for t in chosen if t >= n]
        if bad:
            raise DataError(f"{item.path}: input.timepoint: expected 0..{n - 1}, got {bad[0]}")
        for t in chosen:
            name = f"t{t:04d}" if single else f"{item.name}_t{t:04d}"
            out.append(BatchInput(name, item.path, t))
    return out
