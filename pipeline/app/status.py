"""How far the run (or each run of a batch) writing into an output folder got."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.engine.journal import FOLDER as JOURNAL
from pipeline.engine.journal import Journal, progress
from pipeline.errors import DataError
from pipeline.io.locations import location


@dataclass(frozen=True)
class RunState:
    """One output folder's run: finished (with its summary's figures) or not (with its
    journal's passes: pass, label, done and blocks each)."""

    path: Path
    finished: bool
    config_sha256: str
    count: int | None = None
    seconds: float | None = None
    made_by: str | None = None  # the segpipe version of an unfinished run
    passes: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class OutputStatus:
    """The runs found in an output folder: one, or a batch's."""

    path: Path
    runs: list[RunState]
    batch: bool

    @property
    def finished(self) -> int:
        """How many of the runs finished."""
        return sum(r.finished for r in self.runs)


def _one(out: Path) -> RunState | None:
    summary = out / "summary.json"
    if summary.exists():
        try:
            s = json.loads(summary.read_text())
            total = s.get("timings", {}).get("total")
            if not isinstance(total, int | float | None) or not isinstance(s["count"], int):
                raise TypeError("count or timings.total is not a number")
            return RunState(out, True, s["config_sha256"], count=s["count"], seconds=total)
        except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
            raise DataError(f"{summary}: not a segpipe summary ({exc!r:.80})") from None
    sha = Journal.recorded_config(out / JOURNAL)
    if sha is None:
        return None
    made_by = Journal.recorded_version(out / JOURNAL)
    try:
        passes = list(progress(out / JOURNAL))
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{out / JOURNAL}: not a segpipe journal ({exc!r:.80})") from None
    if not isinstance(sha, str) or not isinstance(made_by, str | None):
        raise DataError(f"{out / JOURNAL}: not a segpipe journal (its run.json)")
    return RunState(out, False, sha, made_by=made_by, passes=passes)


def status(output: str | Path) -> OutputStatus:
    """The run in ``output`` (a folder, or a prefix in an object store), or each run of a
    batch below it."""
    out = location(output)
    if not out.exists():
        raise DataError(f"{out}: no such output folder")
    if not out.is_dir():
        raise DataError(f"{out}: a file, expected an output folder")
    one = _one(out)
    if one is not None:
        return OutputStatus(out, [one], batch=False)
    subs = sorted((p for p in out.iterdir() if p.is_dir()), key=str)
    found = [r for sub in subs if (r := _one(sub))]
    if not found:
        raise DataError(f"{out}: holds no segpipe run (no summary.json, no {JOURNAL}/)")
    return OutputStatus(out, found, batch=True)
