"""Many blocks: planning a pass from 10³ to 10⁶ blocks, and runs of tiny blocks on a real
Dask scheduler with two workers.

    .venv/bin/python benchmarks/bench_blocks.py                       # both sections
    .venv/bin/python benchmarks/bench_blocks.py --sections plan       # one of them
    .venv/bin/python benchmarks/bench_blocks.py --plan-blocks 1000 10000 --run-blocks 1000
    .venv/bin/python benchmarks/bench_blocks.py --record              # also a result record

The input is a Zarr array that holds no chunk (every voxel its fill value), in blocks of
4×16×16 voxels, 256 blocks a slab (each count of blocks asked for is rounded up to whole
slabs: 10³ is 1,024 blocks).

- plan: the core pipeline (Gaussian σ 1, global Otsu, label); its first pass (the
  input's range: every block read with its halo, a partial result each, merged in a
  tree) planned and handed, wave by wave, to a scheduler that runs nothing (it answers
  every key with None; nothing after the pass runs). Seconds from the start of the run
  (config, block plan and pass included; Python's start-up and imports not) to the
  last wave handed over, and the peak resident memory of that process. This is what
  the segpipe process spends on a pass whatever runs its tasks.
- run: a fixed threshold written as the label image (one pass, a read and a write a
  block) by ``segpipe run --scheduler`` against a real ``dask scheduler`` and two
  ``dask worker`` processes (one thread each) on loopback, each pass in waves (the
  default) and handed over whole; and, for the work itself, the same run on two
  threads of the segpipe process. Wall seconds, tasks the workers ran, milliseconds of
  wall time per task per worker, and the peak resident memory of the segpipe process,
  the scheduler and the workers (sampled every 0.1 s).

Each measurement is its own process. With ``--record`` the rows go to
``benchmarks/results/blocks-<date>.json``. Not a timed test: it reports.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_proc  # noqa: E402
import bench_record  # noqa: E402
from bench_cluster import LoopbackCluster  # noqa: E402

BLOCK = (4, 16, 16)
PER_SLAB = 256  # blocks of 16×16 voxels in a 256×256 plane
BIN = Path(sys.executable).parent


class PassDone(Exception):
    """Raised once the first pass has been handed to the stand-in scheduler."""


def whole_slabs(blocks: int) -> int:
    """``blocks`` rounded up to whole slabs of blocks: the blocks the input has."""
    return -(-blocks // PER_SLAB) * PER_SLAB


def empty_input(folder: Path, blocks: int) -> Path:
    """A Zarr array of ``blocks`` blocks (rounded up to whole slabs) holding no chunk."""
    import zarr

    slabs = -(-blocks // PER_SLAB)
    path = folder / "empty.zarr"
    zarr.create_array(
        str(path), shape=(BLOCK[0] * slabs, 256, 256), chunks=BLOCK, dtype="uint16",
        fill_value=0,
    )  # fmt: skip
    return path


def _input_spec(path: Path) -> dict:
    return {"path": str(path), "chunks": list(BLOCK), "allow_missing_chunks": True}


def core_config(path: Path, out: Path) -> dict:
    return {
        "input": _input_spec(path),
        "steps": {
            "smooth": {"op": "gaussian", "sigma": 1.0},
            "mask": {"op": "threshold", "method": "otsu"},
            "objects": {"op": "label", "connectivity": 1},
        },
        "output": {"path": str(out), "labels": "objects"},
    }


def threshold_config(path: Path, out: Path, wave_tasks: int | None) -> dict:
    cfg = {
        "input": _input_spec(path),
        "steps": {"mask": {"op": "threshold", "value": 500}},
        "output": {"path": str(out), "labels": "mask"},
    }
    if wave_tasks is not None:
        cfg["engine"] = {"wave_tasks": wave_tasks}
    return cfg


# ---- plan --------------------------------------------------------------------------
def plan_once(blocks: int) -> dict:
    """In this process: plan and hand over the first pass over ``blocks`` blocks."""
    import pipeline
    from pipeline.engine import pass_graph

    handed = {"waves": 0, "tasks": 0, "most": 0}

    def runs_nothing(dsk, keys, **_):
        handed["waves"] += 1
        handed["tasks"] += len(dsk)
        handed["most"] = max(handed["most"], len(dsk))
        return [None] * len(keys)

    compute = pass_graph.PassGraph.compute

    def first_pass_only(graph, keys):
        compute(graph, keys)
        raise PassDone

    with tempfile.TemporaryDirectory() as tmp:
        cfg = core_config(empty_input(Path(tmp), blocks), Path(tmp) / "out")
        t0 = time.perf_counter()
        with (
            mock.patch.object(pass_graph, "scheduler_get", lambda _: runs_nothing),
            mock.patch.object(pass_graph.PassGraph, "compute", first_pass_only),
        ):
            try:
                pipeline.run(cfg)
            except PassDone:
                pass
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "blocks": whole_slabs(blocks),
        "seconds": seconds,
        "peak_rss": peak,
        "waves": handed["waves"],
        "tasks": handed["tasks"],
        "most_tasks_in_a_wave": handed["most"],
    }


def plan_section(counts: list[int]) -> list[dict]:
    rows = []
    print("plan: the core pipeline's first pass, planned and handed to the scheduler")
    print("| blocks | tasks | waves | s | µs a block | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in counts:
        res = subprocess.run(
            [sys.executable, __file__, "--plan-one", str(n)], capture_output=True, text=True
        )
        if res.returncode:
            raise RuntimeError(res.stderr)
        row = json.loads(res.stdout.splitlines()[-1])
        rows.append(row)
        print(
            f"| {row['blocks']:,} | {row['tasks']:,} | {row['waves']:,} | {row['seconds']:.1f} "
            f"| {row['seconds'] / row['blocks'] * 1e6:.0f} | {row['peak_rss'] / 2**20:.0f} |",
            flush=True,
        )
    return rows


# ---- run ---------------------------------------------------------------------------
class PeakRss(threading.Thread):
    """The peak resident memory of each of some processes, sampled every 0.1 s."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], bench_proc.tree_rss(pid))
            time.sleep(0.1)


