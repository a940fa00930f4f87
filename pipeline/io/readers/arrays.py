"""Zarr v2/v3 arrays, OME-Zarr images (any level, any series of a bioformats2raw store) and
memory-mapped ``.npy`` files."""

from __future__ import annotations

import hashlib
import itertools
import json
import os

import numpy as np

from pipeline.errors import DataError
from pipeline.io import storage
from pipeline.io.readers.source import (
    Source,
    axis_letters,
    cached,
    register_reader,
    stamp,
    unit_name,
)
from pipeline.io.zarr_chunks import chunk_codec, read_index


def is_zarr(path: str) -> bool:
    """True for a folder holding a Zarr array or group."""
    return os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, f)) for f in ("zarr.json", ".zarray", ".zgroup")
    )


def is_zarr_url(url: str) -> bool:
    """True for the URL of a Zarr array or group in an object store (DataError: the store
    refused the request, or there is no such bucket)."""
    if any(storage.exists(storage.join(url, f)) for f in ("zarr.json", ".zgroup", ".zarray")):
        return True
    storage.check_bucket(url)
    return False


def _opened(path: str, where: str | None = None):
    """The store of a Zarr input to hand to zarr: a local path, or an object store's."""
    target = path if where is None else where
    return storage.zarr_store(target, read_only=True) if storage.is_url(path) else target


def open_zarr(path: str, dataset: str | None, series: int = 0, level: int = 0) -> Source:
    """A Zarr array, or level ``level`` of an OME-Zarr image, metadata only (``path``: a
    folder, or a URL in an object store).

    Raises
    ------
    DataError
        Not a readable store, a group without multiscales and no ``dataset``, or no such
        dataset, series or level.
    """
    import zarr

    try:
        node = zarr.open(_opened(path), mode="r")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: not a readable Zarr store ({exc})") from None
    spacing, unit, axes, prefix = None, None, None, ""
    if isinstance(node, zarr.Group):
        attrs = dict(node.attrs)
        if dataset is None and "bioformats2raw.layout" in attrs.get("ome", attrs):
            names = sorted((k for k in node.group_keys() if k.isdigit()), key=int)
            if not 0 <= series < len(names):
                raise DataError(f"{path}: input.series: expected 0..{len(names) - 1}, got {series}")
            prefix, node = names[series] + "/", node[names[series]]
            attrs = dict(node.attrs)
        elif series:
            raise DataError(f"{path}: input.series: the store holds one image, got {series}")
        ms = attrs.get("ome", attrs).get("multiscales")
        if dataset is None and ms:
            datasets = ms[0]["datasets"]
            if not 0 <= level < len(datasets):
                raise DataError(
                    f"{path}: input.level: expected 0..{len(datasets) - 1}, got {level}"
                )
            dataset = datasets[level]["path"]
            axes = "".join(_ome_axis(a) for a in ms[0].get("axes", []))
            spacing = _scale(ms[0].get("coordinateTransformations", []))
            level_scale = _scale(datasets[level].get("coordinateTransformations", []))
            if level_scale is not None:
                spacing = level_scale if spacing is None else np.multiply(spacing, level_scale)
            units = [a.get("unit") for a in ms[0].get("axes", []) if a.get("type") == "space"]
            unit = unit_name(units[-1]) if units else None
        if dataset is None:
            raise DataError(f"{path}: a Zarr group without multiscales: give input.dataset")
        try:
            arr = node[dataset]
        except KeyError:
            raise DataError(f"{path}: input.dataset {dataset!r} not found") from None
        dataset = prefix + dataset
    else:
        if series or level:
            raise DataError(f"{path}: input.series and input.level need an OME-Zarr image")
        arr = node
    shape = tuple(arr.shape)
    if axes is None:
        dims = getattr(arr.metadata, "dimension_names", None)
        axes = axis_letters(dims) if dims and all(dims) else None
        if axes is None:
            axes = {2: "yx", 3: "zyx"}.get(len(shape), "")
    if len(axes) != len(shape):
        raise DataError(f"{path}: cannot tell the axes of an array of shape {shape}")
    sp_axes = [i for i, c in enumerate(axes) if c in "zyx"]
    sp = tuple(float(spacing[i]) for i in sp_axes) if spacing is not None else (1.0,) * len(sp_axes)
    chunks = tuple(int(c) for c, a in zip(arr.chunks, axes, strict=True) if a in "zyx")
    # A remote array's metadata, by which each process's opened array is cached.
    meta = json.dumps(arr.metadata.to_dict(), sort_keys=True, default=str).encode()
    details = (hashlib.sha256(meta).hexdigest(),) if storage.is_url(path) else ()
    return Source(
        "zarr", path, shape, axes, arr.dtype.str, chunks, sp, unit, dataset=dataset, details=details
    )


