"""Benchmark results as data: the core benchmark's ``--record`` writes a JSON record of a
tiny run, and ``tables.py`` renders it as the table the benchmark printed; the plan-only
run builds the engine's passes without computing them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))


def run(*args: str, timeout: float = 600) -> str:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_core_run_recorded_and_tabled(tmp_path):
    results = tmp_path / "results"
    printed = run(
        str(BENCH / "bench_core.py"), "--small", "--methods", "segpipe,whole", "--record",
        "--results", str(results), "--work", str(tmp_path / "work"), "--timeout", "300",
    )  # fmt: skip
    (path,) = results.glob("core-small-*.json")
    rec = json.loads(path.read_text())
    assert rec["name"] == "core-small" and rec["benchmark"] == "core"
    assert rec["command"][0] == "bench_core.py" and "--record" in rec["command"]
    assert "commit" in rec["git"] and "dirty" in rec["git"]
    m = rec["machine"]
    assert m["cpu_count"] >= 1 and m["memory_gib"] > 0 and m["python"]
    assert all(m["versions"][p] for p in ("dask", "numpy"))
    assert rec["setup"]["shape"] == [128, 256, 256]
    assert [r["method"] for r in rec["methods"]] == ["segpipe", "whole"]
    for r in rec["methods"]:
        assert r["ok"] and r["wall_s"] > 0 and r["peak_rss_mib"] > 0
    assert len({r["objects"] for r in rec["methods"]}) == 1
    rendered = run(str(BENCH / "tables.py"), "--results", str(results))
    assert rendered.startswith("### core-small")
    assert table_lines(rendered) == table_lines(printed)
    assert "× whole volume" in rendered and "× dask-image" not in rendered


def test_plan_only_recorded(tmp_path):
    """The plan-only run at 4³ blocks: the program graph of the mask (a task and a halo
    task per block) and the three passes of a run, recorded and rendered."""
    results = tmp_path / "results"
    run(
        str(BENCH / "bench_core.py"), "--plan-only", "--plan-size", "256", "--plan-chunk",
        "64", "--record", "--results", str(results), "--work", str(tmp_path / "work"),
    )  # fmt: skip
    (path,) = results.glob("core-plan-256-64-*.json")
    plan = json.loads(path.read_text())["plan"]
    assert plan["blocks"] == 64 and plan["program_tasks"] == 128
    assert plan["program_reads"] == 64
    assert [p["pass"] for p in plan["passes"]] == ["range mask", "histogram mask", "label objects"]
    summaries, counts, pairs = 64, 64, 63  # at least, with halo tasks where not kept
    assert plan["passes"][-1]["tasks"] >= summaries + counts + pairs
    assert all(p["input_reads"] <= 2 * plan["blocks"] for p in plan["passes"])
    rendered = run(str(BENCH / "tables.py"), "--results", str(results), "core-plan-256-64")
    assert "| program(mask) × 64 blocks |" in rendered


def test_latest_record_of_each_name(tmp_path):
    import bench_record
    import tables

    first = bench_record.write("x", "nothing", {}, tmp_path)
    second = bench_record.write("x", "nothing", {}, tmp_path)
    other = bench_record.write("y", "nothing", {}, tmp_path)
    assert second.name == first.stem + "-2.json"
    latest = bench_record.latest(bench_record.load(tmp_path))
    assert list(latest) == ["x", "y"]
    assert latest["x"]["file"] == second.name and latest["y"]["file"] == other.name
    assert "no table" in tables.render(latest["x"])
