"""segpipe on a real SLURM cluster (one node on this machine, see tests/slurm_cluster.py):
worker jobs through dask-jobqueue, the sbatch workflows, a job array over a manifest,
and a job cancelled mid-run then submitted again. Every output is byte-identical to a
run on this machine's threads."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

import pipeline
from pipeline.cli import main
from pipeline.engine.journal import progress
from tests.conftest import image_and_table_bytes, kept_objects_config

ROOT = Path(__file__).resolve().parents[1]
SLURM_WORKFLOWS = ROOT / "workflows" / "slurm"
SEGPIPE = str(Path(sys.executable).with_name("segpipe"))


def _stack(path: Path, shape, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    image = ndi.gaussian_filter((rng.random(shape) < 0.002).astype(float), 2.0)
    noisy = image / image.max() * 50000 + rng.normal(0, 300, shape)
    tifffile.imwrite(path, noisy.clip(0, 65535).astype(np.uint16))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    return _stack(tmp_path_factory.mktemp("slurm-data") / "stack.tif", (48, 192, 192), 11)


def _config(path, out: Path, **extra) -> dict:
    return {**kept_objects_config(path, out, (12, 48, 48), sigma=1.5, min_size=20), **extra}


def _write(cfg: dict, path: Path) -> Path:
    path.write_text(json.dumps(cfg))
    return path


def _outputs(out: Path) -> dict[str, bytes]:
    return image_and_table_bytes(out, "kept.csv")


@pytest.fixture(scope="module")
def local(stack, tmp_path_factory):
    """The outputs of a run on this machine's threads."""
    out = tmp_path_factory.mktemp("slurm-local") / "out"
    assert pipeline.run(_config(stack, out)).count > 10
    return _outputs(out)


def _jobs(slurm, name: str) -> list[dict]:
    """The jobs named ``name`` the controller knows, each as its fields."""
    jobs = []
    for line in slurm.run("scontrol", "-o", "show", "job").stdout.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("JobName") == name:
            jobs.append(fields)
    return jobs


def _sbatch(slurm, *args: str, cwd: Path) -> str:
    """Submit a job; its id."""
    res = slurm.run("sbatch", "--parsable", f"--chdir={cwd}", *args)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().split(";")[0]


def test_worker_jobs_through_jobqueue(slurm, stack, local, tmp_path, monkeypatch):
    """``cluster: {jobqueue: {system: slurm}}``: dask-jobqueue submits two worker jobs
    with sbatch, the passes run on them, and the bytes are those of a local run."""
    monkeypatch.setenv("SLURM_CONF", slurm.env["SLURM_CONF"])
    before = {j["JobId"] for j in _jobs(slurm, "dask-worker")}
    logs = tmp_path / "logs"
    jobqueue = {
        "system": "slurm",
        "cores": 1,
        "processes": 1,
        "memory": "1GiB",
        "walltime": "00:10:00",
        "queue": "debug",
        "jobs": 2,
        "log_directory": str(logs),
        "local_directory": str(tmp_path / "spill"),
    }
    out = tmp_path / "jobqueue"
    cfg = _write(_config(stack, out, cluster={"jobqueue": jobqueue}), tmp_path / "c.json")
    assert main(["run", str(cfg)]) == 0
    assert _outputs(out) == local
    jobs = [j for j in _jobs(slurm, "dask-worker") if j["JobId"] not in before]
    assert len(jobs) == 2, jobs
    # Both jobs ran a worker that joined the scheduler (each job's log says so), and
    # they were ended with the run.
    for job in jobs:
        err = (logs / f"dask-worker-{job['JobId']}.err").read_text()
        assert "Registered to:" in err, err
    states = {slurm.wait_until_done(j["JobId"], seconds=60) for j in jobs}
    assert states <= {"CANCELLED", "COMPLETED"}, states


def test_sbatch_workflow(slurm, stack, local, tmp_path):
    """``sbatch workflows/slurm/segpipe.sbatch CONFIG``: one job, a Dask LocalCluster
    inside its allocation."""
    out = tmp_path / "sbatch"
    cfg = _write(_config(stack, out), tmp_path / "c.json")
    log = tmp_path / "job.log"
    job = _sbatch(
        slurm, "--wait", f"--cpus-per-task={min(2, slurm.cpus)}", "--mem=2G", f"--output={log}",
        f"--export=ALL,SEGPIPE={SEGPIPE}", str(SLURM_WORKFLOWS / "segpipe.sbatch"), str(cfg),
        cwd=tmp_path,
    )  # fmt: skip
    assert slurm.job_state(job) == "COMPLETED", log.read_text()
    assert _outputs(out) == local
    assert "dashboard: http" in log.read_text()  # the job's own LocalCluster


