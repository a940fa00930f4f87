"""Batches: one config run over many inputs, each with its own outputs and summary row.

An input whose output already holds a finished run of the same resolved config
(``summary.json`` with the same ``config_sha256``) is skipped; an input that fails is
reported and the others go on. ``batch.csv`` beside the outputs has one row per input.
"""

from __future__ import annotations

import copy
import csv
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config.loader import LoadedConfig
from pipeline.errors import SegpipeError
from pipeline.io.inputs import BatchInput

FIELDS = ("name", "input", "timepoint", "status", "count", "output", "seconds", "error")


@dataclass
class BatchResult:
    """What a batch run did: one row per input (see :data:`FIELDS`)."""

    rows: list[dict] = field(default_factory=list)
    table_path: Path | None = None

    @property
    def failed(self) -> list[dict]:
        """The rows of inputs that failed."""
        return [r for r in self.rows if r["status"] == "failed"]


def output_pattern(path: str) -> str:
    """The output folder pattern: ``path`` with ``{name}``, or ``path/{name}``."""
    return path if "{name}" in path else os.path.join(path, "{name}")


def input_config(cfg: LoadedConfig, item: BatchInput) -> dict:
    """The config of one input of the batch (as a dict, validated again when run)."""
    raw = copy.deepcopy(cfg.raw)
    raw["input"]["path"] = item.path
    raw["input"].pop("batch", None)
    if item.timepoint is not None:
        raw["input"]["timepoint"] = item.timepoint
    raw["output"]["path"] = output_pattern(cfg.spec.output.path).replace("{name}", item.name)
    return raw


def run_batch(
    cfg: LoadedConfig, inputs: list[BatchInput], run_one, overwrite, table: bool = True
) -> BatchResult:
    """Run ``run_one(config_dict, overwrite)`` for each input.

    ``run_one`` returns a result whose ``earlier`` says the output held a finished run of
    this config already (the input is skipped). ``table``: write ``batch.csv``.
    """
    pattern = output_pattern(cfg.spec.output.path)
    root = Path(pattern.split("{name}")[0] or ".")

    def one(item: BatchInput) -> dict:
        raw = input_config(cfg, item)
        row = dict.fromkeys(FIELDS, "")
        row.update(name=item.name, input=item.path, output=raw["output"]["path"])
        if item.timepoint is not None:
            row["timepoint"] = item.timepoint
        t0 = time.perf_counter()
        try:
            res = run_one(raw, overwrite)
            row.update(status="skipped" if res.earlier else "done", count=res.count)
        except SegpipeError as exc:
            row.update(status="failed", error=str(exc).replace("\n", "; "))
        row["seconds"] = f"{time.perf_counter() - t0:.2f}"
        return row

    workers = cfg.spec.engine.concurrent_inputs
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(one, inputs))
    if not table:
        return BatchResult(rows, None)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "batch.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        w.writerows(rows)
    return BatchResult(rows, path)
