"""A real Dask cluster on loopback for the benchmarks: ``dask scheduler`` and ``dask
worker`` processes (one thread each), each process in a folder of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


class LoopbackCluster:
    """A scheduler and ``workers`` workers on 127.0.0.1.

    Each process runs in ``folder/<name>`` (its working folder, HOME and TMPDIR, its log
    in ``log.txt``), so the workers share no folder but what a run gives them; ``env``
    is added to their environment; ``worker_args`` go to each ``dask worker``.
    """

    def __init__(
        self, folder: Path, workers: int = 2, env: dict | None = None, worker_args=()
    ) -> None:
        self.folder = Path(folder)
        self.file = self.folder / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self._logs = []
        env = env or {}
        self.scheduler = self._start(
            "scheduler",
            ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--scheduler-file", str(self.file), "--no-dashboard"],
            env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.file.exists():
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the dask scheduler did not start: {self.folder}")
            time.sleep(0.1)
        self.workers = [
            self._start(
                f"worker{i}",
                [
                    "distributed.cli.dask_worker",
                    "--scheduler-file",
                    str(self.file),
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                    "--local-directory",
                    str(self.folder / f"worker{i}" / "dask"),
                    *worker_args,
                ],
                env,
            )  # fmt: skip
            for i in range(workers)
        ]
        with self.client() as client:
            client.wait_for_workers(workers, timeout=60)
            self.address = client.scheduler.address

    def _start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        home = self.folder / name
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        log = open(home / "log.txt", "wb")  # noqa: SIM115 (closed by stop)
        self._logs.append(log)
        full = dict(os.environ, **env, HOME=str(home), TMPDIR=str(home))
        full["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=home, env=full, stdout=log, stderr=log
        )
        self.procs.append(proc)
        return proc

    def client(self):
        """A distributed Client of this cluster (close it, or use it in a with)."""
        from distributed import Client

        return Client(scheduler_file=str(self.file), timeout=30)

    def executed(self) -> int:
        """Tasks the workers have run so far, all of them together."""
        with self.client() as client:
            counts = client.run(lambda dask_worker: dask_worker.state.executed_count)
        return sum(counts.values())

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self._logs:
            log.close()
