"""Per-block kernel times of the core pipeline, against segpipe's CPU time per block.

    .venv/bin/python benchmarks/bench_kernels.py [--size quarter]

Times each kernel segpipe runs once per block position on a few blocks of the benchmark
volume (one thread, best of three), sums them per block, and compares with the CPU time
segpipe spends per block in a full run (process CPU over all passes / blocks; the second
run in the process, as the kernels are timed warm). The gap is what the engine adds: the
passes' scratch writes and reads, halo slabs (and each source block kept with them),
Python, the scheduler. Between the kernel bound and segpipe's wall time stand two runs
with no engine (``bench_bound.py``): the kernels block after block on a thread per core,
and the same in segpipe's four passes with the scratch files between them.
scipy's Gaussian, numpy's histogram and table lookup and zarr.Array's chunk read and
write, which segpipe replaces, are timed for comparison.
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


def pyramid_levels(shape) -> int:
    """Pyramid levels segpipe writes for ``shape`` in the benchmark's blocks."""
    from pipeline.io import ome_zarr

    return ome_zarr.pyramid_levels(tuple(shape), (bench_volume.CHUNK,) * len(shape))


def smooth(grown: np.ndarray) -> np.ndarray:
    """The benchmark's Gaussian (σ 1, nearest, float64) of the core of ``grown``, a block
    with 4 voxels of context on every side, as segpipe computes it."""
    from pipeline.ops.filters import GaussianParams, gaussian

    params = GaussianParams(sigma=1.0, mode="nearest", truncate=4.0)
    return gaussian(grown, params, ((4, 4),) * grown.ndim)


def block_kernels(z, grown, source, lo, threshold: float, labels_path: str, step):
    """Run the kernels segpipe runs once per block position on the block at ``lo``,
    each through ``step(name, func)`` (which returns ``func()``); the library kernels
    segpipe replaces go through ``step`` with names in parentheses. Returns the block's
    labels and summary (for the face pairs, :func:`face_pairs`)."""
    from scipy import ndimage as ndi

    from pipeline.io import ome_zarr
    from pipeline.kernels import histogram as hist
    from pipeline.kernels import labels as labelling
    from pipeline.kernels.compiled import apply_table

    c = bench_volume.CHUNK
    core = tuple((o, o + c) for o in lo)
    step("read 128³", lambda: source.read(core))
    g = step("gaussian 128³ of 136³, f64", lambda: smooth(grown))
    step(
        "(scipy gaussian_filter 136³, f64)",
        lambda: ndi.gaussian_filter(grown, 1, mode="nearest", truncate=4, output=np.float64),
    )
    lo_v, hi_v = step("min/max", lambda: (g.min(), g.max()))
    step("histogram", lambda: hist.float_histogram(g, lo=lo_v, hi=hi_v, nbins=256))
    step("(numpy.histogram)", lambda: np.histogram(g, 256, (lo_v, hi_v)))
    mask = step("threshold", lambda: g > threshold)
    lab = step("label", lambda: labelling.local_label(mask, 1))
    summary = step("summarise", lambda: labelling.summarise_block(lab, None, lo, z.shape))
    lut = np.arange(int(lab.max()) + 1, dtype=np.uint32)
    final = step("relabel", lambda: apply_table(lab, lut))
    step("(numpy table[labels])", lambda: lut[lab])
    levels = pyramid_levels(z.shape)
    step(f"write {levels} levels", lambda: ome_zarr.write_block(labels_path, levels, core, final))
    return final, summary


def face_pairs(shape, index, summaries: dict):
    """The labels touching across the lower faces of block ``index`` (its summary and its
    lower neighbours' in ``summaries``, by block index), as segpipe's stitching finds them."""
    from pipeline.engine.blocks import BlockPlan
    from pipeline.engine.passes.label import lower_neighbours
    from pipeline.engine.stitch import block_pairs

    plan = BlockPlan.regular(tuple(shape), (bench_volume.CHUNK,) * len(shape))
    near = {n: summaries[n] for n in lower_neighbours(plan, index, 1)}
    return block_pairs(plan, index, 1, summaries[index], near)


def _grown(z, lo) -> np.ndarray:
    """The block at ``lo`` with the Gaussian's 4 voxels of context on every side (the
    nearest voxel repeated past the volume's edge, as the Gaussian's mode)."""
    c, h = bench_volume.CHUNK, 4
    box = [(max(o - h, 0), min(o + c + h, n)) for o, n in zip(lo, z.shape, strict=True)]
    pad = [(a - (o - h), (o + c + h) - b) for (a, b), o in zip(box, lo, strict=True)]
    return np.pad(z[tuple(slice(a, b) for a, b in box)], pad, mode="edge")


