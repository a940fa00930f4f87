"""Batches: one config run over many inputs, each with its own outputs and summary row.

An input whose output already holds a finished run of the same resolved config
(``summary.json`` with the same ``config_sha256``) is skipped; an input that fails is
reported and the others go on. ``batch.csv`` beside the outputs has one row per input.
"""

from __future__ import annotations

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor

from pipeline.app.output_folder import MARKER, mark, marked
from pipeline.app.output_location import check_output_location, make_output_folder, read_by
from pipeline.app.prepared import item_config, output_pattern
from pipeline.app.results import FIELDS, BatchResult
from pipeline.config.loader import LoadedConfig
from pipeline.errors import DataError, SegpipeError
from pipeline.io.inputs import BatchInput
from pipeline.io.locations import Location, ObjectPath, location, write_atomic


def run_inputs(cfg: LoadedConfig, inputs: list[BatchInput], run_one, overwrite) -> BatchResult:
    """Run ``run_one(item_cfg, overwrite)`` for each input's config (see
    :func:`~pipeline.app.prepared.item_config`).

    ``run_one`` returns a result whose ``earlier`` says the output held a finished run of
    this config already (the input is skipped).
    """
    pattern = output_pattern(cfg.spec.output.path)
    root = location(pattern.split("{name}")[0] or ".")
    check_outputs(cfg, inputs, root)

    def one(item: BatchInput) -> dict:
        one_cfg = item_config(cfg, item)
        row = dict.fromkeys(FIELDS, "")
        row.update(name=item.name, input=item.path, output=one_cfg.spec.output.path)
        if item.timepoint is not None:
            row["timepoint"] = item.timepoint
        t0 = time.perf_counter()
        try:
            res = run_one(one_cfg, overwrite)
            row.update(status="skipped" if res.earlier else "done", count=res.count)
        except SegpipeError as exc:
            row.update(status="failed", error=str(exc).replace("\n", "; "))
        row["seconds"] = f"{time.perf_counter() - t0:.2f}"
        return row

    workers = cfg.spec.engine.concurrent_inputs
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(one, inputs))
    make_output_folder(root)
    mark(root, ["batch.csv"])
    path = root / "batch.csv"
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, FIELDS)
    w.writeheader()
    w.writerows(rows)
    write_atomic(path, text.getvalue().encode("utf-8"))
    return BatchResult(rows, path)


def check_outputs(cfg: LoadedConfig, inputs: list[BatchInput], root: Location) -> None:
    """Refuse the whole batch before it starts where an input's output folder is not a
    folder of its own below ``root``, or could touch any input of the batch (see
    :func:`~pipeline.app.output_location.check_output_location`)."""
    protected = read_by(cfg.raw, None, None if cfg.source == "<config>" else cfg.source)
    remote = isinstance(root, ObjectPath)
    top = root if remote else root.resolve()
    for item in inputs:
        path = item_config(cfg, item).spec.output.path
        out = check_output_location(path, protected, key=f"output.path (input {item.name!r})")
        if out.name in ("batch.csv", MARKER) and out.parent == top:
            raise DataError(f"output.path (input {item.name!r}) {path}: is the batch's own file")
        below = str(out).startswith(str(top) + "/") if remote else top in out.parents
        if not below:
            raise DataError(
                f"output.path (input {item.name!r}) {path}: is not a folder below {root}"
            )
    table = root / "batch.csv" if remote else (root / "batch.csv").resolve()
    if table in protected.exact:
        what = protected.exact[table]
        raise DataError(f"output.path: the batch table {root / 'batch.csv'} is {what}")
    if (root / "batch.csv").exists() and "batch.csv" not in (marked(root) or []):
        raise DataError(
            f"output.path: {root / 'batch.csv'} exists and segpipe did not write it (no "
            f"{MARKER} in {root} lists it); move it, or name another folder"
        )
