"""OME-Zarr 0.5 (Zarr v3) writers: label images, and images with their labels.

Arrays are created once on the client; tasks write chunk-aligned regions of every
pyramid level; metadata is written last. An image written with its labels follows the
NGFF layout: ``image.ome.zarr/{0,1,...}`` and ``image.ome.zarr/labels/<name>/{0,1,...}``.
"""

from __future__ import annotations

import os

import numpy as np
import zarr

from pipeline.io import storage
from pipeline.io.zarr_chunks import PARTIAL_SUFFIX, write_region

Box = tuple[tuple[int, int], ...]
NGFF_VERSION = "0.5"
# Labels are long runs of equal values: LZ4 after byte shuffling packs them small and
# encodes a 128³ uint32 block about twice as fast as Zstd.
LABEL_CODEC = zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


def zarr_target(path, read_only: bool = False):
    """What zarr opens for ``path``: the local path, or an object store's zarr store."""
    text = str(path)
    return storage.zarr_store(text, read_only) if storage.is_url(text) else text


def pyramid_levels(shape: tuple[int, ...], block: tuple[int, ...], max_levels: int = 5) -> int:
    """Number of levels: halve while every block stays aligned and the image >= 32 voxels."""
    levels = 1
    while levels < max_levels:
        f = 2**levels
        if min(shape) // f < 32:
            break
        if any(b % f for b, n in zip(block, shape, strict=True) if b < n):
            break
        levels += 1
    return levels


