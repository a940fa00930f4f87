"""Other ways to run a config: one input of a batch, a dry run, one block."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.batch import input_config
from pipeline.config.loader import load_config
from pipeline.engine.engine import Engine
from pipeline.engine.journal import FOLDER as JOURNAL
from pipeline.engine.journal import Journal
from pipeline.engine.scratch import Scratch
from pipeline.errors import ConfigError, DataError
from pipeline.graph.dag import with_input_spacing
from pipeline.io.inputs import BatchInput, input_name
from pipeline.io.readers import close_files
from pipeline.run_input import check_roles, open_input, plan_for, resized_input
from pipeline.summary import config_sha256


def debug_block(cfg, source, block: str) -> dict:
    """Compute one block's result on one thread (see :func:`run`'s ``block``)."""
    try:
        idx = tuple(int(v) for v in block.split(","))
    except ValueError:
        raise ConfigError(f"--block {block}: expected block indices like 3,1,0") from None
    target = cfg.spec.output.labels
    dag, source = resized_input(cfg, source, target, "sync")
    dag = with_input_spacing(dag, source.spacing)
    plan = plan_for(cfg, source)
    if len(idx) != len(plan.grid) or not all(
        0 <= i < g for i, g in zip(idx, plan.grid, strict=True)
    ):
        raise DataError(f"--block {block}: expected indices within the block grid {plan.grid}")
    out = Path(cfg.spec.output.path)
    sha = config_sha256(cfg)
    resume = Journal.resumable(out / JOURNAL, sha)
    engine = Engine(
        dag,
        source,
        plan,
        scheduler="sync",
        scratch=Scratch(cfg.spec.engine.scratch or out / ".scratch") if resume else Scratch(),
    )
    if resume:
        engine.attach_journal(Journal(out / JOURNAL, sha))
    engine.check([target])
    try:
        engine.resolve([target])
        data = engine.compute_block(target, idx, f"block {block}")
        ids = np.unique(data[data != 0])
        return {
            "block": idx,
            "box": plan.box(idx),
            "dtype": str(data.dtype),
            "nonzero": int(np.count_nonzero(data)),
            "ids": len(ids),
            "resumed_blocks": dict(engine.journal.loaded) if resume else {},
        }
    finally:
        engine.close(keep_scratch=resume)


def select_input(inputs, only: str) -> list[BatchInput]:
    """The one input of a batch named (or numbered, from 0) ``only``."""
    if inputs is None:
        raise ConfigError(f"--input {only}: the config's input is not a batch")
    names = [item.name for item in inputs]
    if only in names:
        return [inputs[names.index(only)]]
    if only.isdigit() and int(only) < len(inputs):
        return [inputs[int(only)]]
    raise DataError(
        f"--input {only}: expected a name or an index below {len(inputs)}, "
        f"inputs: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}"
    )


def dry_run(cfg, inputs) -> list[dict]:
    """Open every input (metadata only) and say where its output would go."""
    rows = []
    single = cfg.spec.input.path
    for item in inputs or [BatchInput(input_name(single), single)]:
        one = cfg if inputs is None else load_config(input_config(cfg, item))
        source = open_input(one)
        check_roles(one, source)
        plan = plan_for(one, source)
        rows.append({
            "name": item.name,
            "input": source.path,
            "output": one.spec.output.path,
            "shape": list(source.shape),
            "blocks": plan.nblocks,
        })  # fmt: skip
    close_files()
    return rows
