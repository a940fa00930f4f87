"""Core benchmark: Gaussian -> Otsu -> label on a Zarr volume, segpipe against two anchors.

    .venv/bin/python benchmarks/bench_core.py --small           # CI smoke test (< 2 min)
    .venv/bin/python benchmarks/bench_core.py --size quarter    # 512³
    .venv/bin/python benchmarks/bench_core.py --size full       # 512×1024×1024, 1 GiB uint16
    .venv/bin/python benchmarks/bench_core.py --plan-only       # graph build of 2048³ / 64³
    .venv/bin/python benchmarks/bench_core.py --size quarter --record  # also as data

Each method runs in its own process under a time limit; peak RSS is sampled over that
process and its children every 0.1 s. The volume is built once under benchmarks/work/.
Ratios are a method's wall time divided by the anchor's. With ``--record`` the results go
to ``benchmarks/results/core-<size>-<date>.json`` (``core-plan-<date>.json`` for
``--plan-only``; see ``bench_record.py``), which ``benchmarks/tables.py`` renders as the
README's tables. Not a timed test: it reports.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import bench_proc
import bench_record
import bench_volume
import tables

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
WORKER = HERE / "bench_methods.py"
METHODS = ("segpipe", "dask-image", "dask-image-fixed", "whole")


def _machine() -> str:
    return tables.machine_text(bench_record.machine())


def run_method(method: str, volume: Path, timeout: float) -> dict:
    """Run one method in a fresh process; its result merged with time and memory."""
    out = WORK / f"out_{method.replace('-', '')}"
    result = WORK / f"result_{method}.json"
    log = WORK / f"log_{method}.txt"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, str(WORKER), method, str(volume), str(out), str(result)]
    print(f"running {method} ...", flush=True)
    m = bench_proc.run(cmd, timeout, log)
    info = {"method": method, "timed_out": m.timed_out, "returncode": m.returncode}
    info.update(process_s=m.seconds, peak_rss=m.peak_rss, timeout=timeout)
    if not m.timed_out and m.returncode == 0 and result.exists():
        info.update(json.loads(result.read_text()))
        info["ok"] = True
    else:
        info["ok"] = False
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        info["error"] = "\n".join(tail)
    status = (
        f"{info['seconds']:.1f} s"
        if info["ok"]
        else (f"did not finish in {timeout:g} s" if m.timed_out else "failed")
    )
    print(f"  {method}: {status}, peak RSS {m.peak_rss / 2**20:.0f} MiB", flush=True)
    return info


def method_entry(r: dict) -> dict:
    """A method's result as recorded and tabled: wall seconds (in its process, imports
    excluded), peak RSS MiB (its process tree), objects found."""
    return {
        "method": r["method"],
        "ok": r["ok"],
        "timed_out": r["timed_out"],
        "returncode": r["returncode"],
        "timeout_s": r["timeout"],
        "wall_s": r.get("seconds") if r["ok"] else None,
        "process_s": r["process_s"],
        "peak_rss_mib": r["peak_rss"] / 2**20,
        "objects": r.get("count") if r["ok"] else None,
        "threshold": r.get("threshold"),
        "stages": r.get("stages", {}),
    }


def table(results: dict[str, dict]) -> str:
    """The results as a markdown table."""
    return tables.core_table([method_entry(r) for r in results.values()])


def details(results: dict[str, dict]) -> list[str]:
    lines = []
    for name, r in results.items():
        if r["ok"]:
            stages = ", ".join(f"{k} {v:.2f}" for k, v in r.get("stages", {}).items())
            t = r.get("threshold")
            t = f"{t:.4f}" if isinstance(t, float) else str(t)
            lines.append(
                f"- {name}: threshold {t}; process {r['process_s']:.1f} s "
                f"(incl. start-up); stages s: {stages}"
            )
        elif not r["timed_out"]:
            lines.append(f"- {name}: failed (exit {r['returncode']}):\n{r['error']}")
    return lines


def check_counts(results: dict[str, dict]) -> str | None:
    counts = {n: r["count"] for n, r in results.items() if r["ok"]}
    if len(set(counts.values())) > 1:
        return "WARNING: object counts differ: " + ", ".join(f"{n} {c}" for n, c in counts.items())
    return None


def bench(args) -> int:
    size = "small" if args.small else args.size
    shape = bench_volume.SIZES[size]
    volume = WORK / f"volume_{'x'.join(map(str, shape))}.zarr"
    bench_volume.ensure(volume, shape, rebuild=args.rebuild)
    results = {m: run_method(m, volume, args.timeout) for m in args.methods}
    nbytes = 2 * shape[0] * shape[1] * shape[2]
    print()
    print(
        f"### Gaussian σ=1 → Otsu → label (conn. 1): {'×'.join(map(str, shape))} uint16 "
        f"({nbytes / 2**30:.3g} GiB), {bench_volume.CHUNK}³ chunks"
    )
    print(_machine())
    print()
    print(table(results))
    print()
    print("wall s: the method in its process, imports excluded; ratios: wall / anchor wall.")
    for line in details(results):
        print(line)
    warning = check_counts(results)
    if warning:
        print(warning)
    if args.record:
        setup = {
            "size": size,
            "shape": list(shape),
            "dtype": "uint16",
            "gib": nbytes / 2**30,
            "chunk": bench_volume.CHUNK,
            "timeout_s": args.timeout,
            "methods": list(args.methods),
        }
        data = {"setup": setup, "methods": [method_entry(r) for r in results.values()]}
        data["warning"] = warning
        path = bench_record.write(f"core-{size}", "core", data, args.results)
        print(f"recorded {path}")
    return 0 if all(r["ok"] or r["timed_out"] for r in results.values()) and not warning else 1


def plan_only(args) -> int:
    n, c = args.plan_size, args.plan_chunk
    volume = WORK / f"empty_{n}_{c}.zarr"
    bench_volume.ensure_empty(volume, (n, n, n), c)
    res = WORK / "result_plan.json"
    res.unlink(missing_ok=True)
    cmd = [sys.executable, str(WORKER), "plan", str(volume), str(WORK / "out_plan"), str(res)]
    m = bench_proc.run(cmd, args.timeout, WORK / "log_plan.txt")
    print(f"\n### segpipe graph build only: {n}³ uint16 (empty Zarr), {c}³ blocks")
    print(_machine() + "\n")
    if m.timed_out or m.returncode != 0 or not res.exists():
        why = f"did not finish in {args.timeout:g} s" if m.timed_out else "failed"
        print(f"plan: {why}; peak RSS {m.peak_rss / 2**20:.0f} MiB")
        print((WORK / "log_plan.txt").read_text(errors="replace")[-2000:])
        return 1
    r = json.loads(res.read_text())
    print(tables.plan_table(r))
    print(f"\npeak RSS {m.peak_rss / 2**20:.0f} MiB; process {m.seconds:.1f} s incl. start-up")
    # A block is read once for its own work and once for the slabs its neighbours need.
    bad = [p for p in r["passes"] if p["input_reads"] > 2 * r["blocks"]]
    if bad:
        print("WARNING: some pass reads an input block more than twice")
    if args.record:
        setup = {"shape": [n, n, n], "dtype": "uint16", "chunk": c, "timeout_s": args.timeout}
        data = {"setup": setup, "plan": r, "peak_rss_mib": m.peak_rss / 2**20}
        data.update(process_s=m.seconds, warning=bool(bad))
        name = "core-plan" if (n, c) == (2048, 64) else f"core-plan-{n}-{c}"
        path = bench_record.write(name, "core-plan", data, args.results)
        print(f"recorded {path}")
    return 1 if bad else 0


def main(argv=None) -> int:
    global WORK
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(bench_volume.SIZES), default="full")
    p.add_argument("--small", action="store_true", help="128×256×256 (CI smoke test)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per method")
    p.add_argument(
        "--methods",
        type=lambda s: [m.strip() for m in s.split(",") if m.strip()],
        default=list(METHODS),
        help="comma-separated subset of " + ",".join(METHODS),
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild the volume")
    p.add_argument("--work", type=Path, default=HERE / "work", help="folder of volumes, outputs")
    p.add_argument("--plan-only", action="store_true", help="time graph construction only")
    p.add_argument("--plan-size", type=int, default=2048)
    p.add_argument("--plan-chunk", type=int, default=64)
    p.add_argument("--record", action="store_true", help="write the results as a JSON record")
    p.add_argument(
        "--results",
        type=Path,
        default=bench_record.RESULTS,
        help="folder of the records (default benchmarks/results)",
    )
    args = p.parse_args(argv)
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        p.error(f"--methods: unknown {unknown}; expected some of {list(METHODS)}")
    WORK = args.work.resolve()
    WORK.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rc = plan_only(args) if args.plan_only else bench(args)
    print(f"\n(benchmark session {time.perf_counter() - t0:.0f} s)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