def threads_once(folder: Path, blocks: int, timeout: float) -> dict:
    """The same run on this process's threads (two), for the work a task does."""
    path = empty_input(folder, blocks)
    cfg = folder / "threshold.json"
    body = threshold_config(path, folder / "out", None)
    body["engine"] = {"workers": 2}
    cfg.write_text(json.dumps(body))
    cmd = [str(BIN / "segpipe"), "run", str(cfg)]
    measured = bench_proc.run(cmd, timeout, folder / "run.log")
    if measured.returncode != 0:
        return {"blocks": whole_slabs(blocks), "passes": "threads", "failed": True,
                "timed_out": measured.timed_out, "seconds": measured.seconds}  # fmt: skip
    summary = json.loads((folder / "out" / "summary.json").read_text())
    return {"blocks": whole_slabs(blocks), "passes": "threads", "seconds": measured.seconds,
            "pass_seconds": summary["timings"], "client_peak_rss": measured.peak_rss}  # fmt: skip


def run_once(folder: Path, blocks: int, waves: bool, timeout: float) -> dict:
    path = empty_input(folder, blocks)
    how = "in waves" if waves else "whole"
    cluster = LoopbackCluster(folder / "cluster")
    try:
        cfg = folder / "threshold.json"
        wave_tasks = None if waves else 10**9
        cfg.write_text(json.dumps(threshold_config(path, folder / "out", wave_tasks)))
        before = cluster.executed()
        pids = {"scheduler": cluster.scheduler.pid}
        pids.update({f"worker {i}": w.pid for i, w in enumerate(cluster.workers)})
        sampler = PeakRss(pids)
        sampler.start()
        cmd = [str(BIN / "segpipe"), "run", str(cfg), "--scheduler", str(cluster.file)]
        measured = bench_proc.run(cmd, timeout, folder / "run.log")
        sampler.done.set()
        sampler.join()
        if measured.returncode != 0:
            return {"blocks": whole_slabs(blocks), "passes": how, "failed": not measured.timed_out,
                    "timed_out": measured.timed_out, "seconds": measured.seconds}  # fmt: skip
        tasks = cluster.executed() - before
        summary = json.loads((folder / "out" / "summary.json").read_text())
    finally:
        cluster.stop()
    return {
        "blocks": whole_slabs(blocks),
        "passes": how,
        "seconds": measured.seconds,
        "pass_seconds": summary["timings"],
        "tasks": tasks,
        "ms_per_task_per_worker": measured.seconds * 2 / tasks * 1e3,
        "client_peak_rss": measured.peak_rss,
        "scheduler_peak_rss": sampler.peak["scheduler"],
        "worker_peak_rss": max(v for k, v in sampler.peak.items() if k.startswith("worker")),
    }


def run_section(counts: list[int], whole_up_to: int, timeout: float) -> list[dict]:
    rows = []
    print("run: a fixed threshold written, on a dask scheduler with two workers")
    print("| blocks | passes | wall s | tasks | ms a task a worker | segpipe MiB "
          "| scheduler MiB | worker MiB |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for n in counts:
        for how in ("threads", "in waves", "whole"):
            if how == "whole" and n > whole_up_to:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                if how == "threads":
                    row = threads_once(Path(tmp), n, timeout)
                else:
                    row = run_once(Path(tmp), n, how == "in waves", timeout)
            rows.append(row)
            if row.get("failed") or row.get("timed_out"):
                state = "timed out" if row["timed_out"] else "failed"
                after = f"{state} after {row['seconds']:.0f} s"
                print(f"| {row['blocks']:,} | {how} | {after} | | | | | |")
                continue
            if how == "threads":
                print(f"| {row['blocks']:,} | threads, no cluster | {row['seconds']:.1f} | | "
                      f"| {row['client_peak_rss'] / 2**20:.0f} | | |", flush=True)  # fmt: skip
                continue
            print(
                f"| {row['blocks']:,} | {how} | {row['seconds']:.1f} | {row['tasks']:,} "
                f"| {row['ms_per_task_per_worker']:.2f} | {row['client_peak_rss'] / 2**20:.0f} "
                f"| {row['scheduler_peak_rss'] / 2**20:.0f} "
                f"| {row['worker_peak_rss'] / 2**20:.0f} |",
                flush=True,
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=["plan", "run"], default=["plan", "run"])
    parser.add_argument("--plan-blocks", type=int, nargs="+", default=[10**3, 10**4, 10**5, 10**6])
    parser.add_argument("--run-blocks", type=int, nargs="+", default=[10**3, 10**4, 10**5])
    parser.add_argument(
        "--whole-up-to",
        type=int,
        default=10**4,
        help="hand whole passes to the scheduler up to this many blocks",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--plan-one", type=int, help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args(argv)
    if args.plan_one:
        print(json.dumps(plan_once(args.plan_one)))
        return 0
    data = {}
    if "plan" in args.sections:
        data["plan"] = plan_section(args.plan_blocks)
    if "run" in args.sections:
        data["run"] = run_section(args.run_blocks, args.whole_up_to, args.timeout)
    if args.record:
        print(f"record: {bench_record.write('blocks', 'bench_blocks.py', data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
