"""A one-node SLURM cluster on this machine for tests: munged, slurmctld and slurmd.

The daemons come from Debian's ``slurm-wlm`` and ``munge`` packages (``make slurm``
installs them where the machine allows). Each test session starts its own controller
and node daemon on free loopback ports with a configuration in a temporary folder, and
stops them afterwards; a munge daemon already running is used, otherwise one is started
(with a generated key where the machine has none). The node offers this host's cores.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.object_store import free_port

MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
PROGRAMS = ("munge", "munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")


def missing() -> str | None:
    """Why a SLURM cluster cannot be started here (None: it can)."""
    absent = [p for p in PROGRAMS if not Path(_program(p)).exists()]
    if absent:
        return f"SLURM is not installed ({', '.join(absent)} missing; `make slurm` installs it)"
    if os.geteuid() != 0:
        return "the SLURM daemons need root (slurmd starts jobs as their users)"
    return None


def _program(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _munge_running() -> bool:
    if not MUNGE_SOCKET.exists():
        return False
    probe = subprocess.run(["munge", "-n"], capture_output=True)
    return probe.returncode == 0


class SlurmCluster:
    """slurmctld and slurmd on loopback (127.0.0.1, whatever this host's name resolves
    to) with their configuration in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.host = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.conf = folder / "slurm.conf"
        self.started: list[subprocess.Popen] = []
        self.munged: subprocess.Popen | None = None
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> None:
        self._start_munge()
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        spool = self.folder / "spool"
        state = self.folder / "state"
        spool.mkdir()
        state.mkdir()
        f = self.folder
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=segpipe-test",
                    f"SlurmctldHost={self.host}(127.0.0.1)",
                    "SlurmUser=root",
                    f"SlurmctldPort={free_port()}",
                    f"SlurmdPort={free_port()}",
                    "AuthType=auth/munge",
                    f"StateSaveLocation={state}",
                    f"SlurmdSpoolDir={spool}",
                    f"SlurmctldPidFile={f / 'slurmctld.pid'}",
                    f"SlurmdPidFile={f / 'slurmd.pid'}",
                    f"SlurmctldLogFile={f / 'slurmctld.log'}",
                    f"SlurmdLogFile={f / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "ReturnToService=2",
                    "MpiDefault=none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "KillWait=5",
                    "MinJobAge=600",
                    "DefMemPerCPU=512",
                    f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} "
                    f"RealMemory={memory_mb // 2}",
                    f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        for daemon in ("slurmctld", "slurmd"):
            # -D: in the foreground, so the process is the daemon and can be stopped.
            proc = subprocess.Popen(
                [_program(daemon), "-D", "-f", str(self.conf)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.started.append(proc)
            if daemon == "slurmctld":
                self._wait(lambda: self.run("scontrol", "ping").returncode == 0, "slurmctld")
        self._wait(self._node_idle, "slurmd (the node never became idle)")

    def _start_munge(self) -> None:
        if _munge_running():
            return
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
            MUNGE_KEY.write_bytes(os.urandom(1024))
        shutil.chown(MUNGE_KEY, "munge", "munge")
        MUNGE_KEY.chmod(0o400)
        for folder in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
            Path(folder).mkdir(parents=True, exist_ok=True)
            shutil.chown(folder, "munge", "munge")
        self.munged = subprocess.Popen(
            [_program("munged"), "--foreground", "--force"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait(_munge_running, "munged")

    def _node_idle(self) -> bool:
        out = self.run("sinfo", "-h", "-N", "-o", "%T").stdout.split()
        return out == ["idle"]

    def _wait(self, ready, what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            dead = [p for p in self.started if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start; see {self.folder}")
            time.sleep(0.2)

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """A SLURM command (sbatch, squeue, ...) against this cluster; one still running
        after ``timeout`` seconds (``sbatch --wait`` on a job that never ends) is killed
        and raises ``subprocess.TimeoutExpired``."""
        return subprocess.run(
            [_program(args[0]), *args[1:]], env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def job_state(self, job: str) -> str:
        """The state of job ``job`` (PENDING, RUNNING, COMPLETED, CANCELLED, ...); for an
        array, the states of its tasks joined by commas."""
        out = self.run("scontrol", "-o", "show", "job", job).stdout
        states = [
            field.split("=", 1)[1]
            for line in out.splitlines()
            for field in line.split()
            if field.startswith("JobState=")
        ]
        return ",".join(states)

    def wait_until_done(self, job: str, seconds: float = 300) -> str:
        """Wait until every task of ``job`` has ended; its state(s)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            state = self.job_state(job)
            if state and not any(s in state for s in ("PENDING", "RUNNING", "COMPLETING")):
                return state
            time.sleep(0.2)
        raise RuntimeError(f"job {job} did not end within {seconds} s: {self.job_state(job)}")

    def stop(self) -> None:
        if self.started:
            self.run("scancel", "--user", "root", timeout=60)
        for proc in reversed(self.started):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.munged is not None:
            self.munged.terminate()
            self.munged.wait(timeout=20)
