"""Zarr v2/v3 arrays, OME-Zarr images (any level, any series of a bioformats2raw store) and
memory-mapped ``.npy`` files."""

from __future__ import annotations

import itertools
import os

import numpy as np

from pipeline.errors import DataError
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


def open_zarr(path: str, dataset: str | None, series: int = 0, level: int = 0) -> Source:
    """A Zarr array, or level ``level`` of an OME-Zarr image, metadata only.

    Raises
    ------
    DataError
        Not a readable store, a group without multiscales and no ``dataset``, or no such
        dataset, series or level.
    """
    import zarr

    try:
        node = zarr.open(path, mode="r")
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
    return Source("zarr", path, shape, axes, arr.dtype.str, chunks, sp, unit, dataset=dataset)


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

    where = src.path if src.dataset is None else os.path.join(src.path, src.dataset)

    def open_():
        arr = zarr.open_array(where, mode="r")
        return arr, chunk_codec(arr)

    arr, codec = cached(("zarr", where, stamp(src.path)), open_)

    def missing(chunk: str) -> None:
        fill = arr.fill_value.item() if hasattr(arr.fill_value, "item") else arr.fill_value
        raise DataError(
            f"{src.path}: chunk {os.path.relpath(chunk, where)} is missing, which zarr would "
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
            check(os.path.join(where, key))
    return np.asarray(arr[index])


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