def create_labels(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    block: tuple[int, ...],
    dtype: np.dtype,
    levels: int,
    axes: str,
    compressors=(LABEL_CODEC,),
) -> None:
    """Create the group and one array per pyramid level (no data, no OME metadata yet).

    Arrays an interrupted run of the same config created are kept, with what was written;
    the chunks it was writing when it stopped (temporary files) are removed.
    """
    if _has_levels(path, levels):
        remove_partial_chunks(path)
        return
    root = zarr.open_group(zarr_target(path), mode="w", zarr_format=3)
    for k in range(levels):
        f = 2**k
        lshape = tuple(-(-n // f) for n in shape)
        lchunks = tuple(
            max(1, min(b // f if b < n else -(-n // f), ln))
            for b, n, ln in zip(block, shape, lshape, strict=True)
        )
        root.create_array(
            str(k),
            shape=lshape,
            chunks=lchunks,
            dtype=dtype,
            fill_value=0,
            dimension_names=list(axes),
            compressors=list(compressors),
        )


def remove_partial_chunks(path) -> None:
    """Delete the temporary files of chunk writes an interrupted run left in ``path``
    (an object store writes each chunk whole: none there)."""
    if storage.is_url(str(path)):
        return
    for folder, _, files in os.walk(str(path)):
        for name in files:
            if name.endswith(PARTIAL_SUFFIX):
                os.remove(os.path.join(folder, name))


def _has_levels(path, levels: int) -> bool:
    return all(
        storage.file_exists(storage.join_path(str(path), str(k), "zarr.json"))
        for k in range(levels)
    )


def create_image(path, shape, block, dtype, levels, axes) -> None:
    """Create an image's group and pyramid arrays (Zstd), and its empty ``labels`` group.

    As :func:`create_labels`, an interrupted run's arrays are kept, its half-written
    chunks removed.
    """
    if _has_levels(path, levels):
        remove_partial_chunks(path)
        return
    codec = zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
    create_labels(path, shape, block, dtype, levels, axes, compressors=(codec,))
    zarr.open_group(zarr_target(storage.join_path(str(path), "labels")), mode="w", zarr_format=3)


def downsample_mean(data: np.ndarray, f: int) -> np.ndarray:
    """Mean over cubes of ``f`` voxels per axis (cut-off cubes at the end: their own mean).

    Integer images are rounded to the nearest value of their dtype.
    """
    if f == 1:
        return data
    out_shape = tuple(-(-n // f) for n in data.shape)
    pad = [(0, o * f - n) for o, n in zip(out_shape, data.shape, strict=True)]
    inter = [d for o in out_shape for d in (o, f)]
    axes = tuple(range(1, 2 * data.ndim, 2))
    total = np.pad(data.astype(np.float64), pad).reshape(inter).sum(axis=axes)
    count = np.pad(np.ones(data.shape, np.float32), pad).reshape(inter).sum(axis=axes)
    mean = total / count
    if data.dtype.kind in "uib":
        return np.rint(mean).astype(data.dtype)
    return mean.astype(data.dtype)


def write_image_block(
    path: str, levels: int, box: Box, data: np.ndarray, version: str | None = None
) -> None:
    """Write one block of an image into every level (mean downsampling).

    Blocks start at multiples of ``2**(levels-1)`` (see :func:`pyramid_levels`);
    ``version`` names the arrays a run created (see
    :func:`pipeline.io.zarr_chunks.open_for_writing`).
    """
    for k in range(levels):
        f = 2**k
        sub = downsample_mean(data, f)
        region = tuple(
            slice(lo // f, lo // f + n) for (lo, _), n in zip(box, sub.shape, strict=True)
        )
        write_region(
            storage.join_path(str(path), str(k)), region, sub, keep_empty=False, version=version
        )


def write_block(
    path: str, levels: int, box: Box, data: np.ndarray, version: str | None = None
) -> int:
    """Write one block into every level (nearest-neighbour subsampling: labels stay labels).

    Returns the number of voxels written at level 0 (0 for a block without labels,
    which is left to the fill value); ``version``: as :func:`write_image_block`.
    """
    if not data.any():
        return 0
    for k in range(levels):
        f = 2**k
        starts = [(-lo) % f for lo, _ in box]
        sub = data[tuple(slice(s, None, f) for s in starts)]
        region = tuple(
            slice((lo + s) // f, (lo + s) // f + n)
            for (lo, _), s, n in zip(box, starts, sub.shape, strict=True)
        )
        if sub.size:
            # Blocks without labels were skipped above; a test of each chunk for
            # emptiness would cost as much as encoding it.
            write_region(
                storage.join_path(str(path), str(k)), region, sub, keep_empty=True, version=version
            )
    return int(data.size)


def _multiscales(name, levels, axes, spacing, unit, centred=False) -> dict:
    """Multiscales metadata; ``centred``: level k's voxels are means of 2**k voxels, so
    its first voxel sits (2**k - 1) / 2 voxels of level 0 in (not so for subsampling)."""
    ome_axes = []
    for a in axes:
        entry = {"name": a, "type": "space"}
        if unit:
            entry["unit"] = unit
        ome_axes.append(entry)
    datasets = [
        {
            "path": str(k),
            "coordinateTransformations": [
                {"type": "scale", "scale": [float(s) * 2**k for s in spacing]},
                *(
                    [
                        {
                            "type": "translation",
                            "translation": [float(s) * (2**k - 1) / 2 for s in spacing],
                        }
                    ]
                    if centred and k
                    else []
                ),
            ],
        }
        for k in range(levels)
    ]
    return {"name": name, "axes": ome_axes, "datasets": datasets}


def label_colours(ids: np.ndarray) -> np.ndarray:
    """A fixed, distinct-looking RGB colour (40..255 per channel) for each label id."""
    h = (np.asarray(ids, np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
    rgb = np.stack([(h >> np.uint64(s)) & np.uint64(0xFF) for s in (0, 8, 16)], axis=-1)
    return (40 + rgb.astype(np.int64) * 216 // 256).astype(np.uint8)


def finish_labels(
    path: str | os.PathLike,
    name: str,
    levels: int,
    axes: str,
    spacing: tuple[float, ...],
    unit: str | None,
    ids: np.ndarray,
    properties: dict[str, np.ndarray] | None = None,
    source_image: str | None = None,
    max_entries: int = 10_000,
) -> None:
    """Write the multiscales and image-label metadata (last, once all data is in).

    ``ids`` are the label values present; each gets a colour, and the values of
    ``properties`` (one array per property, aligned with ``ids``), when there are at
    most ``max_entries`` labels (the metadata is one JSON document).
    """
    ids = np.asarray(ids)
    image_label: dict = {"version": NGFF_VERSION}
    if len(ids) <= max_entries:
        image_label["colors"] = [
            {"label-value": int(i), "rgba": [*map(int, c), 255]}
            for i, c in zip(ids, label_colours(ids), strict=True)
        ]
        if properties:
            image_label["properties"] = [
                {"label-value": int(i), **{k: v[j].item() for k, v in properties.items()}}
                for j, i in enumerate(ids)
            ]
    if source_image is not None:
        image_label["source"] = {"image": source_image}
    root = zarr.open_group(zarr_target(path), mode="r+")
    root.attrs["ome"] = {
        "version": NGFF_VERSION,
        "multiscales": [_multiscales(name, levels, axes, spacing, unit)],
        "image-label": image_label,
    }


def finish_image(path, name, levels, axes, spacing, unit, labels: list[str]) -> None:
    """Write an image's multiscales metadata and list its label images."""
    root = zarr.open_group(zarr_target(path), mode="r+")
    root.attrs["ome"] = {
        "version": NGFF_VERSION,
        "multiscales": [_multiscales(name, levels, axes, spacing, unit, centred=True)],
    }
    group = zarr.open_group(zarr_target(storage.join_path(str(path), "labels")), mode="r+")
    group.attrs["ome"] = {"version": NGFF_VERSION, "labels": labels}


def open_level(path, level: int = 0):
    """Pyramid level ``level`` of an image or label image, as a ``zarr.Array``."""
    return zarr.open_array(
        zarr_target(storage.join_path(str(path), str(level)), read_only=True), mode="r"
    )


def read_region(path, box: Box, level: int = 0) -> np.ndarray:
    """The voxels of ``box`` from pyramid level ``level`` of an image or label image."""
    return open_level(path, level)[tuple(slice(lo, hi) for lo, hi in box)]
