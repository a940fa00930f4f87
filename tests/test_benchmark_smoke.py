"""The core benchmark runs end to end at its smallest size (a smoke test, not a timing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_core.py"


def test_core_benchmark_small(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--small", "--work", str(tmp_path), "--timeout", "300"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    # Header and one row per method, every method finished with the same count.
    assert len(table) == 5, proc.stdout
    assert "did not finish" not in proc.stdout and "WARNING" not in proc.stdout
    counts = {row.split("|")[4].strip() for row in table[1:]}
    assert len(counts) == 1 and counts.pop().isdigit()


def test_objects_benchmark_small(tmp_path):
    bench = BENCH.parent / "bench_objects.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--objects", "8000", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 4 and "did not finish" not in proc.stdout  # header and three runs
    assert "integer columns equal" in proc.stdout


def test_scale_benchmark_quick(tmp_path):
    bench = BENCH.parent / "bench_scale.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--quick", "--sections", "objects,checkpoints",
         "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "### Object count" in proc.stdout and "journal on" in proc.stdout
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| 1")]
    assert len(rows) == 2 and all(" nan " not in r for r in rows)


def test_kernel_bound_steps_small(tmp_path):
    """The no-engine runs between the kernel bound and segpipe's time do segpipe's work:
    the passes' own histogram gives segpipe's threshold, and a wrong one is refused."""
    import pytest

    sys.path.insert(0, str(BENCH.parent))
    import bench_bound
    import bench_methods
    import bench_volume

    import pipeline

    volume = tmp_path / "volume.zarr"
    bench_volume.ensure(volume, (128, 256, 256), log=lambda *_: None)
    res = pipeline.run(bench_methods.segpipe_config(str(volume), str(tmp_path / "out")))
    threshold = res.summary["thresholds"]["mask"]
    seconds, blocks = bench_bound.chained(volume, threshold, 2)
    assert blocks == 4 and seconds > 0
    seconds, each = bench_bound.in_passes(volume, threshold, 2)
    assert list(each) == ["range", "histogram", "labelling", "write"]
    assert seconds == pytest.approx(sum(each.values()))
    with pytest.raises(RuntimeError, match="not segpipe's"):
        bench_bound.in_passes(volume, threshold * 1.01, 2)


def test_object_store_benchmark_small(tmp_path):
    """Every case of the object-store benchmark (local, S3, a two-worker cluster, both
    halo exchanges) runs and finds the same objects."""
    bench = BENCH.parent / "bench_object_store.py"
    cmd = [sys.executable, str(bench), "--shape", "32", "96", "96", "--chunks", "32",
           "--work", str(tmp_path), "--timeout", "300"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = [line for line in proc.stdout.splitlines() if " objects " in line]
    assert len(runs) == 5 and all(line.endswith(" ok") for line in runs), proc.stdout
    counts = {line.split(" objects ")[1].split()[0] for line in runs}
    assert len(counts) == 1 and counts.pop().isdigit(), proc.stdout


def test_model_benchmark_runs():
    from tests.model_packages import unet_or_skip

    unet_or_skip()
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("bioimageio.spec", reason="bioimageio.spec is not installed")
    if not (BENCH.parents[2] / "shared" / "data" / "stardist_dsb_crop").exists():
        pytest.skip("../shared/data is missing (the shared real-data folder is not here)")
    bench = BENCH.parent / "bench_model.py"
    proc = subprocess.run([sys.executable, str(bench)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = yaml.safe_load(proc.stdout)
    assert all(row["bytes_equal_to_one_block"] for row in results["agreement"]["test_input"])
    assert results["seams"]["pixels"] == 1024 * 1024
    assert len(results["accuracy"]["dsb_f1_iou_0.5"]) == 5
    assert results["speed"]["tiles"] == 9


def test_blocks_benchmark_small():
    """Both sections at their smallest: a pass planned over 256 and 512 blocks (more
    tasks for more blocks), and a run of 256 blocks on threads and on a real scheduler
    with two workers, in waves and whole."""
    bench = BENCH.parent / "bench_blocks.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--plan-blocks", "256", "512", "--run-blocks", "256",
         "--whole-up-to", "256", "--timeout", "300"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in proc.stdout.splitlines() if line.startswith("| ")]
    plan = [r for r in rows if len(r) == 6 and r[0].strip()[0].isdigit()]
    assert [r[0].strip() for r in plan] == ["256", "512"], proc.stdout
    assert int(plan[1][1].replace(",", "")) > int(plan[0][1].replace(",", "")) > 256
    run = [r for r in rows if len(r) == 8 and r[0].strip()[0].isdigit()]
    assert [r[1].strip() for r in run] == ["threads, no cluster", "in waves", "whole"], proc.stdout
    # Both cluster runs ran the same tasks.
    assert run[1][3] == run[2][3] and int(run[1][3].replace(",", "")) > 256, proc.stdout
