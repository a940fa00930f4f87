"""From the kernel bound to segpipe's wall time, in measured steps.

The kernel bound is the sum of per-block kernel times (``bench_kernels.kernels``) times
the blocks, divided by the cores. Two runs with no engine stand between it and segpipe:
the kernels alone, block after block on a thread per core (what running them side by side
costs on this machine), and the same kernels in segpipe's four passes with the scratch
files between them (what an exact global threshold's passes cost beyond one visit per
block). Used by ``bench_kernels.py`` and ``bench_scale.py --sections kernels``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_kernels  # noqa: E402
import bench_volume  # noqa: E402


class InMemory:
    """The benchmark volume held in memory, padded, so each block's context (4 voxels a
    side, the nearest voxel past the edges) is a slice, not timed; with its source, for
    the timed reads, and the corners of its blocks."""

    def __init__(self, volume: Path) -> None:
        import zarr

        from pipeline.io.readers import open_source

        self.z = zarr.open_array(str(volume), mode="r")
        self.whole = np.pad(self.z[...], 4, mode="edge")
        self.source = open_source(str(volume))
        c = bench_volume.CHUNK
        self.corners = [
            tuple(i * c for i in j) for j in np.ndindex(*(s // c for s in self.z.shape))
        ]

    def grown(self, lo) -> np.ndarray:
        """The block at corner ``lo`` with its context."""
        return self.whole[tuple(slice(o, o + bench_volume.CHUNK + 8) for o in lo)]

    def labels(self, work: Path) -> Path:
        """An empty label image in ``work`` with the pyramid levels segpipe writes."""
        from pipeline.io import ome_zarr

        path, shape = work / "l.zarr", self.z.shape
        levels = bench_kernels.pyramid_levels(shape)
        ome_zarr.create_labels(path, shape, (bench_volume.CHUNK,) * 3, np.uint32, levels, "zyx")
        return path


def chained(volume: Path, threshold: float, workers: int) -> tuple[float, int]:
    """Seconds for the kernels alone, one block after another on ``workers`` threads,
    over every block of ``volume``, and the number of blocks.

    The kernels without an engine: each block's context is cut from the volume held in
    memory (not timed), the library kernels segpipe replaces are not run.
    """
    from concurrent.futures import ThreadPoolExecutor

    vol = InMemory(volume)
    c = bench_volume.CHUNK
    summaries = {}
    with tempfile.TemporaryDirectory(prefix="segpipe-chain-") as work:
        labels = str(vol.labels(Path(work)))

        def one(lo) -> None:
            _, summaries[tuple(o // c for o in lo)] = bench_kernels.block_kernels(
                vol.z, vol.grown(lo), vol.source, lo, threshold, labels, _plain_step
            )

        def pairs(index):
            return bench_kernels.face_pairs(vol.z.shape, index, summaries)

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, vol.corners[:workers]))  # warm up
            t0 = time.perf_counter()
            list(pool.map(one, vol.corners))
            list(pool.map(pairs, summaries))
            return time.perf_counter() - t0, len(vol.corners)


def in_passes(volume: Path, threshold: float, workers: int) -> tuple[float, dict[str, float]]:
    """Seconds for the kernels run in segpipe's four passes with no engine, on
    ``workers`` threads, over every block of ``volume`` (the faster of two runs), and the
    seconds of each pass.

    What the passes add to the kernels alone (:func:`chained`) is their scratch round
    trips: the range pass keeps each block's Gaussian in a scratch file, the histogram
    pass reads it back and keeps its bin codes, the labelling pass thresholds those and
    keeps compressed local labels, the write pass reads them, relabels and writes. Each
    block's context is cut from the volume held in memory, as for :func:`chained` (no
    halo files), and no scheduler, journal or stitching runs. The threshold is computed
    from the passes' own histogram and must equal segpipe's (``threshold``).
    """
    from concurrent.futures import ThreadPoolExecutor

    from skimage.filters import threshold_otsu

    from pipeline.engine import scratch
    from pipeline.io import ome_zarr
    from pipeline.kernels import labels as labelling
    from pipeline.kernels.compiled import apply_table
    from pipeline.kernels.histogram import BinCodes, bin_edges

    vol = InMemory(volume)
    z, corners, c = vol.z, vol.corners, bench_volume.CHUNK
    levels = bench_kernels.pyramid_levels(z.shape)
    temporary = tempfile.TemporaryDirectory(prefix="segpipe-passes-")  # 1.3 GiB at 512³
    work = Path(temporary.name)
    labels = str(vol.labels(work))

    def file(what: str, lo) -> str:
        return str(work / f"{what}-{'-'.join(map(str, lo))}")

    def core(lo):
        return tuple((o, o + c) for o in lo)

    def range_block(lo):
        vol.source.read(core(lo))
        g = bench_kernels.smooth(vol.grown(lo))
        scratch.save(file("g", lo), g)
        return g.min(), g.max()

    def run(pool) -> dict[str, float]:
        seconds = {}
        t0 = time.perf_counter()
        ranges = list(pool.map(range_block, corners))
        seconds["range"] = time.perf_counter() - t0
        edges = bin_edges(min(r[0] for r in ranges), max(r[1] for r in ranges), 256, np.float64)
        codes = BinCodes.over(edges)

        def histogram_block(lo):
            counts, kept = codes.with_stand_in(scratch.load(file("g", lo)))
            scratch.save(file("c", lo), kept)
            return counts

        t0 = time.perf_counter()
        counts = sum(pool.map(histogram_block, corners))
        seconds["histogram"] = time.perf_counter() - t0
        t = threshold_otsu(hist=(counts, codes.centres))
        if t != threshold:
            raise RuntimeError(f"the passes' threshold {t} is not segpipe's {threshold}")
        above, first = codes.decoder(t)

        summaries = {}

        def label_block(lo):
            lab = labelling.local_label(above(scratch.load(file("c", lo)), first), 1)
            summaries[tuple(o // c for o in lo)] = labelling.summarise_block(lab, None, lo, z.shape)
            n = int(lab.max())
            scratch.save(file("l", lo), lab.astype(np.uint16) if n < 2**16 else lab, True)

        def write_block(lo):
            lab = scratch.load(file("l", lo))
            final = apply_table(lab, np.arange(int(lab.max()) + 1, dtype=np.uint32))
            ome_zarr.write_block(labels, levels, core(lo), final)

        t0 = time.perf_counter()
        list(pool.map(label_block, corners))
        list(pool.map(lambda index: bench_kernels.face_pairs(z.shape, index, summaries), summaries))
        seconds["labelling"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        list(pool.map(write_block, corners))
        seconds["write"] = time.perf_counter() - t0
        return seconds

    with temporary, ThreadPoolExecutor(workers) as pool:
        runs = [run(pool) for _ in range(2)]
    best = min(runs, key=lambda r: sum(r.values()))
    return sum(best.values()), best


def bound_steps(volume: Path, threshold: float, cores: int, ideal: float, wall: float) -> str:
    """From the kernel bound to segpipe's wall time in two steps, measured: the kernels
    alone on a thread per core (:func:`chained`), then in segpipe's passes with their
    scratch round trips (:func:`in_passes`)."""
    chain, _ = chained(volume, threshold, cores)
    passes, each = in_passes(volume, threshold, cores)
    per_pass = " / ".join(f"{v:.2f}" for v in each.values())
    return (
        f"the kernels alone, block after block on {cores} threads (no engine): {chain:.2f} s, "
        f"{chain / ideal:.2f}× the kernels ÷ cores;\n"
        f"the same in segpipe's four passes, with their scratch round trips (no engine): "
        f"{passes:.2f} s ({' / '.join(each)}: {per_pass} s), {passes / chain:.2f}× the "
        f"kernels alone;\nsegpipe {wall / passes:.2f}× that (halo files, scheduler, "
        "journal, stitching)"
    )


def _plain_step(name, func):
    return None if name.startswith("(") else func()
