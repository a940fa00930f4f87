"""Tasks per pass: the Dask graph each pass hands its scheduler, for the example configs.

    .venv/bin/python benchmarks/bench_tasks.py                    # print the table
    .venv/bin/python benchmarks/bench_tasks.py --json counts.json # also write the records

Each config of ``configs/`` whose input is present runs once through ``pipeline.run`` with
every pass handed to the threaded scheduler whole (``engine.wave_tasks`` larger than any
pass), under a Dask callback that counts, per scheduler call, the tasks of the graph and
the tasks that ran. The records compare two versions of the engine: the same config must
give the same passes with the same task counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from dask.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


class TaskCounter(Callback):
    """Per scheduler call: tasks in the graph and tasks run."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[int]] = []

    def _start(self, dsk) -> None:
        self.calls.append([len(dsk), 0])

    def _pretask(self, key, dsk, state) -> None:
        self.calls[-1][1] += 1


def _present(cfg: Path) -> bool:
    """Whether the input a config names (relative to the repository) exists."""
    import yaml

    path = yaml.safe_load(cfg.read_text())["input"]["path"]
    return isinstance(path, str) and "*" not in path and (ROOT / path).exists()


def count(cfg: Path, out: Path) -> dict:
    """The passes of one run of ``cfg`` writing into ``out``: graph and run task counts."""
    import pipeline

    overrides = [f"output.path={out}", "engine.wave_tasks=1000000000", "engine.workers=2"]
    counter = TaskCounter()
    with counter:
        res = pipeline.run(str(cfg), overrides, overwrite=True)
    return {
        "config": cfg.name,
        "count": int(res.count),
        "passes": list(res.summary["timings"]),
        "calls": counter.calls,
        "graph_tasks": sum(c[0] for c in counter.calls),
        "run_tasks": sum(c[1] for c in counter.calls),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, help="write the records here")
    args = p.parse_args(argv)
    import os

    os.chdir(ROOT)  # the configs name their inputs relative to the repository
    from pipeline import demo

    data = ROOT / "data"  # what `make run` and `make examples` write
    if not (data / "demo.tif").exists():
        demo.write_demo_tiff(data / "demo.tif")
    if not (data / "demo_2d.tif").exists():
        demo.write_demo_tiff(data / "demo_2d.tif", (512, 512))
    if not (data / "slices").exists():
        demo.write_demo_slices(data / "slices")
    if not (data / "demo_model.onnx").exists():
        demo.write_demo_model(data / "demo_model.onnx")
    records = []
    with tempfile.TemporaryDirectory(prefix="segpipe-tasks-") as tmp:
        for cfg in sorted(CONFIGS.glob("*.yaml")):
            if not _present(cfg):
                print(f"{cfg.name}: input not present, skipped", file=sys.stderr)
                continue
            records.append(count(cfg, Path(tmp) / cfg.stem))
    print("| config | objects | scheduler calls | graph tasks | tasks run | per call (graph/run) |")
    print("|---|---:|---:|---:|---:|---|")
    for r in records:
        calls = " ".join(f"{g}/{n}" for g, n in r["calls"])
        print(
            f"| {r['config']} | {r['count']} | {len(r['calls'])} | {r['graph_tasks']} "
            f"| {r['run_tasks']} | {calls} |"
        )
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
