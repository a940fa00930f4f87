"""The output folder of a run: a finished run found there, an interrupted one resumed, or
the folder made ready (another config's output replaced only with ``overwrite``).

A folder segpipe writes into holds a marker, ``.segpipe``, naming every entry a run of
its config writes there. Overwriting removes those entries and nothing else, and never in
a folder without the marker: a folder that segpipe did not make is never emptied.
"""

from __future__ import annotations

import json
import os

from pipeline.app.output_location import Protected, check_output_location, make_output_folder
from pipeline.app.results import RunResult
from pipeline.app.summary import config_sha256
from pipeline.config.loader import LoadedConfig
from pipeline.engine.journal import FOLDER as JOURNAL
from pipeline.engine.journal import Journal, segpipe_version
from pipeline.errors import DataError, OutputExistsError
from pipeline.io.locations import Location, location, remove_tree, write_atomic

MARKER = ".segpipe"  # in every output folder: what segpipe wrote there
SCRATCH = ".scratch"  # the scratch folder's default place, in the output folder


def finished_run(cfg: LoadedConfig) -> RunResult | None:
    """The result of a finished run of this config in its output folder, if there is one."""
    path = location(cfg.spec.output.path) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("config_sha256") != config_sha256(cfg):
        return None
    labels = location(summary["labels"])
    return RunResult(summary["count"], labels, path, summary, earlier=True)


def made_names(cfg: LoadedConfig) -> list[str]:
    """The names of the entries a run of ``cfg`` may write into its output folder."""
    spec = cfg.spec.output
    names = [MARKER, "summary.json", "summary.json.tmp", JOURNAL, SCRATCH]
    names += [f"{spec.labels}.ome.zarr", ".before-resize.zarr"]
    if spec.image is not None:
        names.append("image.ome.zarr")
    if spec.table is not None:
        names.append(f"{spec.labels}.{spec.table.format}")
    if spec.report:
        names.append("report")
    if spec.nifti:
        names.append("labels.nii.gz")
    return names


def marked(path: Location) -> list[str] | None:
    """The names the marker in ``path`` lists (None: no marker, or not one segpipe wrote)."""
    try:
        meta = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    made = meta.get("made") if isinstance(meta, dict) else None
    if not isinstance(made, list) or not all(isinstance(n, str) for n in made):
        return None
    return [n for n in made if n and n not in (".", "..") and "/" not in n and os.sep not in n]


def mark(path: Location, names: list[str]) -> None:
    """Write the marker: ``names`` and those of the marker already there."""
    made = sorted({*(marked(path) or []), *names})
    write_atomic(path / MARKER, json.dumps({"segpipe": segpipe_version(), "made": made}).encode())


def _exists(entry: Location) -> bool:
    return entry.is_symlink() or entry.exists()


def _remove_made(path: Location, names: list[str]) -> None:
    """Delete the entries ``names`` of ``path``: a symlink itself, never what it points to."""
    for name in sorted(names, key=lambda n: n == MARKER):  # the marker last
        entry = path / name
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        elif entry.is_dir():
            remove_tree(entry, ignore_errors=False)  # does not follow symlinks inside


def _held(path: Location, recorded: str | None, sha: str) -> str:
    """What an output folder that this run cannot resume into holds, in words."""
    if recorded is None:
        return "another run's outputs"
    if recorded != sha:
        return "an interrupted run of another config"
    made_by = Journal.recorded_version(path / JOURNAL)
    by = f"segpipe {made_by}" if made_by else "an earlier segpipe"
    return (
        f"an interrupted run of this config by {by}, whose checkpoints "
        f"segpipe {segpipe_version()} does not resume"
    )


def prepare_output(
    cfg: LoadedConfig,
    overwrite: bool,
    protected: Protected,
    sha: str,
    checkpoints: bool = True,
) -> Journal | None:
    """Make ``cfg``'s output folder ready and start the run's journal: resume an
    interrupted run of the same config, refuse another config's output unless
    ``overwrite``, and refuse a folder segpipe did not make, or one that is, holds or
    lies inside any of ``protected`` (see :mod:`pipeline.app.output_location`)."""
    check_output_location(cfg.spec.output.path, protected)
    path = location(cfg.spec.output.path)
    recorded = Journal.recorded_config(path / JOURNAL)
    resume = Journal.resumable(path / JOURNAL, sha) and not overwrite
    replace = path.is_dir() and any(path.iterdir()) and not resume
    if replace:
        made = marked(path)
        if made is None:
            raise DataError(
                f"output.path {path}: holds files segpipe did not write (no {MARKER} "
                "marker); name another folder, or empty this one yourself"
            )
        if not overwrite:
            raise OutputExistsError(
                f"output.path {path} holds {_held(path, recorded, sha)} "
                "(use --overwrite to replace it)"
            )
    # Checked before anything is removed: a run never writes over an entry it did not make.
    theirs = [n for n in made_names(cfg) if n not in (marked(path) or []) and _exists(path / n)]
    if theirs:
        raise DataError(
            f"output.path {path}: holds {theirs[0]}, which a run of this config writes and "
            "segpipe did not write; move it, or name another folder"
        )
    if replace:
        _remove_made(path, made)
    make_output_folder(path)
    mark(path, made_names(cfg))
    if not checkpoints:
        return None
    journal = Journal(path / JOURNAL, sha)
    journal.start()
    return journal
