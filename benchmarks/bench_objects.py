"""Measuring many objects: the objects table for up to 10⁶ objects, against scikit-image.

    .venv/bin/python benchmarks/bench_objects.py                 # 10⁶ objects, 400³ voxels
    .venv/bin/python benchmarks/bench_objects.py --objects 10000 # quick

The volume is a grid of cells of 4³ voxels, each holding one small box object (2–3
voxels a side, jittered; one in fifty stretched across its neighbours' cells so objects
also span blocks). Three runs, each in its own process with peak RSS sampled:
segpipe labels only, segpipe labels + table (all regionprops-named columns with an
intensity image), and the anchor: ``skimage.measure.label`` + ``regionprops_table`` on
the whole array in memory. The segpipe table is checked against the anchor's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import bench_proc
import numpy as np

HERE = Path(__file__).resolve().parent
PROPS = (
    "label", "num_pixels", "area", "centroid", "bbox", "equivalent_diameter_area",
    "intensity_mean", "intensity_min", "intensity_max", "intensity_std",
)  # fmt: skip


def make_volume(path: Path, objects: int, seed: int = 0) -> tuple[int, ...]:
    """Write the volume (uint8 .npy) with about ``objects`` objects; its shape."""
    side = round(objects ** (1 / 3))
    shape = (side * 4,) * 3
    rng = np.random.default_rng(seed)
    vol = np.zeros(shape, np.uint8)
    cells = np.stack(np.meshgrid(*(np.arange(side),) * 3, indexing="ij"), -1).reshape(-1, 3)
    size = rng.integers(2, 4, size=(len(cells), 3))
    start = cells * 4 + rng.integers(0, 2, size=(len(cells), 3)) * (size < 3)
    values = rng.integers(60, 250, size=len(cells)).astype(np.uint8)
    for offs in np.ndindex(3, 3, 3):  # every voxel offset of every box at once
        sel = (size > np.array(offs)).all(axis=1)
        p = start[sel] + offs
        vol[p[:, 0], p[:, 1], p[:, 2]] = values[sel]
    long = rng.random(len(cells)) < 0.02  # bars through the next cells along x
    for dx in range(3, 9):
        p = start[long] + [0, 0, dx]
        ok = p[:, 2] < shape[2]
        vol[p[ok, 0], p[ok, 1], p[ok, 2]] = values[long][ok]
    np.save(path, vol)
    return shape


def config(volume: Path, out: Path, table: bool) -> dict:
    cfg = {
        "input": {"path": str(volume), "chunks": [100, 100, 100]},
        "steps": {
            "mask": {"op": "threshold", "value": 0},
            "objects": {"op": "label", "connectivity": 1},
        },
        "output": {"path": str(out), "labels": "objects", "overwrite": True},
    }
    if table:
        cfg["output"]["table"] = {"format": "parquet", "intensity": "input"}
    return cfg


def worker(method: str, volume: Path, out: Path) -> None:
    """One measured run (in its own process); prints a JSON line."""
    t0 = time.perf_counter()
    if method == "whole":
        import pyarrow as pa
        import pyarrow.parquet as pq
        from skimage.measure import label, regionprops_table

        img = np.load(volume)
        lab = label(img > 0, connectivity=1)
        cols = regionprops_table(lab, img, properties=PROPS)
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), out / "objects.parquet")
        count = int(lab.max())
    else:
        import pipeline

        res = pipeline.run(config(volume, out, table=method == "segpipe+table"))
        count = res.count
    print(json.dumps({"count": count, "seconds": time.perf_counter() - t0}))


def compare(a: Path, b: Path) -> str:
    """How the segpipe table agrees with the anchor's."""
    import pyarrow.parquet as pq

    ta, tb = pq.read_table(a), pq.read_table(b)
    worst = 0.0
    for name in tb.column_names:
        x, y = ta.column(name).to_numpy(), tb.column(name).to_numpy()
        if x.dtype.kind in "iu":
            if not np.array_equal(x, y):
                return f"column {name} differs"
        else:
            worst = max(worst, float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1))))
    return f"integer columns equal; largest relative difference of float columns {worst:.1e}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--worker", nargs=3, metavar=("METHOD", "VOLUME", "OUT"))
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]), Path(args.worker[2]))
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    volume = args.work / f"objects_{args.objects}.npy"
    if not volume.exists():
        make_volume(volume, args.objects)
    shape = np.load(volume, mmap_mode="r").shape
    rows, outs = {}, {}
    for method in ("segpipe", "segpipe+table", "whole"):
        outs[method] = args.work / f"out_objects_{method}"
        log = args.work / f"objects_{method}.log"
        cmd = [sys.executable, __file__, "--worker", method, str(volume), str(outs[method])]
        m = bench_proc.run(cmd, args.timeout, log)
        last = log.read_text().strip().splitlines()[-1:] if log.exists() else []
        info = json.loads(last[0]) if m.returncode == 0 and last else {}
        rows[method] = (m, info)
    whole = rows["whole"][0]
    print(f"volume {'×'.join(map(str, shape))} uint8, blocks 100³\n")
    print("| run | objects | wall s | × whole | peak RSS MiB | × whole |")
    print("|---|---|---|---|---|---|")
    for method, (m, info) in rows.items():
        if m.returncode != 0:
            print(f"| {method} | did not finish (see log) | | | | |")
            continue
        print(
            f"| {method} | {info['count']} | {m.seconds:.1f} | {m.seconds / whole.seconds:.2f} "
            f"| {m.peak_rss / 2**20:.0f} | {m.peak_rss / whole.peak_rss:.2f} |"
        )
    counts = {info.get("count") for _, info in rows.values()}
    if len(counts) != 1:
        print(f"\nWARNING: object counts differ: {counts}")
        return 1
    table = rows["segpipe+table"][0].seconds - rows["segpipe"][0].seconds
    print(f"\ntable cost over labels alone: {table:.1f} s")
    print(compare(outs["segpipe+table"] / "objects.parquet", outs["whole"] / "objects.parquet"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
