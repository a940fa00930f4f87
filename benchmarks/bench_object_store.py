"""Object storage benchmark, against a loopback S3 server (moto's server mode).

    .venv/bin/python benchmarks/bench_object_store.py             # 128x256x256 volume
    .venv/bin/python benchmarks/bench_object_store.py --shape 256 512 512 --record

Three parts, from one run:

1. libraries: a 256³ uint16 Zarr array (64³ chunks, 32 MiB) written and read chunk by
   chunk (two threads, as two block tasks) through zarr's ``FsspecStore`` (s3fs) and
   zarr's ``ObjectStore`` (obstore), the two ways zarr 3 reaches S3;
2. pipeline: the core pipeline (Gaussian -> Otsu -> label -> small objects removed ->
   labels, image and table written) from and to local disk, and from and to the S3
   server, each in its own process: wall time, peak memory, bytes through loopback;
3. scratch: the same run on a real ``dask scheduler`` with two ``dask worker``
   processes that share no folder, with intermediate blocks and halo slabs in an
   object-store prefix (``engine.halo_exchange: scratch``) or halo slabs as Dask task
   results and nothing kept between passes (``engine.halo_exchange: dask``).

The server is a Python process on this machine: its own cost is in every S3 figure, so
they bound what a real store costs from above. Ratios compare figures of this one run.
With ``--record`` the results go to ``benchmarks/results/object-store-<date>.json``.
Not a timed test: it reports.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import bench_proc
import bench_record
import bench_volume
import numpy as np
import yaml
from bench_cluster import LoopbackCluster

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "object-store"
# the object-store libraries measured, and the server
STORE_PACKAGES = ("obstore", "s3fs", "fsspec", "moto", "distributed")
sys.path.insert(0, str(HERE.parent))

from tests.object_store import S3Server  # noqa: E402


def loopback_bytes() -> int:
    """Bytes received on the loopback interface so far (each byte sent is received once)."""
    for line in Path("/proc/net/dev").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            return int(rest.split()[0])
    return 0


# -- 1. libraries -----------------------------------------------------------------------


def async_s3fs() -> str | None:
    """Why zarr's FsspecStore cannot be measured here (None: it can)."""
    try:
        import s3fs
    except ImportError:
        return "s3fs is not installed"
    major = int(s3fs.__version__.split(".")[0])
    if major < 2023:  # before its async rewrite (an old s3fs that pip picks beside boto3)
        return f"s3fs {s3fs.__version__} is not the asynchronous s3fs zarr's FsspecStore needs"
    return None


def libraries(server: S3Server, bucket: str) -> list[dict]:
    import zarr
    from obstore.store import S3Store
    from zarr.storage import FsspecStore, ObjectStore

    data = np.random.default_rng(0).integers(0, 4000, (256, 256, 256), dtype=np.uint16)
    starts = list(itertools.product(range(0, 256, 64), repeat=3))

    def stores(name: str):
        if name == "fsspec (s3fs)":
            return FsspecStore.from_url(f"s3://{bucket}/fsspec.zarr", storage_options={})
        inner = S3Store(bucket, prefix="obstore.zarr", endpoint=server.endpoint, allow_http=True)
        return ObjectStore(inner)

    rows = []
    missing = async_s3fs()
    if missing:
        print(f"  fsspec (s3fs): not measured: {missing} (pip install 's3fs>=2024.6')")
    for name in ("fsspec (s3fs)", "obstore")[1 if missing else 0 :]:
        store = stores(name)
        arr = zarr.create_array(store, shape=data.shape, chunks=(64, 64, 64), dtype=data.dtype,
                                fill_value=0, compressors=None)  # fmt: skip
        t0 = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(partial(_put, arr, data), starts))
        write = time.perf_counter() - t0
        t0 = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(partial(_get, arr), starts))
        read = time.perf_counter() - t0
        assert all((g == data[_region(s)]).all() for g, s in zip(got, starts, strict=True))
        mib = data.nbytes / 2**20
        rows.append({"library": name, "write_s": write, "read_s": read,
                     "write_mib_s": mib / write, "read_mib_s": mib / read})  # fmt: skip
        print(f"  {name:14s} write {write:6.2f} s ({mib / write:5.0f} MiB/s)  "
              f"read {read:6.2f} s ({mib / read:5.0f} MiB/s)", flush=True)  # fmt: skip
    return rows


def _region(start) -> tuple[slice, ...]:
    return tuple(slice(s, s + 64) for s in start)


def _put(arr, data, start) -> None:
    arr[_region(start)] = data[_region(start)]


def _get(arr, start):
    return arr[_region(start)]


# -- 2. and 3. pipeline runs ------------------------------------------------------------


def config(input_path: str, out: str, chunks: int, **engine) -> dict:
    cfg = {
        "input": {"path": input_path, "chunks": [chunks] * 3},
        "steps": {
            "smooth": {"op": "gaussian", "sigma": 2.0},
            "mask": {"op": "threshold", "method": "otsu"},
            "objects": {"op": "label", "connectivity": 1},
            "nuclei": {"op": "remove_small_objects", "min_size": 64},
        },
        "output": {
            "path": out,
            "labels": "nuclei",
            "image": "input",
            "table": {"format": "parquet", "intensity": "input"},
        },  # fmt: skip
    }
    if engine:
        cfg["engine"] = engine
    return cfg


