"""segpipe at scale: volume size, object count, where it runs, checkpoints, kernel bound.

    .venv/bin/python benchmarks/bench_scale.py                      # every section
    .venv/bin/python benchmarks/bench_scale.py --sections size      # one of them
    .venv/bin/python benchmarks/bench_scale.py --quick              # small sizes (smoke)
    .venv/bin/python benchmarks/bench_scale.py --sections size --sizes 0.25,2  # less disk

Sections (the core pipeline: Gaussian σ 1, Otsu, label; 128³ blocks):
- size: 0.25, 2 and 4 GiB uint16 volumes; wall time and peak RSS against 0.25 GiB, and
  against 0.25 GiB with each larger volume's scratch budget per voxel (the same kept);
- objects: 10³ … 10⁶ objects in one 600³ volume (same foreground fraction), best of 3;
- where: threads, a LocalCluster (2 workers), a real ``dask scheduler`` + 2 ``dask worker``;
- checkpoints: the block journal on and off;
- kernels: wall time against the sum of per-block kernel times ÷ cores, against the
  same kernels run alone block after block on a thread per core, and against them run in
  segpipe's four passes with their scratch files (no engine in either);
- blocks: the 0.25 GiB volume in 128³, 64³ and 32³ blocks (64 to 4,096 blocks), the
  passes in waves of tasks (the default) and each pass handed to Dask as one graph.
Each run is its own process; peak RSS is sampled over its process tree (workers started
by that process included) every 0.1 s. With ``--record`` each section's table and its runs
(wall seconds, peak RSS, objects) go to ``benchmarks/results/scale-<date>.json``
(``scale-quick-...`` with ``--quick``; see ``bench_record.py``), which
``benchmarks/tables.py`` renders. Not a timed test: it reports.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

import bench_methods
import bench_proc
import bench_record
import bench_volume
import numpy as np
from bench_cluster import LoopbackCluster

HERE = Path(__file__).resolve().parent
SIZES = {"0.25": (512, 512, 512), "2": (1024, 1024, 1024), "4": (1024, 1024, 2048)}
QUICK_SIZES = {"0.25": (128, 256, 256), "2": (256, 512, 512), "4": (256, 512, 1024)}
OBJECTS = (1_000, 10_000, 100_000, 1_000_000)
SECTIONS = ("size", "objects", "where", "checkpoints", "kernels", "blocks")
BLOCK_SIDES = (128, 64, 32)


def volume_path(work: Path, shape) -> Path:
    return work / f"volume_{'x'.join(map(str, shape))}.zarr"


def objects_volume(path: Path, objects: int, side: int) -> None:
    """A uint16 Zarr volume of ``side``³ holding ``objects`` cubes (1/8 of the voxels)."""
    import zarr

    if (path / "zarr.json").exists():
        return
    n = round(objects ** (1 / 3))
    cell = side // n
    rng = np.random.default_rng(objects)
    vol = rng.normal(1000, 150, (side,) * 3).clip(0, 65535).astype(np.uint16)
    inside = (np.arange(side) % cell) < cell // 2
    inside &= np.arange(side) < n * cell
    cube = inside[:, None, None] & inside[None, :, None] & inside[None, None, :]
    vol[cube] += 2000
    arr = zarr.create_array(str(path), shape=vol.shape, chunks=(128,) * 3, dtype=vol.dtype)
    arr[:] = vol


def worker(method: str, volume: str, out: str, extra: str) -> None:
    """One measured run (in its own process): prints a JSON line.

    ``extra``: comma-separated changes to the default run: ``no-checkpoints``,
    ``budget-per-voxel=B`` (a scratch budget of B bytes a voxel), ``block=N`` (N³ blocks),
    ``one-graph`` (each pass handed to Dask whole, not in waves).
    """
    import pipeline

    changes = dict(c.partition("=")[::2] for c in extra.split(",") if c and c != "-")
    cfg = bench_methods.segpipe_config(volume, out, chunk=int(changes.get("block", 128)))
    cfg["engine"] = {"checkpoints": "no-checkpoints" not in changes}
    if "budget-per-voxel" in changes:
        import zarr

        voxels = int(np.prod(zarr.open_array(volume, mode="r").shape))
        cfg["engine"]["scratch_budget"] = str(int(float(changes["budget-per-voxel"]) * voxels))
    if "one-graph" in changes:
        cfg["engine"]["wave_tasks"] = 10**9
    cluster = None
    if method == "local-cluster":
        cfg["cluster"] = {"local": {"workers": 2, "threads_per_worker": 1, "dashboard": False}}
    elif method == "scheduler":
        cluster = LoopbackCluster(Path(out + ".cluster"))
        cfg["cluster"] = {"scheduler_file": str(cluster.file)}
    try:
        t0 = time.perf_counter()
        res = pipeline.run(cfg, overwrite=True)
        seconds = time.perf_counter() - t0
    finally:
        if cluster is not None:
            cluster.stop()
    print(
        json.dumps(
            {
                "count": res.count,
                "seconds": seconds,
                "blocks": res.summary["blocks"],
                "threshold": res.summary["thresholds"].get("mask"),
            }
        )
    )


RUNS: list[dict] = []  # every measured run, for the record


def measure(method: str, volume: Path, work: Path, timeout: float, extra: str = "") -> dict:
    tag = extra.replace("=", "").replace(",", "-")
    out = work / f"out_scale_{method}_{volume.stem}{tag}"
    log = work / f"scale_{method}_{volume.stem}{tag}.log"
    cmd = [sys.executable, __file__, "--worker", method, str(volume), str(out), extra or "-"]
    m = bench_proc.run(cmd, timeout, log)
    lines = log.read_text().strip().splitlines() if log.exists() else []
    info = json.loads(lines[-1]) if m.returncode == 0 and lines else {}
    RUNS.append(
        {
            "method": method,
            "volume": volume.name,
            "extra": extra,
            "ok": m.returncode == 0,
            "timed_out": m.timed_out,
            "wall_s": info.get("seconds"),  # pipeline.run in its process
            "process_s": m.seconds,
            "peak_rss_mib": m.peak_rss / 2**20,
            "objects": info.get("count"),
            "blocks": info.get("blocks"),
            "threshold": info.get("threshold"),
        }
    )
    return {"wall": m.seconds, "rss": m.peak_rss, "ok": m.returncode == 0, **info}


class _Tee(io.TextIOBase):
    """Writes to a stream and keeps a copy."""

    def __init__(self, stream) -> None:
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def run_section(sections: dict, name: str, func, *args):
    """``func(*args)``, its printed table and its runs kept in ``sections[name]``."""
    RUNS.clear()
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        out = func(*args)
    text = tee.copy.getvalue()
    start = text.find("\n###")  # the table, not the volumes' build lines before it
    text = text[start:] if start >= 0 else text
    sections[name] = {"text": text.strip(), "runs": list(RUNS)}
    return out


def section_size(args, sizes) -> None:
    from pipeline.engine.scratch import page_cache_budget

    rows = {}
    for gib, shape in sizes.items():
        path = volume_path(args.work, shape)
        bench_volume.ensure(path, shape)
        rows[gib] = measure("threads", path, args.work, args.timeout)
    # The scratch budget is the same for every volume, so the smallest keeps more of its
    # intermediates (its Gaussian) than the larger ones (their bin codes, the source's
    # halo files where they fit too). The smallest again, with each larger one's budget
    # per voxel, keeps what that one keeps: the same work per voxel.
    small = volume_path(args.work, sizes["0.25"])
    same_work = {}
    for gib, shape in sizes.items():
        if gib != "0.25":
            per_voxel = page_cache_budget() / np.prod(shape)
            name = f"0.25, {gib} GiB's budget per voxel"
            extra = f"budget-per-voxel={per_voxel:.3f}"
            rows[name] = measure("threads", small, args.work, args.timeout, extra)
            same_work[gib] = name
    sizes = {**sizes, **{name: sizes["0.25"] for name in same_work.values()}}
    base = rows["0.25"]
    print("\n### Volume size (threads)\n")
    print("| GiB | shape | objects | wall s | × 0.25 GiB | voxels × | peak RSS MiB | × 0.25 GiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for gib, r in rows.items():
        vox = np.prod(sizes[gib]) / np.prod(sizes["0.25"])
        print(
            f"| {gib} | {'×'.join(map(str, sizes[gib]))} | {r.get('count', '-')} "
            f"| {r['seconds'] if r['ok'] else float('nan'):.1f} "
            f"| {r.get('seconds', np.nan) / base['seconds']:.2f} | {vox:.0f} "
            f"| {r['rss'] / 2**20:.0f} | {r['rss'] / base['rss']:.2f} |"
        )
    for gib, name in same_work.items():
        r, same = rows[gib], rows[name]
        if r["ok"] and same["ok"]:
            vox = np.prod(sizes[gib]) / np.prod(sizes["0.25"])
            print(
                f"\n{gib} GiB against 0.25 GiB with its budget per voxel (the same kept): "
                f"{r['seconds'] / same['seconds']:.2f}× the time for {vox:.0f}× the voxels"
            )


def section_objects(args, quick) -> None:
    side = 120 if quick else 600
    counts = OBJECTS[:2] if quick else OBJECTS
    paths = {n: args.work / f"objects_{n}_{side}.zarr" for n in counts}
    for n, path in paths.items():
        objects_volume(path, n, side)
    # A run takes 3-5 s here, where the machine's noise is a few tenths of a second:
    # each count runs three times, the counts in turn, and the fastest run is kept.
    runs: dict[int, list[dict]] = {n: [] for n in counts}
    for _ in range(3):
        for n, path in paths.items():
            runs[n].append(measure("threads", path, args.work, args.timeout))
    rows = {n: _fastest(r) for n, r in runs.items()}
    base = rows[counts[0]]
    print(f"\n### Object count ({side}³ uint16, threads, best of 3)\n")
    print("| objects asked | objects found | wall s | × fewest | peak RSS MiB (largest) |")
    print("|---:|---:|---:|---:|---:|")
    for n, r in rows.items():
        print(
            f"| {n} | {r.get('count', '-')} | {r.get('seconds', np.nan):.1f} "
            f"| {r.get('seconds', np.nan) / base['seconds']:.2f} | {r['rss'] / 2**20:.0f} |"
        )


def _fastest(runs: list[dict]) -> dict:
    """The fastest of some runs of one measurement, with the largest peak RSS of them."""
    done = [r for r in runs if r["ok"]] or runs
    best = min(done, key=lambda r: r.get("seconds", np.inf))
    return {**best, "rss": max(r["rss"] for r in runs)}


def section_where(args, shape) -> dict:
    path = volume_path(args.work, shape)
    bench_volume.ensure(path, shape)
    rows = {
        m: measure(m, path, args.work, args.timeout)
        for m in ("threads", "local-cluster", "scheduler")
    }
    base = rows["threads"]
    print(f"\n### Where it runs ({'×'.join(map(str, shape))})\n")
    print("| engine | objects | run s | × threads | peak RSS MiB (all processes) |")
    print("|---|---:|---:|---:|---:|")
    for m, r in rows.items():
        print(
            f"| {m} | {r.get('count', '-')} | {r.get('seconds', np.nan):.1f} "
            f"| {r.get('seconds', np.nan) / base['seconds']:.2f} | {r['rss'] / 2**20:.0f} |"
        )
    return base


def section_checkpoints(args, shape) -> None:
    path = volume_path(args.work, shape)
    bench_volume.ensure(path, shape)
    on, off = [], []
    for _ in range(3):  # alternate, best of three each
        on.append(measure("threads", path, args.work, args.timeout)["seconds"])
        off.append(measure("threads", path, args.work, args.timeout, "no-checkpoints")["seconds"])
    print(f"\n### Checkpoints ({'×'.join(map(str, shape))}, best of 3)\n")
    print(
        f"journal on {min(on):.2f} s, off {min(off):.2f} s: overhead "
        f"{100 * (min(on) / min(off) - 1):+.1f} %"
    )


def section_kernels(args, shape, threads: dict | None) -> None:
    import bench_bound
    import bench_kernels

    if min(shape) < 4 * bench_volume.CHUNK:
        print("\n(kernel bound: needs a volume of at least 512³; skipped)")
        return
    path = volume_path(args.work, shape)
    bench_volume.ensure(path, shape)
    threads = threads or measure("threads", path, args.work, args.timeout)
    k, _ = bench_kernels.kernels(path, threads["threshold"])
    cores = os.cpu_count() or 1
    ideal = sum(k.values()) * threads["blocks"] / cores
    print(f"\n### Kernel bound ({'×'.join(map(str, shape))})\n")
    print(
        f"sum of kernels per block {1000 * sum(k.values()):.1f} ms × {threads['blocks']} "
        f"blocks ÷ {cores} cores = {ideal:.2f} s; segpipe {threads['seconds']:.2f} s; "
        f"ratio {threads['seconds'] / ideal:.2f}"
    )
    print(bench_bound.bound_steps(path, threads["threshold"], cores, ideal, threads["seconds"]))


def section_blocks(args, shape) -> None:
    path = volume_path(args.work, shape)
    bench_volume.ensure(path, shape)
    sides = [s for s in BLOCK_SIDES if min(shape) // s >= 4]
    rows = {}
    for side in sides:
        for how in ("waves", "one-graph"):
            extra = f"block={side}" + (",one-graph" if how == "one-graph" else "")
            rows[side, how] = measure("threads", path, args.work, args.timeout, extra)
    print(f"\n### Blocks ({'×'.join(map(str, shape))}, threads)\n")
    print("| block | blocks | passes in | objects | wall s | peak RSS MiB |")
    print("|---|---:|---|---:|---:|---:|")
    for (side, how), r in rows.items():
        print(
            f"| {side}³ | {r.get('blocks', '-')} | {how} | {r.get('count', '-')} "
            f"| {r.get('seconds', np.nan):.1f} | {r['rss'] / 2**20:.0f} |"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument(
        "--sizes",
        default=",".join(SIZES),
        help="volume sizes of the size section, GiB (each needs a few times its size on disk)",
    )
    ap.add_argument("--worker", nargs=4, metavar=("METHOD", "VOLUME", "OUT", "EXTRA"))
    ap.add_argument("--record", action="store_true", help="write the results as a JSON record")
    ap.add_argument(
        "--results",
        type=Path,
        default=bench_record.RESULTS,
        help="folder of the records (default benchmarks/results)",
    )
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    sizes = QUICK_SIZES if args.quick else SIZES
    sizes = {k: v for k, v in sizes.items() if k in args.sizes.split(",") or k == "0.25"}
    wanted = args.sections.split(",")
    print(f"segpipe scale benchmark, {os.cpu_count()} cores")
    threads = None
    done: dict[str, dict] = {}
    if "size" in wanted:
        run_section(done, "size", section_size, args, sizes)
    if "objects" in wanted:
        run_section(done, "objects", section_objects, args, args.quick)
    if "where" in wanted:
        threads = run_section(done, "where", section_where, args, sizes["0.25"])
    if "checkpoints" in wanted:
        run_section(done, "checkpoints", section_checkpoints, args, sizes["0.25"])
    if "kernels" in wanted:
        run_section(done, "kernels", section_kernels, args, sizes["0.25"], threads)
    if "blocks" in wanted:
        run_section(done, "blocks", section_blocks, args, sizes["0.25"])
    if args.record:
        setup = {
            "quick": args.quick,
            "sections": [w for w in SECTIONS if w in wanted],
            "sizes": {gib: list(shape) for gib, shape in sizes.items()},
            "timeout_s": args.timeout,
        }
        name = "scale-quick" if args.quick else "scale"
        path = bench_record.write(name, "scale", {"setup": setup, "sections": done}, args.results)
        print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
