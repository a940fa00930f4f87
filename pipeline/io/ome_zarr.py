"""OME-Zarr 0.5 (Zarr v3) label image writer.

Arrays are created once on the client; tasks write chunk-aligned regions of every
pyramid level; metadata is written last.
"""

from __future__ import annotations

import os

import numpy as np
import zarr

Box = tuple[tuple[int, int], ...]
NGFF_VERSION = "0.5"
# Labels are long runs of equal values: LZ4 after byte shuffling packs them small and
# encodes a 128³ uint32 block about twice as fast as Zstd.
LABEL_CODEC = zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


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
) -> None:
    """Create the group and one array per pyramid level (no data, no OME metadata yet)."""
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
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
            compressors=[LABEL_CODEC],
        )


def write_block(path: str, levels: int, box: Box, data: np.ndarray) -> int:
    """Write one block into every level (nearest-neighbour subsampling: labels stay labels).

    Returns the number of voxels written at level 0 (0 for a block without labels,
    which is left to the fill value).
    """
    if not data.any():
        return 0
    for k in range(levels):
        f = 2**k
        # Blocks without labels were skipped above; zarr's own per-chunk test for
        # emptiness costs as much as encoding the chunk.
        arr = zarr.open_array(os.path.join(path, str(k)), mode="r+").with_config(
            {"write_empty_chunks": True}
        )
        starts = [(-lo) % f for lo, _ in box]
        sub = data[tuple(slice(s, None, f) for s in starts)]
        region = tuple(
            slice((lo + s) // f, (lo + s) // f + n)
            for (lo, _), s, n in zip(box, starts, sub.shape, strict=True)
        )
        if sub.size:
            arr[region] = sub
    return int(data.size)


def finish_labels(
    path: str | os.PathLike,
    name: str,
    levels: int,
    axes: str,
    spacing: tuple[float, ...],
    unit: str | None,
    count: int,
    max_colors: int = 1024,
) -> None:
    """Write the multiscales and image-label metadata (last, once all data is in)."""
    rng = np.random.default_rng(0)
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
                {"type": "scale", "scale": [float(s) * 2**k for s in spacing]}
            ],
        }
        for k in range(levels)
    ]
    image_label: dict = {"version": NGFF_VERSION}
    if count <= max_colors:
        colours = rng.integers(40, 256, size=(count, 3))
        image_label["colors"] = [
            {"label-value": i + 1, "rgba": [*map(int, c), 255]} for i, c in enumerate(colours)
        ]
    root = zarr.open_group(str(path), mode="r+")
    root.attrs["ome"] = {
        "version": NGFF_VERSION,
        "multiscales": [{"name": name, "axes": ome_axes, "datasets": datasets}],
        "image-label": image_label,
    }
