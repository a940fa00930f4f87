"""Running on a real Dask scheduler with worker processes on loopback, a LocalCluster,
and generated batch-job scripts (no queue system needed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import dask.threaded
import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

import pipeline
from pipeline.cli import main
from pipeline.engine.cluster import _client_get, cluster_client
from pipeline.errors import ConfigError
from tests.conftest import image_and_table_bytes, kept_objects_config

DASK = Path(sys.executable).with_name("dask")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    rng = np.random.default_rng(3)
    image = ndi.gaussian_filter((rng.random((32, 96, 96)) < 0.003).astype(float), 1.5)
    path = root / "stack.tif"
    tifffile.imwrite(path, (image / image.max() * 60000).astype(np.uint16))
    return path


def _config(stack, out):
    return kept_objects_config(stack, out, (8, 32, 32), sigma=1.0, min_size=5)


class Cluster:
    """``dask scheduler`` and ``dask worker`` processes on loopback."""

    def __init__(self, folder: Path, workers: int = 2):
        self.file = folder / "scheduler.json"
        env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        common = ["--no-dashboard"]
        self.scheduler = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--scheduler-file", str(self.file), *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        self.workers = [
            subprocess.Popen(
                [
                    DASK,
                    "worker",
                    "--scheduler-file",
                    str(self.file),
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--host",
                    "127.0.0.1",
                    *common,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )  # fmt: skip
            for _ in range(workers)
        ]
        from distributed import Client

        deadline = time.time() + 60
        while not self.file.exists() and time.time() < deadline:
            time.sleep(0.1)
        with Client(scheduler_file=str(self.file), timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        self.address = json.loads(self.file.read_text())["address"]

    def close(self):
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


def _outputs(out: Path) -> dict[str, bytes]:
    return image_and_table_bytes(out, "kept.csv")


def test_scheduler_and_workers_give_the_same_bytes(stack, tmp_path, cluster, capsys):
    local = pipeline.run(_config(stack, tmp_path / "local"))
    assert local.count > 10
    want = _outputs(tmp_path / "local")
    # By scheduler file, from the command line.
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(_config(stack, tmp_path / "by-file")))
    assert main(["run", str(cfg), "--scheduler", str(cluster.file)]) == 0
    assert f"objects: {local.count}" in capsys.readouterr().out
    assert _outputs(tmp_path / "by-file") == want
    # By address, from the config's cluster section; the workers did the work.
    spec = {**_config(stack, tmp_path / "by-address"), "cluster": {"address": cluster.address}}
    from distributed import Client

    with Client(cluster.address) as client:
        before = client.run(lambda dask_worker: dask_worker.state.executed_count)
        # Passes go to the cluster's scheduler, their results kept on the workers.
        assert cluster_client(client.get) is client is cluster_client(_client_get(client))
        assert cluster_client(dask.threaded.get) is None
    pipeline.run(spec)
    with Client(cluster.address) as client:
        after = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(after) == 2 and all(after[w] > before[w] for w in after), (before, after)
    assert _outputs(tmp_path / "by-address") == want


def test_kept_halo_files_serve_the_workers(stack, tmp_path, cluster):
    """With room for the source's halo files (4.8 bytes a voxel here) and the bin codes (2)
    but not the Gaussian (8), the workers write halo files one pass and read them the
    next; the bytes are those of a local run keeping the Gaussian."""
    local = pipeline.run(_config(stack, tmp_path / "local"))
    voxels = 32 * 96 * 96
    spec = {
        **_config(stack, tmp_path / "halos"),
        "cluster": {"address": cluster.address},
        "engine": {"scratch_budget": str(7 * voxels)},
    }
    assert pipeline.run(spec).count == local.count
    assert _outputs(tmp_path / "halos") == _outputs(tmp_path / "local")


def test_losing_a_worker_changes_nothing(stack, tmp_path, cluster):
    local = pipeline.run(_config(stack, tmp_path / "local"))
    want = _outputs(tmp_path / "local")
    out = tmp_path / "lossy"
    spec = {**_config(stack, out), "cluster": {"scheduler_file": str(cluster.file)}}
    killed = threading.Event()

    def kill_when_busy():
        # Kill one worker once the run has started keeping blocks between passes.
        deadline = time.time() + 120
        while time.time() < deadline:
            scratch = out / ".scratch"
            if scratch.exists() and any(scratch.rglob("*.blk")):
                os.kill(cluster.workers[0].pid, signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.01)

    t = threading.Thread(target=kill_when_busy)
    t.start()
    res = pipeline.run(spec)
    t.join()
    assert killed.is_set() and cluster.workers[0].wait(10) == -signal.SIGKILL
    assert res.count == local.count
    assert _outputs(out) == want


def test_local_cluster(stack, tmp_path, capsys):
    local = pipeline.run(_config(stack, tmp_path / "local"))
    spec = {
        **_config(stack, tmp_path / "lc"),
        "cluster": {"local": {"workers": 2, "memory_limit": "1GiB"}},
    }
    res = pipeline.run(spec)
    assert res.count == local.count
    assert _outputs(tmp_path / "lc") == _outputs(tmp_path / "local")
    assert "dashboard: http" in capsys.readouterr().err


class SchedulerTasks:
    """The most tasks the scheduler held at once while sampled (every 10 ms)."""

    def __init__(self, address: str) -> None:
        from distributed import Client

        self.client = Client(address)
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._stop.is_set():
            n = self.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            self.most = max(self.most, n)
            time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.client.close()


def test_passes_go_to_the_scheduler_in_waves(stack, tmp_path, cluster):
    """With waves of 40 tasks the scheduler holds a few waves' tasks at a time, a pass
    handed to it whole (waves larger than any pass) several times as many; the bytes
    are the same, and the same as a local run's."""

    def config(out: Path) -> dict:
        return {**_config(stack, out), "input": {"path": str(stack), "chunks": [8, 16, 16]}}

    local = pipeline.run(config(tmp_path / "local"))  # 144 blocks
    want = _outputs(tmp_path / "local")
    most = {}
    for waves in (40, 10**6):
        out = tmp_path / f"waves-{waves}"
        spec = {
            **config(out),
            "cluster": {"address": cluster.address},
            "engine": {"wave_tasks": waves},
        }
        with SchedulerTasks(cluster.address) as tasks:
            assert pipeline.run(spec).count == local.count
        most[waves] = tasks.most
        assert _outputs(out) == want
    assert most[40] < 200 < 4 * 144 < most[10**6], most


