"""Where a run may write: output folders that can never hold, or be held by, an input.

A run deletes what an earlier run wrote when it is told to overwrite, so an output folder
that is an input, holds an input or the config, or lies inside an input folder would put
the user's data at risk. Such locations are refused before anything is written, and so
are locations that cannot be folders (a file, a path below a file, a symlink loop).
Paths are compared after symlinks are resolved.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from pipeline.errors import DataError
from pipeline.io import storage
from pipeline.io.inputs import batch_inputs, url_matches
from pipeline.io.locations import Location, ObjectPath

_GLOB = "*?["


def _resolved(path: str | os.PathLike, key: str) -> Path:
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before 3.13)
        raise DataError(f"{key} {os.fspath(path)}: cannot be resolved: {exc}") from None


class Protected:
    """Files and folders a run reads, each with what it is in words, indexed so that a
    folder is checked against any number of them in the time of its own depth."""

    def __init__(self, items: Iterable[tuple[Path | str, str]]) -> None:
        self.exact: dict[Path, str] = {}
        self.above: dict[Path, tuple[Path, str]] = {}  # a folder -> a path it holds
        self.urls: list[tuple[str, str]] = []  # inputs in object stores
        for path, what in items:
            if isinstance(path, str):
                self.urls.append((path.rstrip("/"), what))
                continue
            self.exact.setdefault(path, what)
            for folder in path.parents:
                self.above.setdefault(folder, (path, what))

    def refusal(self, out: Path) -> str | None:
        """Why the resolved folder ``out`` may not hold outputs (None: it may)."""
        if out in self.exact:
            return f"is {self.exact[out]} {out}"
        if out in self.above:
            path, what = self.above[out]
            return f"holds {what} {path}"
        for folder in out.parents:
            if folder in self.exact:
                return f"is inside {self.exact[folder]} {folder}"
        return None

    def url_refusal(self, out: str) -> str | None:
        """Why the object-store location ``out`` may not hold outputs (None: it may)."""
        for url, what in self.urls:
            if out == url:
                return f"is {what} {url}"
            if url.startswith(out + "/"):
                return f"holds {what} {url}"
            if out.startswith(url + "/"):
                return f"is inside {what} {url}"
        return None


def protected_paths(raw_input: object, config_file: str | None) -> Protected:
    """Every file and folder a run reads, each with what it is in words: the inputs (each
    volume of a batch, the files a glob matches), a manifest, and the config file.

    ``raw_input`` is the config's ``input.path`` as written (a path, a list, a glob or a
    ``.csv`` manifest)."""
    found: list[tuple[str, str]] = []
    for p in raw_input if isinstance(raw_input, list) else [raw_input]:
        if not isinstance(p, str) or not p:
            continue
        if storage.is_url(p) and any(ch in p for ch in _GLOB):
            found.extend((match, "the input") for match in url_matches(p))
        elif storage.is_url(p):
            found.append((p, "the input"))
        elif any(ch in p for ch in _GLOB):
            found.extend((match, "the input") for match in glob.glob(p))
        elif p.lower().endswith(".csv") and os.path.isfile(p):
            found.append((p, "the manifest"))
            found.extend((item.path, "the input") for item in batch_inputs(p) or [])
        else:
            found.append((p, "the input"))
    if config_file is not None:
        found.append((config_file, "the config file"))
    return Protected(
        (p if storage.is_url(p) else _resolved(storage.local_path(p), "input"), what)
        for p, what in found
    )


def check_output_location(
    path: str | os.PathLike | ObjectPath, protected: Protected, key: str = "output.path"
) -> Location:
    """The resolved output folder ``path``; a :class:`DataError` where writing (or
    overwriting) there could touch an input or cannot make a folder.

    Refused: an empty path, the working folder, the file system root, the home folder,
    a folder that is, holds or lies inside any of ``protected``, an existing file, a path
    below a file, and a path whose symlinks loop. In an object store: an unknown scheme,
    a bucket's root, a bucket that does not exist or may not be listed, and a place that
    is, holds or lies inside an input there.
    """
    if isinstance(path, ObjectPath) or storage.is_url(os.fspath(path)):
        return _checked_url(str(path).rstrip("/"), protected, key)
    text = storage.local_path(os.fspath(path))
    if not text.strip():
        raise DataError(f"{key}: expected a folder for the outputs, got an empty path")
    if "\0" in text:
        raise DataError(f"{key} {text!r}: a path cannot hold a NUL character")
    try:
        return _checked(text, protected, key)
    except OSError as exc:  # a name too long, a folder that cannot be read
        raise DataError(f"{key} {text}: {exc.strerror or exc}") from None


def _checked_url(url: str, protected: Protected, key: str) -> ObjectPath:
    storage.check_output_url(url, key)
    why = protected.url_refusal(url)
    if why is not None:
        raise DataError(f"{key} {url}: {why}")
    storage.check_bucket(url)
    return ObjectPath(url)


def _checked(text: str, protected: Protected, key: str) -> Path:
    out = _resolved(text, key)
    here = Path.cwd().resolve()
    if out == here:
        raise DataError(f"{key} {text}: is the working folder; name a folder for the outputs")
    if out == Path(out.anchor) or out == Path.home().resolve():
        raise DataError(f"{key} {text}: is {out}; name a folder for the outputs")
    why = protected.refusal(out)
    if why is not None:
        raise DataError(f"{key} {text}: {why}")
    if out.exists() and not out.is_dir():
        raise DataError(f"{key} {text}: is a file, expected a folder")
    for above in out.parents:
        if above.exists():
            if not above.is_dir():
                raise DataError(f"{key} {text}: {above} is a file, not a folder")
            break
    return out


def make_output_folder(path: Location, key: str = "output.path") -> None:
    """Create the output folder ``path`` (and its parents); one line where it cannot be.
    (A prefix in an object store needs no making.)"""
    if isinstance(path, ObjectPath):
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{key} {path}: cannot create the folder: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataError(f"{key} {path}: the folder is not writable")


def read_by(raw_config: dict, input_path: object, config_file: str | None) -> Protected:
    """:func:`protected_paths` of a config: its ``input.path`` as written in
    ``raw_config`` (a batch's every input) and ``input_path``, the one input run now."""
    given = raw_config.get("input") if isinstance(raw_config, dict) else None
    raw = given.get("path") if isinstance(given, dict) else None
    paths = [*(raw if isinstance(raw, list) else [raw]), input_path]
    return protected_paths(paths, config_file)
