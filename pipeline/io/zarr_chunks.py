"""Whole chunks of a local Zarr v3 array, read and written in the calling thread.

A block task reads or writes whole chunks. ``zarr.Array`` does each such access through
its asynchronous machinery (an event-loop thread and a codec thread pool). Alone that
costs little, but in a run, where the task threads already keep every core busy, those
threads compete with them (see ``docs/design/measured-choices.md``). For the plain layout
segpipe reads and writes — a local store, a regular chunk grid, no sharding or array-to-
array codecs — this module runs the array's own codecs (their synchronous methods) on the
chunk files in the calling thread, so the bytes are exactly the ones zarr reads and
writes. Every other array, and any zarr version without those methods, goes through
``zarr.Array`` as usual."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.io import storage
from pipeline.io.files import write_pieces

PARTIAL_SUFFIX = ".part"  # a chunk being written, renamed into place when whole


@dataclass(frozen=True)
class ChunkCodec:
    """How the chunk files of one array are named, decoded and encoded."""

    root: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    fill_value: object
    metadata: object
    spec: object
    array_bytes: object
    bytes_bytes: tuple
    prototype: object

    def path(self, coords: tuple[int, ...]) -> str:
        """File of chunk ``coords``."""
        return os.path.join(self.root, self.metadata.encode_chunk_key(coords))

    def decode(self, data: bytes) -> np.ndarray:
        """A chunk's array from its stored bytes."""
        buf = self.prototype.buffer.from_bytes(data)
        for codec in reversed(self.bytes_bytes):
            buf = codec._decode_sync(buf, self.spec)
        return self.array_bytes._decode_sync(buf, self.spec).as_numpy_array()

    def encode(self, chunk: np.ndarray) -> bytes:
        """A full chunk's stored bytes."""
        nd = self.prototype.nd_buffer.from_numpy_array(chunk)
        buf = self.array_bytes._encode_sync(nd, self.spec)
        for codec in self.bytes_bytes:
            buf = codec._encode_sync(buf, self.spec)
        return buf.to_bytes()


def chunk_codec(arr) -> ChunkCodec | None:
    """The direct chunk access of ``arr`` (a ``zarr.Array``), or None where it does not apply."""
    try:
        from zarr.abc.codec import ArrayBytesCodec, BytesBytesCodec
        from zarr.codecs import BytesCodec
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.chunk_grids import RegularChunkGrid
        from zarr.storage import LocalStore

        meta = arr.metadata
        if getattr(meta, "zarr_format", None) != 3 or not isinstance(arr.store, LocalStore):
            return None
        if not isinstance(meta.chunk_grid, RegularChunkGrid):
            return None
        codecs = tuple(meta.codecs)
        if not codecs or not isinstance(codecs[0], BytesCodec):
            return None  # array-to-array codecs first, or sharding
        rest = codecs[1:]
        if not all(isinstance(c, BytesBytesCodec) for c in rest):
            return None
        if not all(hasattr(c, "_decode_sync") and hasattr(c, "_encode_sync") for c in codecs):
            return None
        assert isinstance(codecs[0], ArrayBytesCodec)
        prototype = default_buffer_prototype()
        spec = meta.get_chunk_spec((0,) * arr.ndim, arr.config, prototype)
        root = os.path.join(str(arr.store.root), arr.path) if arr.path else str(arr.store.root)
        fill = arr.fill_value
        return ChunkCodec(
            root,
            tuple(arr.shape),
            tuple(arr.chunks),
            np.dtype(arr.dtype),
            fill,
            meta,
            spec,
            codecs[0],
            rest,
            prototype,
        )
    except (AttributeError, ImportError, TypeError, AssertionError):
        return None


def open_for_writing(path: str, version: str | None = None):
    """``(zarr.Array, ChunkCodec or None)`` of the array at ``path``, opened once per process.

    A local array is keyed by its metadata file, so an array created again is opened
    again; one in an object store by ``version``, which names the arrays a run created.
    """
    import zarr

    from pipeline.io.readers.source import cached, stamp  # (readers import this module)

    remote = storage.is_url(path)

    def open_():
        arr = zarr.open_array(storage.zarr_store(path, False) if remote else path, mode="r+")
        return arr, chunk_codec(arr)

    if remote:
        return cached(("zarr-write", path, version), open_)
    meta = os.path.join(path, "zarr.json")
    return cached(("zarr-write", os.path.abspath(path), stamp(meta)), open_)