def _scale(transforms: list[dict]):
    for t in transforms:
        if t.get("type") == "scale":
            return t["scale"]
    return None


def _ome_axis(a: dict) -> str:
    name = a.get("name", "").lower()
    return {"c": "C", "channel": "C", "t": "t", "time": "t"}.get(name, name[:1])


def _read_zarr(src: Source, index: tuple) -> np.ndarray:
    import zarr

    remote = storage.is_url(src.path)
    where = src.path if src.dataset is None else storage.join_path(src.path, src.dataset)

    def open_():
        arr = zarr.open_array(_opened(src.path, where), mode="r")
        return arr, chunk_codec(arr)

    version = src.details if remote else stamp(src.path)
    arr, codec = cached(("zarr", where, version), open_)

    def missing(chunk: str) -> None:
        fill = arr.fill_value.item() if hasattr(arr.fill_value, "item") else arr.fill_value
        key = chunk[len(where) + 1 :] if chunk.startswith(where) else chunk
        raise DataError(
            f"{src.path}: chunk {key} is missing, which zarr would "
            f"read as the fill value {fill!r}: the volume has a hole there (where "
            "the store leaves out chunks that are all fill value, set "
            "input.allow_missing_chunks: true)"
        )

    check = None if src.allow_missing_chunks else missing
    data = read_index(codec, index, check) if codec is not None else None
    if data is not None:
        return data
    if check is not None:
        for key in _absent_chunks(arr, index):
            check(storage.join_path(where, key))
    if not remote:
        return np.asarray(arr[index])
    try:
        return np.asarray(arr[index])
    except Exception as exc:
        raise storage.failure(exc, where) from None


def _absent_chunks(arr, index: tuple) -> list[str]:
    """The keys of the stored chunks (or shards) ``arr[index]`` covers that are absent."""
    from zarr.core.sync import sync

    grid = getattr(arr, "shards", None) or arr.chunks
    spans = []
    for i, n, c in zip(index, arr.shape, grid, strict=False):
        start, stop = (i, i + 1) if isinstance(i, int) else i.indices(n)[:2]
        spans.append(range(start // c, -(-stop // c)))
    rest = zip(arr.shape[len(spans) :], grid[len(spans) :], strict=True)
    spans += [range(-(-n // c)) for n, c in rest]
    store, prefix = arr.store_path.store, arr.store_path.path
    keys = [arr.metadata.encode_chunk_key(coords) for coords in itertools.product(*spans)]
    full = [f"{prefix}/{k}" if prefix else k for k in keys]
    return [k for k, f in zip(keys, full, strict=True) if not sync(store.exists(f))]


def open_npy(path: str) -> Source:
    """A 2D or 3D ``.npy`` file, memory-mapped."""
    try:
        arr = np.load(path, mmap_mode="r")
    except Exception as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    axes = {2: "yx", 3: "zyx"}.get(arr.ndim, "")
    if not axes:
        raise DataError(f"{path}: expected a 2D or 3D array, got shape {arr.shape}")
    return Source("npy", path, arr.shape, axes, arr.dtype.str, arr.shape, (1.0,) * arr.ndim, None)


def _read_npy(src: Source, index: tuple) -> np.ndarray:
    arr = cached(("npy", src.path, stamp(src.path)), lambda: np.load(src.path, mmap_mode="r"))
    return np.asarray(arr[index])


register_reader("zarr", _read_zarr)
register_reader("npy", _read_npy)
