"""The README's benchmark tables, from the latest record of each benchmark.

    .venv/bin/python benchmarks/tables.py                  # every benchmark recorded
    .venv/bin/python benchmarks/tables.py core-quarter     # some of them, by name
    .venv/bin/python benchmarks/tables.py --results DIR    # records elsewhere

Records are written by the benchmarks' ``--record`` (see ``bench_record.py``); each is
rendered with the table its benchmark prints, under a line naming the volume, the command
line, the commit and the machine.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_record  # noqa: E402

TITLES = {
    "segpipe": "segpipe",
    "dask-image": "dask-image (stock)",
    "dask-image-fixed": "dask-image, recompute fixed",
    "whole": "whole volume (scipy/skimage)",
}
ANCHORS = {  # the methods others are compared with, and their column
    "whole": "× whole volume",
    "dask-image": "× dask-image",
    "dask-image-fixed": "× dask-image fixed",
}


# ---- the core benchmark ------------------------------------------------------------
def _wall(r: dict) -> str:
    if r["ok"]:
        return f"{r['wall_s']:.1f}"
    if r["timed_out"]:
        return f"did not finish in {r['timeout_s']:g} s"
    return "failed"


def _ratio(r: dict, anchor: dict) -> str:
    if r["ok"] and anchor["ok"]:
        return f"{r['wall_s'] / anchor['wall_s']:.2f}"
    if r["ok"] and anchor["timed_out"]:
        return f"< {r['wall_s'] / anchor['timeout_s']:.3f}"
    if r["timed_out"] and anchor["ok"]:
        return f"> {r['timeout_s'] / anchor['wall_s']:.1f}"
    return "-"


def core_table(methods: list[dict]) -> str:
    """The core benchmark's methods (``bench_core.method_entry``) as a markdown table: a
    ratio column for each anchor method run."""
    by_name = {r["method"]: r for r in methods}
    anchors = [m for m in ANCHORS if m in by_name]
    head = "| method | wall s | peak RSS MiB | count |"
    head += "".join(f" {ANCHORS[a]} |" for a in anchors)
    rows = [head, "|---|---:|---:|---:|" + "---:|" * len(anchors)]
    for r in methods:
        rss = f"{r['peak_rss_mib']:.0f}" if r["ok"] else f"≥ {r['peak_rss_mib']:.0f}"
        count = str(r["objects"]) if r["ok"] else "-"
        row = f"| {TITLES.get(r['method'], r['method'])} | {_wall(r)} | {rss} | {count} |"
        rows.append(row + "".join(f" {_ratio(r, by_name[a])} |" for a in anchors))
    return "\n".join(rows)


def plan_table(plan: dict) -> str:
    """The plan-only run (``bench_methods.run_plan``'s result) as a markdown table."""
    st = plan["stages"]
    rows = [
        "| step | seconds | tasks | input reads |",
        "|---|---:|---:|---:|",
        f"| describe_plan | {st['describe_plan']:.2f} | | |",
        f"| load config + Engine | {st['engine']:.2f} | | |",
        f"| program(mask) × {plan['blocks']} blocks | {st['program x blocks']:.2f} "
        f"| {plan['program_tasks']} | {plan['program_reads']} |",
    ]
    for p in plan["passes"]:
        rows.append(
            f"| build pass {p['pass']!r} | {p['build_s']:.2f} | {p['tasks']} | {p['input_reads']} |"
        )
    builds = sum(p["build_s"] for p in plan["passes"])
    rows.append(f"| all passes built | {builds:.2f} | | |")
    rows.append(f"| in process, with counting the graphs | {plan['seconds']:.2f} | | |")
    return "\n".join(rows)


# ---- records -----------------------------------------------------------------------
def shape_text(shape) -> str:
    """``512³`` for a cube, ``512×1024×1024`` otherwise."""
    if len(set(shape)) == 1:
        return f"{shape[0]}{'²³'[len(shape) - 2] if len(shape) in (2, 3) else ''}"
    return "×".join(map(str, shape))


def machine_text(m: dict) -> str:
    mem = f", {m['memory_gib']:.0f} GiB RAM" if m.get("memory_gib") else ""
    libs = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    return f"{m['arch']}, {m['cpu_count']} cores{mem}, Python {m['python']}; {libs}"


def provenance(rec: dict) -> str:
    """When, from which commit and with which command line a record was made."""
    git = rec.get("git") or {}
    commit = (git.get("commit") or "unknown")[:9] + (" with changes" if git.get("dirty") else "")
    command = " ".join(rec["command"])
    return f"`{command}`, recorded {rec['recorded_at'][:16].replace('T', ' ')}, commit {commit}"


def blocks_of(shape, chunk: int) -> int:
    return math.prod(-(-s // chunk) for s in shape)


def render_core(rec: dict) -> str:
    s = rec["setup"]
    shape = s["shape"]
    head = (
        f"**{shape_text(shape)} {s['dtype']} ({s['gib']:.3g} GiB), "
        f"{blocks_of(shape, s['chunk'])} blocks of {s['chunk']}³** ({provenance(rec)}):"
    )
    return "\n\n".join([head, machine_text(rec["machine"]), core_table(rec["methods"])])


def render_plan(rec: dict) -> str:
    s, plan = rec["setup"], rec["plan"]
    head = (
        f"**Graph construction only**: {shape_text(s['shape'])} in {s['chunk']}³ blocks "
        f"({plan['blocks']} blocks), nothing computed ({provenance(rec)}):"
    )
    tail = f"peak RSS {rec['peak_rss_mib']:.0f} MiB; process {rec['process_s']:.1f} s"
    return "\n\n".join([head, machine_text(rec["machine"]), plan_table(plan), tail])


def render_scale(rec: dict) -> str:
    s = rec["setup"]
    head = f"**segpipe at scale**, sections {', '.join(s['sections'])} ({provenance(rec)}):"
    parts = [head, machine_text(rec["machine"])]
    # Each section's table under a heading of its own, one level down.
    parts += [section["text"].replace("### ", "#### ") for section in rec["sections"].values()]
    return "\n\n".join(parts)


RENDER = {"core": render_core, "core-plan": render_plan, "scale": render_scale}


def render(rec: dict) -> str:
    """One record as its README table, under its heading."""
    how = RENDER.get(rec["benchmark"])
    if how is None:
        return f"({rec['name']}: no table for benchmark {rec['benchmark']!r})"
    return how(rec)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="records to render (default: all)")
    p.add_argument("--results", type=Path, default=bench_record.RESULTS)
    args = p.parse_args(argv)
    latest = bench_record.latest(bench_record.load(args.results))
    missing = [n for n in args.names if n not in latest]
    if missing:
        print(f"no record of {', '.join(missing)} in {args.results}", file=sys.stderr)
        return 1
    names = args.names or list(latest)
    if not names:
        print(f"no records in {args.results}", file=sys.stderr)
        return 1
    print("\n\n".join(f"### {n}\n\n{render(latest[n])}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