class PeakMemory:
    """The largest total resident memory of some processes and their children, sampled
    every 0.1 s in a thread (the worker processes of a cluster run)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak, self._stop = pids, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, sum(bench_proc.tree_rss(pid) for pid in self.pids))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def measure_run(name: str, cfg: dict, env: dict, timeout: float, workers=()) -> dict:
    path = WORK / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cmd = [str(Path(sys.executable).parent / "segpipe"), "run", str(path), "--overwrite"]
    before = loopback_bytes()
    old = dict(os.environ)
    os.environ.update(env)
    sampler = PeakMemory(list(workers))
    try:
        m = bench_proc.run(cmd, timeout, WORK / f"{name}.log")
    finally:
        os.environ.clear()
        os.environ.update(old)
        workers_peak = sampler.stop()
    moved = loopback_bytes() - before
    said = re.search(r"^objects: (\d+)$", (WORK / f"{name}.log").read_text(), re.M)
    row = {"case": name, "seconds": m.seconds, "peak_rss": m.peak_rss, "loopback_bytes": moved,
           "workers_peak_rss": workers_peak or None, "count": int(said[1]) if said else None,
           "ok": m.returncode == 0 and not m.timed_out and said is not None}  # fmt: skip
    status = "ok" if row["ok"] else "FAILED"
    on_workers = f" + workers {workers_peak / 2**20:5.0f} MiB" if workers_peak else ""
    print(f"  {name:28s} {m.seconds:7.1f} s  peak {m.peak_rss / 2**20:6.0f} MiB{on_workers}  "
          f"loopback {moved / 2**20:7.0f} MiB  objects {row['count']}  {status}",
          flush=True)  # fmt: skip
    return row


def main() -> None:
    global WORK
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[128, 256, 256])
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--work", type=Path, default=WORK, help="folder for the volume and logs")
    args = ap.parse_args()
    WORK = args.work
    WORK.mkdir(parents=True, exist_ok=True)
    shape = tuple(args.shape)
    volume = WORK / f"volume-{'x'.join(map(str, shape))}.zarr"
    bench_volume.ensure(volume, shape)
    server = S3Server()
    env = server.env()
    os.environ.update(env)
    try:
        bucket = server.bucket("bench")
        print("libraries (32 MiB, 64 chunks, 2 threads):", flush=True)
        libs = libraries(server, bucket)
        server.upload_folder(volume, bucket, "volume.zarr")
        url = f"s3://{bucket}/volume.zarr"
        print(f"pipeline ({'x'.join(map(str, shape))}, blocks {args.chunks}³):", flush=True)
        runs = [
            measure_run(
                "local",
                config(str(volume), str(WORK / "out-local"), args.chunks),
                env,
                args.timeout,
            ),  # fmt: skip
            measure_run(
                "s3, halos scratch",
                config(url, f"s3://{bucket}/out", args.chunks, halo_exchange="scratch"),
                env,
                args.timeout,
            ),  # fmt: skip
            measure_run(
                "s3, halos dask",
                config(url, f"s3://{bucket}/out", args.chunks, halo_exchange="dask"),
                env,
                args.timeout,
            ),  # fmt: skip
        ]
        cluster = LoopbackCluster(WORK / "cluster", env=env, worker_args=["--memory-limit", "6GiB"])
        try:
            for mode in ("scratch", "dask"):
                cfg = config(url, f"s3://{bucket}/cluster-{mode}", args.chunks,
                             halo_exchange=mode)  # fmt: skip
                cfg["cluster"] = {"address": cluster.address}
                pids = [p.pid for p in cluster.workers]
                name = f"s3, 2 workers, halos {mode}"
                runs.append(measure_run(name, cfg, env, args.timeout, workers=pids))
        finally:
            cluster.stop()
    finally:
        server.stop()
    base = runs[0]
    for r in runs:
        r["seconds_vs_local"] = r["seconds"] / base["seconds"]
        r["peak_vs_local"] = r["peak_rss"] / base["peak_rss"]
    if len(libs) == 2:
        fs, ob = libs
        print(f"obstore vs fsspec: write {fs['write_s'] / ob['write_s']:.1f}x, "
              f"read {fs['read_s'] / ob['read_s']:.1f}x faster")  # fmt: skip
    data = {"shape": list(shape), "chunks": args.chunks, "libraries": libs, "runs": runs,
            "store_versions": bench_record.versions(STORE_PACKAGES)}  # fmt: skip
    if args.record:
        print("recorded:", bench_record.write("object-store", "bench_object_store", data))
    else:
        (WORK / "results.json").write_text(json.dumps(data, indent=1))
        print("results:", WORK / "results.json")


if __name__ == "__main__":
    main()
