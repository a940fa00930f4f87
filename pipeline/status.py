"""``segpipe status OUTPUT``: how far the run (or the batch) writing into OUTPUT got."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.engine.journal import FOLDER as JOURNAL
from pipeline.engine.journal import Journal, progress
from pipeline.errors import DataError


def _one(out: Path) -> list[str] | None:
    summary = out / "summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())
        total = s.get("timings", {}).get("total")
        took = f" in {total:.1f} s" if total is not None else ""
        return [f"{out}: finished{took}: {s['count']} objects, config {s['config_sha256'][:12]}"]
    sha = Journal.recorded_config(out / JOURNAL)
    if sha is None:
        return None
    made_by = Journal.recorded_version(out / JOURNAL)
    by = f"segpipe {made_by}" if made_by else "segpipe version not recorded"
    lines = [f"{out}: interrupted or running, config {sha[:12]}, {by}"]
    for p in progress(out / JOURNAL):
        state = "done" if p["done"] == p["blocks"] else "partly done"
        lines.append(f"  {p['pass']}: {p['label']}: {p['done']}/{p['blocks']} blocks ({state})")
    if len(lines) == 1:
        lines.append("  no pass recorded yet")
    return lines


def describe_status(output: str) -> str:
    """Text describing the run in ``output``, or each run of a batch below it."""
    out = Path(output)
    if not out.exists():
        raise DataError(f"{out}: no such output folder")
    lines = _one(out)
    if lines is not None:
        return "\n".join(lines)
    found = []
    for sub in sorted(p for p in out.iterdir() if p.is_dir()):
        one = _one(sub)
        if one is not None:
            found.extend(one)
    if not found:
        raise DataError(f"{out}: holds no segpipe run (no summary.json, no {JOURNAL}/)")
    done = sum(1 for line in found if ": finished" in line)
    runs = sum(1 for line in found if not line.startswith(" "))
    return "\n".join([f"{out}: batch, {done} of {runs} runs finished", *found])