def _block_times(z, source, lo: tuple[int, ...], threshold: float, labels_path: str) -> dict:
    import zarr

    times: dict[str, float] = {}

    def timed(name, func):
        out = func()  # first call outside the timing
        times[name] = best(func)
        return out

    final, summary = block_kernels(z, _grown(z, lo), source, lo, threshold, labels_path, timed)
    c = bench_volume.CHUNK
    index = tuple(o // c for o in lo)
    summaries = {index: summary}
    for a in range(len(lo)):  # the lower neighbours, untimed
        below = list(lo)
        below[a] -= c
        summaries[tuple(o // c for o in below)] = _summary(z, tuple(below), threshold)
    timed("face pairs", lambda: face_pairs(z.shape, index, summaries))
    core = tuple(slice(o, o + c) for o in lo)
    times["(zarr.Array read 128³)"] = best(lambda: z[core])
    level0 = zarr.open_array(os.path.join(labels_path, "0"), mode="r+")
    level0 = level0.with_config({"write_empty_chunks": True})
    times["(zarr.Array write 128³ labels)"] = best(lambda: level0.__setitem__(core, final))
    kernel = {k: v for k, v in times.items() if not k.startswith("(")}
    reference = {k.strip("()"): v for k, v in times.items() if k.startswith("(")}
    return kernel, reference


def _summary(z, lo, threshold: float):
    """The label summary of the block at ``lo``."""
    from pipeline.kernels import labels as labelling

    mask = smooth(_grown(z, lo)) > threshold
    return labelling.summarise_block(labelling.local_label(mask, 1), None, lo, z.shape)


def kernels(volume: Path, threshold: float) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per 128³ block of each kernel, and of the library kernels it replaces,
    averaged over three interior blocks."""
    import zarr

    from pipeline.io import ome_zarr
    from pipeline.io.readers import open_source

    z = zarr.open_array(str(volume), mode="r")
    source = open_source(str(volume))
    c = bench_volume.CHUNK
    out: dict[str, list[float]] = {}
    ref: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="segpipe-kernels-") as work:
        labels = Path(work) / "l.zarr"
        levels = pyramid_levels(z.shape)
        ome_zarr.create_labels(labels, z.shape, (c,) * 3, np.uint32, levels, "zyx")
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


def labelling_side_by_side(volume: Path, threshold: float, n: int = 30) -> dict[str, tuple]:
    """Milliseconds per 128³ mask labelled (6-connected) by segpipe's loop, cc3d and
    scipy: one thread alone, and each of two threads labelling its own block at once."""
    import threading

    import cc3d
    import zarr
    from scipy import ndimage as ndi

    from pipeline.kernels import labels as labelling

    z = zarr.open_array(str(volume), mode="r")
    c = bench_volume.CHUNK
    masks = [smooth(_grown(z, (c, c, c * (1 + i)))) > threshold for i in range(2)]
    funcs = {
        "segpipe (compiled, without the GIL)": lambda m: labelling.local_label(m, 1),
        "cc3d.connected_components": lambda m: cc3d.connected_components(
            m.view(np.uint8), connectivity=6, out_dtype=np.uint32
        ),
        "scipy.ndimage.label": lambda m: ndi.label(m),
    }
    out = {}
    for name, func in funcs.items():
        func(masks[0])
        t0 = time.perf_counter()
        for i in range(n):
            func(masks[i % 2])
        alone = (time.perf_counter() - t0) / n

        def many(mask, func=func):
            for _ in range(n):
                func(mask)

        threads = [threading.Thread(target=many, args=(m,)) for m in masks]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out[name] = (1000 * alone, 1000 * (time.perf_counter() - t0) / n)
    return out


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
    pipeline.run(cfg, overwrite=True)  # the first run in a process also imports the ops
    c0, t0 = time.process_time(), time.perf_counter()
    res = pipeline.run(cfg, overwrite=True)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    blocks = res.summary["blocks"]
    threshold = res.summary["thresholds"]["mask"]
    k, reference = kernels(volume, threshold)
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
    print("\n| labelling a 128³ mask | ms alone | ms for two at once, one per thread |")
    print("|---|---:|---:|")
    for name, (alone, pair) in labelling_side_by_side(volume, threshold).items():
        print(f"| {name} | {alone:.1f} | {pair:.1f} |")
    print()
    print(
        f"segpipe wall {wall:.1f} s; kernels ÷ {cores} cores {ideal:.1f} s; "
        f"ratio {wall / ideal:.2f}"
    )
    import bench_bound  # it uses this module's kernels

    print(bench_bound.bound_steps(volume, threshold, cores, ideal, wall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
