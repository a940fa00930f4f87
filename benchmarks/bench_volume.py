"""The benchmark volume: noisy uint16 spheres in a Zarr v3 array, built block by block.

Sphere centres, radii and amplitudes are drawn once for the whole volume from a seeded
generator; each 128³ block then draws the spheres that intersect it and its own noise
(seeded by the block index), so the volume is deterministic, never held whole in memory,
and spheres continue across block borders.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

SIZES = {
    "full": (512, 1024, 1024),  # 1 GiB of uint16
    "1g": (512, 1024, 1024),
    "quarter": (512, 512, 512),  # 0.25 GiB
    "small": (128, 256, 256),  # CI smoke test
}
CHUNK = 128
SEED = 20260
FILL = 0.05
RADIUS = (2.0, 6.0)
AMPLITUDE = (600.0, 1400.0)
BACKGROUND = 1000.0
NOISE = 150.0
VERSION = 1  # bump when the recipe changes, so old volumes are rebuilt


def params(shape: tuple[int, ...]) -> dict:
    """The recipe of a volume, stored in its attributes to tell whether it is current."""
    return {
        "version": VERSION,
        "shape": list(shape),
        "chunk": CHUNK,
        "seed": SEED,
        "fill": FILL,
        "radius": list(RADIUS),
        "amplitude": list(AMPLITUDE),
        "background": BACKGROUND,
        "noise_sigma": NOISE,
    }


def sphere_table(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (n, 3), radii (n,) and amplitudes (n,) of all spheres of the volume."""
    rng = np.random.default_rng(SEED)
    lo, hi = RADIUS
    mean_r3 = (hi**4 - lo**4) / (4 * (hi - lo))  # E[r³] for r uniform in [lo, hi]
    mean_volume = 4.0 / 3.0 * math.pi * mean_r3
    # Overlapping spheres placed at random cover 1 - exp(-n v / V) of the volume.
    n = round(-math.log(1.0 - FILL) * math.prod(shape) / mean_volume)
    centres = rng.uniform(0.0, 1.0, size=(n, 3)) * np.asarray(shape, dtype=np.float64)
    radii = rng.uniform(lo, hi, size=n)
    amps = rng.uniform(*AMPLITUDE, size=n)
    return centres, radii, amps


def make_block(
    index: tuple[int, ...],
    shape: tuple[int, ...],
    table: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[tuple[slice, ...], np.ndarray, int]:
    """Block ``index`` of the volume: its slices, its data and its sphere voxel count."""
    centres, radii, amps = table
    lo = np.array([i * CHUNK for i in index])
    hi = np.minimum(lo + CHUNK, shape)
    bshape = tuple(int(v) for v in hi - lo)
    signal = np.zeros(bshape, dtype=np.float32)
    hit = np.all((centres + radii[:, None] >= lo) & (centres - radii[:, None] < hi), axis=1)
    for c, r, a in zip(centres[hit], radii[hit], amps[hit], strict=True):
        s0 = np.maximum(np.ceil(c - r).astype(int), lo)
        s1 = np.minimum(np.floor(c + r).astype(int) + 1, hi)
        if np.any(s1 <= s0):
            continue
        z, y, x = (np.arange(s0[k], s1[k], dtype=np.float64) - c[k] for k in range(3))
        inside = z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2 <= r * r
        sub = tuple(slice(int(s0[k] - lo[k]), int(s1[k] - lo[k])) for k in range(3))
        np.maximum(signal[sub], np.where(inside, np.float32(a), np.float32(0)), out=signal[sub])
    fg = int(np.count_nonzero(signal))
    rng = np.random.default_rng([SEED, 1, *index])
    data = rng.standard_normal(bshape, dtype=np.float32)
    data *= NOISE
    data += signal
    data += BACKGROUND
    np.rint(data, out=data)
    np.clip(data, 0, np.iinfo(np.uint16).max, out=data)
    slices = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    return slices, data.astype(np.uint16), fg


def is_current(path: Path, shape: tuple[int, ...]) -> bool:
    """True when ``path`` holds a complete volume built with the current recipe."""
    import zarr

    if not (path / "zarr.json").exists():
        return False
    try:
        arr = zarr.open_array(path, mode="r")
    except Exception:
        return False
    attrs = dict(arr.attrs)
    return attrs.get("bench_volume") == params(shape) and attrs.get("complete") is True


def build(path: Path, shape: tuple[int, ...], workers: int = 2, log=print) -> dict:
    """Write the volume to ``path`` (replacing it) and return its statistics."""
    import zarr

    t0 = time.perf_counter()
    arr = zarr.create_array(
        str(path),
        shape=shape,
        chunks=(CHUNK,) * 3,
        dtype="uint16",
        fill_value=0,
        dimension_names=("z", "y", "x"),
        attributes={"bench_volume": params(shape), "complete": False},
        overwrite=True,
    )
    table = sphere_table(shape)
    grid = [range(math.ceil(n / CHUNK)) for n in shape]
    indices = [(a, b, c) for a in grid[0] for b in grid[1] for c in grid[2]]

    def one(index):
        slices, data, fg = make_block(index, shape, table)
        arr[slices] = data
        return fg

    with ThreadPoolExecutor(workers) as pool:
        fg = sum(pool.map(one, indices))
    stats = {
        "spheres": len(table[1]),
        "fill": fg / math.prod(shape),
        "blocks": len(indices),
        "seconds": time.perf_counter() - t0,
    }
    arr.attrs.update({"complete": True, "stats": stats})
    log(
        f"built {path.name}: {shape} uint16, {stats['spheres']} spheres, "
        f"fill {100 * stats['fill']:.2f} %, {stats['blocks']} blocks in {stats['seconds']:.1f} s"
    )
    return stats


def ensure(path: Path, shape: tuple[int, ...], rebuild: bool = False, log=print) -> None:
    """Build the volume at ``path`` unless a current one is there."""
    if not rebuild and is_current(path, shape):
        log(f"using existing {path}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    build(path, shape, log=log)


def ensure_empty(path: Path, shape: tuple[int, ...], chunk: int) -> None:
    """An uint16 Zarr array of ``shape`` with no chunk written (reads give the fill value 0)."""
    import zarr

    if (path / "zarr.json").exists():
        arr = zarr.open_array(path, mode="r")
        if arr.shape == tuple(shape) and arr.chunks == (chunk,) * len(shape):
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    zarr.create_array(
        str(path),
        shape=shape,
        chunks=(chunk,) * len(shape),
        dtype="uint16",
        fill_value=0,
        dimension_names=("z", "y", "x"),
        overwrite=True,
    )