def test_unreachable_scheduler_is_one_line(stack, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    body = _config(stack, tmp_path / "o")
    body["cluster"] = {"address": "tcp://127.0.0.1:9", "timeout": 2}
    cfg.write_text(json.dumps(body))
    assert main(["run", str(cfg)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "error: cluster: cannot connect to tcp://127.0.0.1:9"
    )
    assert not (tmp_path / "o" / "summary.json").exists()
    assert main(["run", str(cfg), "--scheduler", str(tmp_path / "missing.json")]) == 3
    assert "cannot connect to" in capsys.readouterr().err


def test_cluster_kinds_are_exclusive(stack, tmp_path):
    body = _config(stack, tmp_path / "o")
    body["cluster"] = {"address": "tcp://127.0.0.1:9", "local": {}}
    with pytest.raises(ConfigError, match="cluster: .*give one of local, address"):
        pipeline.run(body)
    with pytest.raises(ConfigError, match="--scheduler and --cluster"):
        pipeline.run(body, scheduler="tcp://x:1", cluster="local")
    with pytest.raises(ConfigError, match="--cluster: expected one of"):
        pipeline.run(_config(stack, tmp_path / "o"), cluster="kubernetes")


JOBQUEUE = {
    "cores": 8,
    "memory": "32GiB",
    "processes": 2,
    "walltime": "02:00:00",
    "account": "imaging",
    "job_extra_directives": ["--constraint=avx2"],
    "job_script_prologue": ["module load python"],
}


@pytest.mark.parametrize(
    "system, lines",
    [
        ("slurm", ["#SBATCH -A imaging", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32G",
                   "#SBATCH -t 02:00:00", "#SBATCH --constraint=avx2"]),
        ("pbs", ["#PBS -A imaging", "#PBS -l select=1:ncpus=8:mem=32GB",
                 "#PBS -l walltime=02:00:00", "#PBS --constraint=avx2"]),
    ],
)  # fmt: skip
def test_job_scripts(stack, tmp_path, capsys, system, lines):
    cfg = tmp_path / "c.yaml"
    body = {
        **_config(stack, tmp_path / "o"),
        "cluster": {"jobqueue": {"system": system, **JOBQUEUE}},
    }
    cfg.write_text(json.dumps(body))
    assert main(["jobscript", str(cfg)]) == 0
    script = capsys.readouterr().out
    for line in lines:
        assert line in script, script
    assert "module load python" in script
    assert "--nworkers 2" in script and "--nthreads 4" in script
    assert script.startswith("#!/")


def test_site_jobqueue_yaml_fills_what_the_config_leaves_out(stack, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(_config(stack, tmp_path / "o")))
    site = {"jobqueue.slurm.queue": "site-partition", "jobqueue.slurm.cores": 4,
            "jobqueue.slurm.memory": "16GiB", "jobqueue.slurm.walltime": "00:45:00"}  # fmt: skip
    with dask.config.set(site):
        assert main(["jobscript", str(cfg), "--cluster", "slurm"]) == 0
        script = capsys.readouterr().out
        assert "#SBATCH -p site-partition" in script and "#SBATCH -t 00:45:00" in script
        assert (
            main(
                [
                    "jobscript",
                    str(cfg),
                    "--cluster",
                    "slurm",
                    "--set",
                    "cluster.jobqueue.walltime=01:00:00",
                ]
            )
            == 0
        )
        assert "#SBATCH -t 01:00:00" in capsys.readouterr().out


def _arenas_capped() -> bool:
    from pipeline.engine import allocator

    return allocator._done


def test_each_worker_caps_its_allocator_arenas():
    import os
    import sys

    from distributed import get_client

    from pipeline.engine.cluster import connect

    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        pytest.skip("the arena cap is glibc's (Linux), and the environment's where it sets one")
    with connect({"local": {"workers": 2, "dashboard": False}}, announce=lambda line: None):
        capped = get_client().run(_arenas_capped)
    assert len(capped) == 2
    assert all(capped.values())


def test_site_cores_too_few_for_the_config_processes(stack, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(_config(stack, tmp_path / "o")))
    site = {"jobqueue.slurm.cores": 2, "jobqueue.slurm.memory": "8GiB"}
    with dask.config.set(site):
        argv = [
            "jobscript",
            str(cfg),
            "--cluster",
            "slurm",
            "--set",
            "cluster.jobqueue.processes=4",
        ]
        assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: cluster.jobqueue: 4 worker processes on 2 cores gives each none: "
        "set processes to at most cores"
    ]