def test_job_array_over_a_manifest(slurm, tmp_path):
    """``sbatch --array=0-2 segpipe-array.sbatch CONFIG``: task i runs row i of the
    manifest; each input's outputs equal a local batch run's; a run of the config
    afterwards skips all three and writes the batch table."""
    data = tmp_path / "incoming"
    data.mkdir()
    rows = ["path,name"]
    for i in range(3):
        _stack(data / f"scan{i}.tif", (24, 96, 96), 20 + i)
        rows.append(f"scan{i}.tif,scan{i}")
    (data / "manifest.csv").write_text("\n".join(rows) + "\n")

    def batch(out: Path) -> dict:
        cfg = _config(data / "manifest.csv", out / "{name}")
        cfg["input"]["chunks"] = [8, 48, 48]
        return cfg

    assert main(["run", str(_write(batch(tmp_path / "local"), tmp_path / "local.json"))]) == 0
    cfg = _write(batch(tmp_path / "array"), tmp_path / "array.json")
    job = _sbatch(
        slurm, "--wait", "--array=0-2", "--cpus-per-task=1", "--mem=1G",
        f"--output={tmp_path}/array-%a.log", f"--export=ALL,SEGPIPE={SEGPIPE}",
        str(SLURM_WORKFLOWS / "segpipe-array.sbatch"), str(cfg),
        cwd=tmp_path,
    )  # fmt: skip
    states = slurm.job_state(job).split(",")
    logs = [(tmp_path / f"array-{i}.log").read_text() for i in range(3)]
    assert states == ["COMPLETED"] * 3, logs
    for i in range(3):
        name = f"scan{i}"
        assert _outputs(tmp_path / "array" / name) == _outputs(tmp_path / "local" / name)
    assert not (tmp_path / "array" / "batch.csv").exists()  # tasks run one input each
    assert main(["run", str(cfg)]) == 0
    table = (tmp_path / "array" / "batch.csv").read_text()
    assert table.count(",skipped,") == 3, table


def _passes(journal: Path) -> dict[str, tuple[int, int]]:
    return {p["pass"]: (p["done"], p["blocks"]) for p in progress(journal)}


def _wait_until_no_process_runs(argument: str, seconds: float = 60) -> None:
    """Wait until no process of this machine has ``argument`` on its command line."""
    deadline = time.monotonic() + seconds
    while True:
        running = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if argument.encode() in cmdline.read_bytes().split(b"\0"):
                    running.append(cmdline.parent.name)
            except OSError:  # the process ended meanwhile
                pass
        if not running:
            return
        assert time.monotonic() < deadline, f"processes {running} still run {argument}"
        time.sleep(0.1)


def test_cancelled_job_resubmitted_resumes(slurm, stack, local, tmp_path):
    """A job cancelled mid-run (``scancel``, as at its time limit or on preemption) and
    submitted again: the same bytes, and the blocks the cancelled job finished are
    loaded from its checkpoints, not computed again."""
    out = tmp_path / "cancelled"
    cfg = _write(_config(stack, out), tmp_path / "c.json")
    args = [
        f"--cpus-per-task={min(2, slurm.cpus)}", "--mem=2G", f"--export=ALL,SEGPIPE={SEGPIPE}",
        str(SLURM_WORKFLOWS / "segpipe.sbatch"), str(cfg),
    ]  # fmt: skip
    job = _sbatch(slurm, f"--output={tmp_path}/first.log", *args, cwd=tmp_path)
    journal = out / ".journal"
    deadline = time.monotonic() + 300
    while not any(
        label.startswith(("002", "003")) and 0 < done < total
        for label, (done, total) in _passes(journal).items()
    ):  # a pass after the first under way
        assert slurm.job_state(job) in ("PENDING", "RUNNING"), (tmp_path / "first.log").read_text()
        assert time.monotonic() < deadline, "the job never got under way"
        time.sleep(0.005)
    assert slurm.run("scancel", job).returncode == 0
    assert slurm.wait_until_done(job) == "CANCELLED"
    _wait_until_no_process_runs(str(cfg))
    before = _passes(journal)
    assert not (out / "summary.json").exists()
    assert any(0 < done < total for done, total in before.values()), before

    again = _sbatch(slurm, "--wait", f"--output={tmp_path}/second.log", *args, cwd=tmp_path)
    assert slurm.job_state(again) == "COMPLETED", (tmp_path / "second.log").read_text()
    assert _outputs(out) == local
    resumed = json.loads((out / "summary.json").read_text())["resumed_blocks"]
    for folder, (done, _total) in before.items():
        if done:
            assert resumed.get(folder) == done, (folder, resumed, before)
