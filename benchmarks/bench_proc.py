"""Run a command under a time limit, sampling the resident memory of its process tree."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import psutil
except ImportError:  # fall back to /proc
    psutil = None


@dataclass
class Measured:
    """How a command ran."""

    returncode: int | None
    seconds: float
    peak_rss: int  # bytes, max over samples of the sum over the process tree
    timed_out: bool


def _tree_rss_psutil(proc) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def _tree_rss_proc(pid: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        ppid = int(fields.get("PPid", "0").strip() or 0)
        children.setdefault(ppid, []).append(int(entry))
        vm = fields.get("VmRSS", "0 kB").split()
        rss[int(entry)] = int(vm[0]) * 1024 if vm else 0
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def tree_rss(pid: int) -> int:
    """Resident bytes of process ``pid`` and its children (0: it is gone)."""
    if psutil is None:
        return _tree_rss_proc(pid)
    try:
        return _tree_rss_psutil(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return 0


def run(cmd: list[str], timeout: float, log: Path, interval: float = 0.1) -> Measured:
    """Run ``cmd`` (stdout and stderr to ``log``), killing its process group after ``timeout``."""
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        proc = psutil.Process(p.pid) if psutil is not None else None
        peak, timed_out = 0, False
        while p.poll() is None:
            rss = _tree_rss_psutil(proc) if proc is not None else _tree_rss_proc(p.pid)
            peak = max(peak, rss)
            if time.perf_counter() - t0 > timeout:
                timed_out = True
                _stop(p)
                break
            time.sleep(interval)
        seconds = time.perf_counter() - t0
    return Measured(p.returncode, seconds, peak, timed_out)


def _stop(p: subprocess.Popen) -> None:
    # The child leads its own session, so its process group holds it and its workers only.
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
