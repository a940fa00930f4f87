"""Block-level checkpoints: what each block gave in each pass, kept so a rerun resumes.

Every pass over the blocks (a statistics pass, a labelling pass, the write pass) gets a
folder under the journal, named by its place in the run; each block's result is recorded
there the moment the block finishes (under a temporary name, then renamed; in an object
store, one object written whole). A rerun of the same config builds the same passes in
the same order; a block whose record exists is loaded instead of computed, so the tasks
it depended on are never run. The passes and blocks are the same because the resolved
config is: the run refuses to resume into an output made with another config, or by
another version of segpipe (whose records may hold other things).

A record (``b<block index>.rec``) holds data only, in the format of
:mod:`pipeline.engine.records`: reading one makes arrays, numbers, strings, containers
and a few named segpipe classes from their fields, never anything a file names, so a
record planted in an output folder runs no code. A file that is not a record is refused
with a :class:`~pipeline.errors.DataError` naming it.
"""

from __future__ import annotations

import io
import json
import os
import re
from importlib.metadata import PackageNotFoundError, version

from pipeline.engine import records
from pipeline.errors import DataError
from pipeline.io import storage
from pipeline.io.locations import Location, ObjectPath, location, remove_tree, write_atomic

FOLDER = ".journal"  # the journal's folder in the output folder
RUN_FILE = "run.json"
INNER = "computed"  # first item of the key a recorded block's own task moves to
SUFFIX = ".rec"  # of a block's record (earlier versions' ".pkl" records are not read)


def segpipe_version() -> str:
    """The installed segpipe's version ("unknown" when it is not installed)."""
    try:
        return version("segpipe")
    except PackageNotFoundError:
        return "unknown"


def save_record(path: str, value):
    """Record one block's result of a pass (atomically); return it unchanged."""
    if storage.is_url(path):
        buffer = io.BytesIO()
        records.dump(value, buffer)
        storage.write_bytes(path, buffer.getbuffer())
        return value
    tmp = f"{path}.{os.getpid()}.part"
    with open(tmp, "wb") as fh:
        records.dump(value, fh)
    os.replace(tmp, path)
    return value


def compute_and_record(path: str, func, *args):
    """Run a block's task and record its result: one task, not a task and its recorder."""
    return save_record(path, func(*args))


def load_record(path: str):
    """The result a block gave in an earlier, interrupted run (DataError: ``path`` holds
    no record)."""
    if storage.is_url(path):
        data = storage.read_bytes(path)
    else:
        with open(path, "rb") as fh:
            data = fh.read()
    try:
        return records.loads(data)
    except records.RecordError as exc:
        raise DataError(
            f"{path}: not a segpipe journal record ({exc}); delete it to compute its block "
            "again, or rerun with --overwrite"
        ) from None


class Journal:
    """The checkpoints of one run of one config, in ``root``."""

    def __init__(self, root: str | os.PathLike | ObjectPath, config_sha256: str) -> None:
        self.root = location(root)
        self.config_sha256 = config_sha256
        self._passes = 0
        self.loaded: dict[str, int] = {}  # pass folder -> blocks loaded, not computed

    @staticmethod
    def _run_meta(root: str | os.PathLike | ObjectPath) -> dict:
        try:
            meta = json.loads((location(root) / RUN_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    @staticmethod
    def recorded_config(root: str | os.PathLike) -> str | None:
        """The config hash of the run journaled in ``root`` (None: no journal)."""
        return Journal._run_meta(root).get("config_sha256")

    @staticmethod
    def recorded_version(root: str | os.PathLike) -> str | None:
        """The segpipe version that started the run journaled in ``root`` (None: no
        journal, or one from before journals recorded it)."""
        return Journal._run_meta(root).get("segpipe")

    @staticmethod
    def resumable(root: str | os.PathLike, config_sha256: str) -> bool:
        """Whether ``root`` journals a run of this config by this segpipe version."""
        meta = Journal._run_meta(root)
        return (
            meta.get("config_sha256") == config_sha256 and meta.get("segpipe") == segpipe_version()
        )

    def start(self) -> None:
        """Create the journal (keeping the records of an interrupted run of this config)."""
        self.root.mkdir(parents=True, exist_ok=True)
        run = self.root / RUN_FILE
        if not run.exists():
            meta = {"config_sha256": self.config_sha256, "segpipe": segpipe_version()}
            run.write_text(json.dumps(meta))

    def recorded(self, name: str, value):
        """The run's setting ``name``: as recorded by the run this one resumes, else
        ``value``, recorded now (settings that decide what is kept between passes)."""
        run = self.root / RUN_FILE
        meta = json.loads(run.read_text())
        if name not in meta:
            meta[name] = value
            write_atomic(run, json.dumps(meta).encode())
        return meta[name]

    def wrap(self, dsk: dict, blocks: dict[tuple, tuple], label: str) -> None:
        """Checkpoint a pass: ``blocks`` maps each block index to the key of its result.

        Recorded blocks become loads; the others save their result when they finish.
        """
        self._passes += 1
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")
        folder = self.root / f"{self._passes:03d}-{slug}"
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "pass.json"
        if not meta.exists():
            meta.write_text(json.dumps({"label": label, "blocks": len(blocks)}))
        loaded = 0
        done = _names(folder)
        for index, key in blocks.items():
            name = "b" + "_".join(map(str, index)) + SUFFIX
            path = str(folder / name)
            if name in done:
                dsk[key] = (load_record, path)
                loaded += 1
            elif isinstance(dsk[key], tuple) and dsk[key] and callable(dsk[key][0]):
                dsk[key] = (compute_and_record, path, *dsk[key])
            else:  # a key or a value standing for the result: record it once it is there
                inner = (INNER, *key)
                dsk[inner] = dsk[key]
                dsk[key] = (save_record, path, inner)
        self.loaded[folder.name] = loaded

    def remove(self) -> None:
        """Delete the journal (the run finished; its summary says so)."""
        remove_tree(self.root)


def _names(folder: Location) -> set[str]:
    """The names of the files in ``folder`` (one listing, not a look per block)."""
    if isinstance(folder, ObjectPath):
        return set(storage.children(str(folder))[0])
    try:
        return set(os.listdir(folder))
    except FileNotFoundError:
        return set()


def progress(root: str | os.PathLike | ObjectPath) -> list[dict]:
    """Per pass of a journaled run: its label, blocks recorded and blocks in all."""
    out = []
    root = location(root)
    if not root.is_dir():
        return out
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=str):
        try:
            meta = json.loads((folder / "pass.json").read_text())
        except (OSError, ValueError):
            continue
        done = sum(1 for name in _names(folder) if name.endswith(SUFFIX))
        out.append({"pass": folder.name, "label": meta["label"], "done": done,
                    "blocks": meta["blocks"]})  # fmt: skip
    return out