def write_region(
    path: str,
    sel: tuple[slice, ...],
    data: np.ndarray,
    keep_empty: bool,
    version: str | None = None,
) -> None:
    """``arr[sel] = data`` for the array at ``path``: one whole chunk written directly,
    anything else through zarr (with ``write_empty_chunks=keep_empty``); ``version``: see
    :func:`open_for_writing`."""
    arr, codec = open_for_writing(path, version)
    if codec is not None and write_chunk(codec, sel, data, keep_empty):
        return
    if codec is not None or not storage.is_url(path):
        arr.with_config({"write_empty_chunks": keep_empty})[sel] = data
        return
    try:
        arr.with_config({"write_empty_chunks": keep_empty})[sel] = data
    except Exception as exc:
        raise storage.failure(exc, path) from None


def _read_chunk(codec: ChunkCodec, coords: tuple[int, ...]) -> np.ndarray | None:
    try:
        with open(codec.path(coords), "rb") as fh:
            return codec.decode(fh.read())
    except FileNotFoundError:  # never written: the fill value
        return None


def read_index(
    codec: ChunkCodec, index: tuple, missing: Callable[[str], None] | None = None
) -> np.ndarray | None:
    """``arr[index]`` for an index of non-negative ints and unit-step slices (axes past
    the index whole); None for any other index. ``missing(path)`` is called for each
    chunk file that is not there (read as the fill value)."""
    region, keep = [], []
    for i, n in zip(index, codec.shape, strict=False):
        if isinstance(i, int) and 0 <= i < n:
            region.append(slice(i, i + 1))
            keep.append(0)
        elif isinstance(i, slice) and i.step in (None, 1):
            start, stop, _ = i.indices(n)
            if stop < start:
                return None
            region.append(slice(start, stop))
            keep.append(slice(None))
        else:
            return None
    region += [slice(0, n) for n in codec.shape[len(region) :]]
    return read_region(codec, tuple(region), missing)[tuple(keep)]


def read_region(
    codec: ChunkCodec, sel: tuple[slice, ...], missing: Callable[[str], None] | None = None
) -> np.ndarray:
    """The region ``sel`` (slices with step 1, inside the array) from the chunk files;
    ``missing``: see :func:`read_index`."""
    shape = tuple(s.stop - s.start for s in sel)
    spans = [range(s.start // c, -(-s.stop // c)) for s, c in zip(sel, codec.chunks, strict=True)]
    out = None
    for coords in itertools.product(*spans):
        lo = [i * c for i, c in zip(coords, codec.chunks, strict=True)]
        part = [
            (max(s.start, a), min(s.stop, a + c))
            for s, a, c in zip(sel, lo, codec.chunks, strict=True)
        ]
        src = tuple(slice(p - a, q - a) for (p, q), a in zip(part, lo, strict=True))
        chunk = _read_chunk(codec, coords)
        if chunk is None and missing is not None:
            missing(codec.path(coords))
        if out is None and chunk is not None and all(len(r) == 1 for r in spans):
            got = chunk[src]  # the region lies in this one chunk
            return got if got.flags.writeable else got.copy()
        if out is None:
            out = np.full(shape, codec.fill_value, codec.dtype)
        if chunk is not None:
            dst = tuple(
                slice(p - s.start, q - s.start) for (p, q), s in zip(part, sel, strict=True)
            )
            out[dst] = chunk[src]
    return out if out is not None else np.full(shape, codec.fill_value, codec.dtype)


def write_chunk(
    codec: ChunkCodec, sel: tuple[slice, ...], data: np.ndarray, keep_empty: bool
) -> bool:
    """Write ``data`` where ``sel`` is exactly one chunk (clipped at the array's end).

    A chunk of nothing but the fill value is removed instead when not ``keep_empty``
    (zarr's ``write_empty_chunks=False``). Returns False, writing nothing, when ``sel``
    is not one whole chunk.
    """
    idx = []
    for s, c, n in zip(sel, codec.chunks, codec.shape, strict=True):
        if s.start % c or s.stop != min(s.start + c, n):
            return False
        idx.append(s.start // c)
    path = codec.path(tuple(idx))
    data = np.asarray(data, codec.dtype)
    if not keep_empty and np.all(data == codec.fill_value):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        return True
    if data.shape != codec.chunks:  # the last chunk along an axis is stored full size
        full = np.full(codec.chunks, codec.fill_value, codec.dtype)
        full[tuple(slice(0, n) for n in data.shape)] = data
        data = full
    encoded = codec.encode(np.ascontiguousarray(data))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}-{threading.get_ident()}{PARTIAL_SUFFIX}"
    with open(tmp, "wb") as fh:
        write_pieces(fh, encoded)
    os.replace(tmp, path)
    return True
