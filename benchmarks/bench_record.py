"""Benchmark results as data: one JSON record per run, under ``benchmarks/results/``.

A benchmark run with ``--record`` writes ``<name>-<date>.json`` (``-2``, ``-3``, ... for
further runs the same day): the benchmark's own results with the machine (cores, memory,
Python and library versions), the command line, the git commit and the time it was
recorded. ``benchmarks/tables.py`` renders the latest record of each name as the
README's tables.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PACKAGES = ("segpipe", "dask", "dask-image", "scikit-image", "scipy", "numpy", "zarr")


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages the benchmarks compare (None: not installed)."""
    out: dict[str, str | None] = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def memory_bytes() -> int | None:
    """Physical memory of this machine (None where it cannot be read)."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine() -> dict:
    """The machine a run is measured on."""
    mem = memory_bytes()
    return {
        "cpu_count": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1) if mem is not None else None,
        "arch": platform.machine(),
        "system": platform.platform(),
        "python": platform.python_version(),
        "versions": versions(),
    }


def git_state(repo: Path = HERE.parent) -> dict:
    """The commit of ``repo`` and whether tracked files differ from it."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def record_path(name: str, folder: Path, date: str) -> Path:
    """A new file for ``name``'s record of ``date`` in ``folder``."""
    path = folder / f"{name}-{date}.json"
    n = 2
    while path.exists():
        path = folder / f"{name}-{date}-{n}.json"
        n += 1
    return path


def write(name: str, benchmark: str, data: dict, folder: Path | None = None) -> Path:
    """Write the record of a run of ``benchmark`` (its results ``data``) as ``name``."""
    folder = Path(folder) if folder is not None else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now().astimezone()
    rec = {
        "name": name,
        "benchmark": benchmark,
        "recorded_at": now.isoformat(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "git": git_state(),
        "machine": machine(),
        **data,
    }
    path = record_path(name, folder, now.strftime("%Y-%m-%d"))
    path.write_text(json.dumps(rec, indent=1, default=_json_default) + "\n")
    return path


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def load(folder: Path | None = None) -> list[dict]:
    """Every record in ``folder``, each with the file it came from."""
    folder = Path(folder) if folder is not None else RESULTS
    out = []
    for path in sorted(folder.glob("*.json")):
        rec = json.loads(path.read_text())
        if isinstance(rec, dict) and "name" in rec and "recorded_at" in rec:
            out.append({**rec, "file": path.name})
    return out


def latest(records: list[dict]) -> dict[str, dict]:
    """The latest record of each name (by the time recorded), names in order."""
    best: dict[str, dict] = {}
    for rec in records:
        have = best.get(rec["name"])
        if have is None or rec["recorded_at"] >= have["recorded_at"]:
            best[rec["name"]] = rec
    return dict(sorted(best.items()))
