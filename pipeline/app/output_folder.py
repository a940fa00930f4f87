"""The output folder of a run: a finished run found there, an interrupted one resumed, or
the folder made ready (another config's output replaced only with ``overwrite``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.app.results import RunResult
from pipeline.app.summary import config_sha256
from pipeline.config.loader import LoadedConfig
from pipeline.engine.journal import FOLDER as JOURNAL
from pipeline.engine.journal import Journal, segpipe_version
from pipeline.errors import DataError, OutputExistsError
from pipeline.io.readers import Source, output_inside


def finished_run(cfg: LoadedConfig) -> RunResult | None:
    """The result of a finished run of this config in its output folder, if there is one."""
    path = Path(cfg.spec.output.path) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if summary.get("config_sha256") != config_sha256(cfg):
        return None
    return RunResult(summary["count"], Path(summary["labels"]), path, summary, earlier=True)


def _held(path: Path, recorded: str | None, sha: str) -> str:
    """What an output folder that this run cannot resume into holds, in words."""
    if recorded is None:
        return "something"
    if recorded != sha:
        return "an interrupted run of another config"
    made_by = Journal.recorded_version(path / JOURNAL)
    by = f"segpipe {made_by}" if made_by else "an earlier segpipe"
    return (
        f"an interrupted run of this config by {by}, whose checkpoints "
        f"segpipe {segpipe_version()} does not resume"
    )


def prepare_output(
    path: Path, overwrite: bool, source: Source, sha: str, checkpoints: bool = True
) -> Journal | None:
    """Make ``path`` ready and start the run's journal: resume an interrupted run of
    the same config, refuse another config's output unless ``overwrite``."""
    if output_inside(path, source):
        raise DataError(f"output.path {path} is inside the input {source.path}")
    recorded = Journal.recorded_config(path / JOURNAL)
    resume = Journal.resumable(path / JOURNAL, sha) and not overwrite
    if path.exists() and any(path.iterdir()) and not resume:
        if not overwrite:
            raise OutputExistsError(
                f"output.path {path} holds {_held(path, recorded, sha)} "
                "(use --overwrite to replace it)"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    if not checkpoints:
        return None
    journal = Journal(path / JOURNAL, sha)
    journal.start()
    return journal
