"""Block results kept on disk between passes, so no pass recomputes an earlier one.

A pass that computes an intermediate another pass needs again (the image a global
threshold is computed from, the local labels of a labelling) writes each block to one
file; later passes read it back. The files live under a scratch folder (by
default inside the output folder, so remote workers see it) and are removed when the run
ends. Reading a block back from the page cache costs a few milliseconds, less than
computing it again.

That holds while writing them does not wait for the disk. Past the share of memory that
files written and not yet on disk may take (``vm.dirty_ratio`` of the available memory),
the kernel makes writers wait for the disk, and the pass runs at the disk's speed (a
float64 Gaussian is four times its uint16 source). So each image
kept is first reserved against a budget (that share by default); one that does not fit is
computed again by each pass that needs it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import imagecodecs
import numpy as np

from pipeline.io import storage
from pipeline.io.files import write_pieces
from pipeline.io.locations import ObjectPath, location, remove_tree


class Scratch:
    """A folder of per-block files, one subfolder per stored node (locally, or a prefix
    in an object store, which workers that share no file system all see)."""

    def __init__(
        self, root: str | os.PathLike | ObjectPath | None = None, budget: int | None = None
    ) -> None:
        self._given = location(root) if root is not None else None
        self._root: Path | ObjectPath | None = None
        self._slots: dict[str, str] = {}
        self._dropping: list[threading.Thread] = []
        self._made = 0
        # Bytes of kept images this folder may hold (see the module notes).
        self.budget = budget if budget is not None else page_cache_budget()
        self._reserved: dict[str, int] = {}

    @property
    def root(self) -> Path | ObjectPath:
        """The folder, created on first use (a temporary folder when none was given)."""
        if self._root is None:
            if self._given is None:
                self._root = Path(tempfile.mkdtemp(prefix="segpipe-scratch-"))
            else:
                self._given.mkdir(parents=True, exist_ok=True)
                self._root = self._given
        return self._root

    def reserve(self, what: str, nbytes: int) -> bool:
        """Whether ``what`` (``nbytes`` in all) may be kept; if so, count it as kept."""
        if what in self._reserved:
            return True
        if sum(self._reserved.values()) + nbytes > self.budget:
            return False
        self._reserved[what] = nbytes
        return True

    def reserved(self, what: str) -> int:
        """Bytes reserved for ``what`` (0: none)."""
        return self._reserved.get(what, 0)

    def room(self) -> int:
        """Bytes of the budget not reserved."""
        return self.budget - sum(self._reserved.values())

    def path(self, what: str, index: tuple[int, ...]) -> str:
        """File of block ``index`` of ``what`` (a node or a node's local labels)."""
        folder = self._slots.get(what)
        if folder is None:
            self._made += 1  # never reuse a name: a dropped folder may still be deleting
            folder = str(self.root / f"n{self._made}")
            if not isinstance(self.root, ObjectPath):
                os.makedirs(folder, exist_ok=True)
            self._slots[what] = folder
        return storage.join_path(folder, "b" + "_".join(map(str, index)) + ".blk")

    def drop_later(self, what: str) -> None:
        """Delete the blocks of ``what`` in the background (freeing page-cache pages of
        large files costs seconds, which the next pass hides)."""
        self._reserved.pop(what, None)
        folder = self._slots.pop(what, None)
        if folder is None:
            return
        if isinstance(self.root, ObjectPath):
            worker = threading.Thread(target=storage.remove_tree, args=(folder,), daemon=True)
            worker.start()
            self._dropping.append(worker)
            return
        gone = tempfile.mkdtemp(prefix=os.path.basename(folder) + ".drop-", dir=self.root)
        try:
            os.replace(folder, os.path.join(gone, "x"))  # a fresh name, whatever lies around
        except FileNotFoundError:  # an interrupted run's deletion got there first
            pass
        worker = threading.Thread(target=shutil.rmtree, args=(gone, True), daemon=True)
        worker.start()
        self._dropping.append(worker)

    def wait(self) -> None:
        """Wait for the background deletions to finish."""
        for worker in self._dropping:
            worker.join()
        self._dropping.clear()

    def remove(self) -> None:
        """Delete every stored block (after the background deletions)."""
        self.wait()
        if self._root is not None:
            remove_tree(self._root)
            self._root = None
        self._slots.clear()
        self._reserved.clear()


def page_cache_budget() -> int:
    """Bytes of written files that may wait in memory before writers wait for the disk.

    Linux: ``vm.dirty_bytes``, or ``vm.dirty_ratio`` percent of the available memory;
    elsewhere a fifth of the physical memory.
    """
    try:
        fixed = int(Path("/proc/sys/vm/dirty_bytes").read_text())
        if fixed > 0:
            return fixed
        ratio = int(Path("/proc/sys/vm/dirty_ratio").read_text())
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 * ratio // 100
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 5
    except (OSError, ValueError, AttributeError):
        return 1 << 30


# One file: magic, header length, a JSON header (dtype, shape and offset of each array),
# then the arrays' bytes. Not .npy/.npz: numpy parses their headers with ast.literal_eval,
# which CPython 3.11 up to 3.11.7 can fail with a SystemError when threads parse at once
# (python/cpython#106905), and every pass reads blocks from many threads.
_MAGIC = b"SEGPIPE\x01"


def _write(path: str, arrays: dict[str, np.ndarray], packed: dict | None = None) -> None:
    arrays = {k: np.ascontiguousarray(a) for k, a in arrays.items()}
    meta, offset = {}, 0
    for name, a in arrays.items():
        meta[name] = [a.dtype.str, list(a.shape), offset]
        offset += a.nbytes
    header = json.dumps({"arrays": meta, "packed": packed}).encode()
    if storage.is_url(path):  # one object, put whole
        pieces = [_MAGIC, len(header).to_bytes(8, "little"), header]
        pieces += [a.tobytes() for a in arrays.values()]
        storage.write_bytes(path, b"".join(pieces))
        return
    tmp = path + ".part"
    with open(tmp, "wb") as fh:
        fh.write(_MAGIC + len(header).to_bytes(8, "little") + header)
        for a in arrays.values():
            write_pieces(fh, a.data if a.ndim else a.tobytes())
    os.replace(tmp, path)


def _read(path: str, name: str | None = None) -> tuple[np.ndarray, dict | None]:
    if storage.is_url(path):
        return _parse(storage.read_bytes(path), path, name)
    with open(path, "rb") as fh:
        start = fh.read(len(_MAGIC) + 8)
        if start[: len(_MAGIC)] != _MAGIC:
            raise ValueError(f"{path}: not a segpipe scratch file")
        size = int.from_bytes(start[len(_MAGIC) :], "little")
        head = json.loads(fh.read(size))
        arrays = head["arrays"]
        dtype, shape, offset = arrays[name] if name is not None else next(iter(arrays.values()))
        fh.seek(len(_MAGIC) + 8 + size + offset)
        data = np.fromfile(fh, dtype=np.dtype(dtype), count=int(np.prod(shape)))
    return data.reshape(shape), head["packed"]


def _parse(data: bytes, path: str, name: str | None) -> tuple[np.ndarray, dict | None]:
    """:func:`_read` of a file's bytes."""
    if data[: len(_MAGIC)] != _MAGIC:
        raise ValueError(f"{path}: not a segpipe scratch file")
    size = int.from_bytes(data[len(_MAGIC) : len(_MAGIC) + 8], "little")
    start = len(_MAGIC) + 8
    head = json.loads(data[start : start + size])
    arrays = head["arrays"]
    dtype, shape, offset = arrays[name] if name is not None else next(iter(arrays.values()))
    count = int(np.prod(shape))
    out = np.frombuffer(data, np.dtype(dtype), count=count, offset=start + size + offset)
    return out.reshape(shape).copy(), head["packed"]


def save(path: str, array: np.ndarray, compress: bool = False) -> None:
    """Write one block; a mask is stored as bits (one eighth of a byte per voxel).

    With ``compress``, the bytes are compressed with zstd (level 1): local labels,
    mostly background, take about 1/80 of their size for about the time writing them
    raw would take, and they stay in the page cache where raw ones would go to disk
    (see the module notes). The file is written under a temporary name and renamed,
    so a half-written block is never read.
    """
    array = np.asarray(array)
    if array.dtype == np.bool_:
        _write(path, {"data": np.packbits(array, axis=None)}, {"bits": list(array.shape)})
    elif compress:
        encoded = imagecodecs.zstd_encode(np.ascontiguousarray(array), level=1)
        zstd = {"zstd": [array.dtype.str, list(array.shape)]}
        _write(path, {"data": np.frombuffer(encoded, dtype=np.uint8)}, zstd)
    else:
        _write(path, {"data": array})


def _part_name(part) -> str:
    return "_".join(f"{lo}-{hi}" for lo, hi in part)


def save_parts(path: str, parts: dict) -> None:
    """Write several boxes of one block to one file."""
    _write(path, {_part_name(p): a for p, a in parts.items()})


def load_part(path: str, part) -> np.ndarray:
    """One box written by :func:`save_parts`."""
    return _read(path, _part_name(part))[0]


# Files to delete once read a known number of times in this process (halo files).
_readers: dict[str, int] = {}
_readers_lock = threading.Lock()


def expect_readers(path: str, readers: int) -> None:
    """Delete ``path`` after ``readers`` calls of :func:`done_reading` in this process."""
    with _readers_lock:
        _readers[path] = readers


def done_reading(path: str) -> None:
    """One reader of ``path`` is done; the last one deletes it (others: nothing happens)."""
    with _readers_lock:
        left = _readers.get(path)
        if left is None:
            return
        if left > 1:
            _readers[path] = left - 1
            return
        del _readers[path]
    if storage.is_url(path):
        storage.remove(path)
        return
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def load(path: str) -> np.ndarray:
    """Read one block written by :func:`save`."""
    data, packed = _read(path)
    if packed is None:
        return data
    if "bits" in packed:
        shape = tuple(packed["bits"])
        return np.unpackbits(data, count=int(np.prod(shape))).view(np.bool_).reshape(shape)
    dtype, shape = packed["zstd"]
    out = np.empty(shape, dtype=np.dtype(dtype))
    imagecodecs.zstd_decode(data, out=out.reshape(-1).view(np.uint8))
    return out
