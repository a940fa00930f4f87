"""Per-block kernel times of the core pipeline, against segpipe's CPU time per block.

    .venv/bin/python benchmarks/bench_kernels.py [--size quarter]

Times each kernel segpipe runs once per block position on a few blocks of the benchmark
volume (one thread, best of three), sums them per block, and compares with the CPU time
segpipe spends per block in a full run (process CPU over all passes / blocks). The gap is
what the engine adds: halo slabs (and each source block kept with them), scratch writes and
reads, Python, the scheduler. scipy's Gaussian, numpy's histogram and table lookup and
zarr.Array's chunk read and write, which segpipe replaces, are timed for comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_methods  # noqa: E402
import bench_volume  # noqa: E402


def best(f, n: int = 3) -> float:
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return min(t)


def _block_times(z, source, lo: tuple[int, ...], threshold: float, labels_path: str) -> dict:
    import zarr
    from scipy import ndimage as ndi

    from pipeline.io import ome_zarr
    from pipeline.ops import histogram as hist
    from pipeline.ops import labelling
    from pipeline.ops.compiled import apply_table
    from pipeline.ops.filters import GaussianParams, gaussian

    c, h = bench_volume.CHUNK, 4
    core = tuple((o, o + c) for o in lo)
    grown = z[tuple(slice(o - h, o + c + h) for o in lo)]
    params = GaussianParams(sigma=1.0, mode="nearest", truncate=4.0)
    trim = ((h, h),) * 3

    def smooth():
        return gaussian(grown, params, trim)

    def scipy_smooth():
        return ndi.gaussian_filter(grown, 1, mode="nearest", truncate=4, output=np.float64)

    smooth()  # first call outside the timing
    times = {"read 128³": best(lambda: source.read(core))}
    times["gaussian 128³ of 136³, f64"] = best(smooth)
    # Library kernels segpipe does not run, timed for comparison (not in the sum).
    reference = {"scipy gaussian_filter 136³, f64": best(scipy_smooth)}
    g = smooth()
    lo_v, hi_v = g.min(), g.max()
    times["min/max"] = best(lambda: (g.min(), g.max()))
    times["histogram"] = best(lambda: hist.float_histogram(g, lo=lo_v, hi=hi_v, nbins=256))
    reference["numpy.histogram"] = best(lambda: np.histogram(g, 256, (lo_v, hi_v)))
    times["threshold"] = best(lambda: g > threshold)
    mask = g > threshold
    times["label (cc3d)"] = best(lambda: labelling.local_label(mask, 1))
    lab = labelling.local_label(mask, 1)
    times["summarise"] = best(lambda: labelling.summarise_block(lab, None, lo, z.shape))
    lut = np.arange(int(lab.max()) + 1, dtype=np.uint32)
    times["relabel"] = best(lambda: apply_table(lab, lut))
    reference["numpy table[labels]"] = best(lambda: lut[lab])
    final = apply_table(lab, lut)
    times["write 3 levels"] = best(lambda: ome_zarr.write_block(labels_path, 3, core, final))
    slices = tuple(slice(a, b) for a, b in core)
    reference["zarr.Array read 128³"] = best(lambda: z[slices])
    level0 = zarr.open_array(os.path.join(labels_path, "0"), mode="r+")
    level0 = level0.with_config({"write_empty_chunks": True})
    reference["zarr.Array write 128³ labels"] = best(lambda: level0.__setitem__(slices, final))
    return times, reference


def kernels(volume: Path, threshold: float) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per 128³ block of each kernel, and of the library kernels it replaces,
    averaged over three interior blocks."""
    import zarr

    from pipeline.io import ome_zarr
    from pipeline.io.readers import open_source

    z = zarr.open_array(str(volume), mode="r")
    source = open_source(str(volume))
    c = bench_volume.CHUNK
    labels = Path(tempfile.mkdtemp(prefix="segpipe-kernels-")) / "l.zarr"
    ome_zarr.create_labels(labels, z.shape, (c,) * 3, np.uint32, 3, "zyx")
    out: dict[str, list[float]] = {}
    ref: dict[str, list[float]] = {}
    for b in range(3):
        corner = (c * (1 + b // 2), c * (1 + b % 2), c)  # blocks with neighbours all round
        times, reference = _block_times(z, source, corner, threshold, str(labels))
        for k, v in times.items():
            out.setdefault(k, []).append(v)
        for k, v in reference.items():
            ref.setdefault(k, []).append(v)
    return _means(out), _means(ref)


def _means(d: dict[str, list[float]]) -> dict[str, float]:
    return {k: float(np.mean(v)) for k, v in d.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(bench_volume.SIZES), default="quarter")
    p.add_argument("--work", type=Path, default=HERE / "work")
    args = p.parse_args(argv)
    shape = bench_volume.SIZES[args.size]
    volume = args.work / f"volume_{'x'.join(map(str, shape))}.zarr"
    bench_volume.ensure(volume, shape)

    import pipeline

    cfg = bench_methods.segpipe_config(str(volume), str(args.work / "out_kernels"))
    c0, t0 = time.process_time(), time.perf_counter()
    res = pipeline.run(cfg, overwrite=True)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    blocks = res.summary["blocks"]
    k, reference = kernels(volume, res.summary["thresholds"]["mask"])
    total = sum(k.values())
    print(f"### Kernel time per 128³ block ({'×'.join(map(str, shape))}, {blocks} blocks)\n")
    print("| kernel | ms per block |")
    print("|---|---:|")
    for name, v in k.items():
        print(f"| {name} | {v * 1000:.1f} |")
    print(f"| **sum of kernels** | **{total * 1000:.1f}** |")
    print(f"| segpipe CPU per block (all passes) | {cpu / blocks * 1000:.1f} |")
    for name, v in reference.items():
        print(f"| (for comparison, not run: {name}) | {v * 1000:.1f} |")
    print()
    cores = os.cpu_count() or 1  # the default engine uses a thread per core
    ideal = total * blocks / cores
    print(
        f"segpipe wall {wall:.1f} s; kernels ÷ {cores} cores {ideal:.1f} s; "
        f"ratio {wall / ideal:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
