"""Runs on a real Dask cluster whose workers share no file system: a ``dask scheduler`` and
two ``dask worker`` processes on loopback, each in a private temporary folder of its own
(working folder, HOME, TMPDIR, local directory), the input and every output in a loopback
S3 server. The bytes written equal a local run's, when a worker is killed mid-run and
when the whole run is killed and run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from pipeline.app.run import run, run_block
from pipeline.app.status import status
from tests.app.test_object_storage import _outputs, _table, blobs, steps
from tests.object_store import free_port, local_files


class Cluster:
    """``dask scheduler`` and ``dask worker`` processes; each worker in its own folder."""

    def __init__(self, root: Path, env: dict[str, str], workers: int = 2) -> None:
        self.root = root
        self.env = env
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.logs: list = []
        self.scheduler = self._start(
            "scheduler",
            [
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-dashboard",
            ],  # fmt: skip
        )
        self.workers = [self.add_worker(f"w{i}") for i in range(workers)]
        self._wait_for(workers)

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        env = dict(self.env, HOME=str(home), TMPDIR=str(home), PYTHONUNBUFFERED="1")
        log = open(home / "log.txt", "wb")  # noqa: SIM115 (closed by stop)
        self.logs.append(log)
        return subprocess.Popen(
            [sys.executable, "-m", *args], cwd=home, env=env, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip

    def add_worker(self, name: str) -> subprocess.Popen:
        home = self.root / name
        return self._start(
            name,
            [
                "distributed.cli.dask_worker",
                self.address,
                "--nworkers",
                "1",
                "--nthreads",
                "2",
                "--name",
                name,
                "--local-directory",
                str(home / "dask"),
                "--no-dashboard",
                "--memory-limit",
                "4GiB",
            ],  # fmt: skip
        )

    def _wait_for(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(n, timeout=60)

    def kill(self, proc: subprocess.Popen) -> None:
        """Kill a worker (its nanny and its worker process) at once, as a lost machine."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        for log in self.logs:
            log.close()


@pytest.fixture
def cluster(s3, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3.env())
    c = Cluster(tmp_path / "cluster", env)
    yield c
    c.stop()


def _config(input_path: str, out: str, address: str | None, chunks=(16, 32, 32)) -> dict:
    cfg = {
        "input": {"path": input_path, "chunks": list(chunks)},
        "steps": steps(),
        "output": {
            "path": out,
            "labels": "nuclei",
            "image": "input",
            "table": {"format": "parquet", "intensity": "input"},
        },
    }
    if address is not None:
        cfg["cluster"] = {"address": address}
    return cfg


@pytest.fixture
def stored_input(s3, tmp_path):
    """The test image as a Zarr store in the S3 server, and the local run's outputs."""
    import zarr

    image = blobs((48, 96, 96), seed=3, count=60)
    store = tmp_path / "input.zarr"
    arr = zarr.create_array(store, shape=image.shape, chunks=(16, 32, 32), dtype=image.dtype)
    arr[:] = image
    bucket = s3.bucket()
    s3.upload_folder(store, bucket, "input.zarr")
    local = tmp_path / "local"
    run({**_config(str(store), str(local), None), "engine": {"scheduler": "threads"}})
    return bucket, f"s3://{bucket}/input.zarr", local_files(local)


def _same_outputs(s3, bucket: str, prefix: str, want: dict[str, bytes]) -> dict:
    got = s3.objects(bucket, prefix)
    assert sorted(got) == sorted(want)
    assert _outputs(got) == _outputs(want)
    assert _table(got["nuclei.parquet"]) == _table(want["nuclei.parquet"])
    return json.loads(got["summary.json"])


def _no_local_traces(cluster: Cluster, tmp_path: Path) -> None:
    """Nothing named after a URL, and no block files left in any worker's folder."""
    for root, folders, files in os.walk(tmp_path):
        assert not any(n.startswith("s3:") for n in [*folders, *files]), root
    for name in ("w0", "w1"):
        left = [f for _, _, files in os.walk(cluster.root / name) for f in files]
        assert not [f for f in left if f.endswith((".blk", ".rec"))], left


@pytest.mark.parametrize("exchange", ["scratch", "dask"])
def test_cluster_without_shared_files_matches_local_run(
    cluster, stored_input, s3, tmp_path, exchange
):
    """Halo slabs and kept blocks in the output's scratch prefix, or halos moved by Dask
    (the default for an object-store output): the same bytes."""
    bucket, url, want = stored_input
    cfg = _config(url, f"s3://{bucket}/out", cluster.address)
    cfg["engine"] = {"halo_exchange": exchange}
    result = run(cfg)
    summary = _same_outputs(s3, bucket, "out", want)
    assert summary["count"] == result.count > 10
    assert not [k for k in s3.objects(bucket, "out") if k.startswith(".scratch")]
    _no_local_traces(cluster, tmp_path)


def test_worker_killed_mid_run_gives_the_same_bytes(cluster, stored_input, s3, tmp_path):
    bucket, url, want = stored_input
    out = f"s3://{bucket}/killed"
    done: dict = {}

    def go():
        try:
            done["result"] = run(_config(url, out, cluster.address))
        except BaseException as exc:  # reported by the test below
            done["error"] = exc

    thread = threading.Thread(target=go)
    thread.start()
    deadline = time.monotonic() + 120
    while not _records(s3, bucket, "killed") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert thread.is_alive(), "the run ended before a worker could be killed"
    cluster.kill(cluster.workers[1])
    thread.join(240)
    assert "error" not in done, done.get("error")
    _same_outputs(s3, bucket, "killed", want)


def _records(s3, bucket: str, prefix: str) -> list[str]:
    s3c = s3.client()
    found = s3c.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/.journal/")
    return [o["Key"] for o in found.get("Contents", []) if o["Key"].endswith(".rec")]


def test_killed_run_resumes_from_its_journal_in_the_object_store(
    cluster, stored_input, s3, tmp_path
):
    bucket, url, want = stored_input
    cfg_file = tmp_path / "run.yaml"
    cfg = _config(url, f"s3://{bucket}/resumed", cluster.address)
    cfg_file.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3.env())
    cmd = [str(Path(sys.executable).parent / "segpipe"), "run", str(cfg_file)]
    with open(tmp_path / "first.err", "wb") as err:
        first = subprocess.Popen(cmd, env=env, cwd=tmp_path, stderr=err)
        deadline = time.monotonic() + 120
        while len(_records(s3, bucket, "resumed")) < 8 and time.monotonic() < deadline:
            assert first.poll() is None, (tmp_path / "first.err").read_text()
            time.sleep(0.05)
        first.kill()
        first.wait(10)
    recorded = len(_records(s3, bucket, "resumed"))
    assert recorded >= 8
    # What the journal in the store says, and one block on its own from its records
    state = status(f"s3://{bucket}/resumed")
    assert state.finished == 0 and sum(p["done"] for p in state.runs[0].passes) >= recorded
    one = run_block(str(cfg_file), "0,0,0")
    assert sum(one.resumed_blocks.values()) > 0
    again = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    summary = _same_outputs(s3, bucket, "resumed", want)
    assert sum(summary["resumed_blocks"].values()) >= recorded
    assert not _records(s3, bucket, "resumed")  # the journal is removed at the end
