"""The application floor: the ways to run a config, on top of config, graph, engine and io.

Every way starts from one prepared input (:mod:`pipeline.app.prepared`: the config, the
opened and checked source, the DAG, the block plan and the input's resize):

- :func:`run` one input, :func:`run_batch` every input of a batch (:mod:`.batch`);
- :func:`dry_run` opens the inputs, :func:`run_block` computes one block on its own;
- :func:`plan` says what a run would do, :func:`status` how far one got.

A run's passes and outputs are in :mod:`.execute` (labels and image by the write pass,
:mod:`.write`; the table, report and NIfTI labels, :mod:`.outputs`; summary.json,
:mod:`.summary`); its output folder is made ready (or resumed) by :mod:`.output_folder`.
"""

from pipeline.app.plan import RunPlan, plan
from pipeline.app.results import BatchResult, BlockResult, PlannedInput, RunResult
from pipeline.app.run import dry_run, is_batch, jobscript, load, run, run_batch, run_block
from pipeline.app.status import OutputStatus, status

__all__ = [
    "BatchResult",
    "BlockResult",
    "OutputStatus",
    "PlannedInput",
    "RunPlan",
    "RunResult",
    "dry_run",
    "is_batch",
    "jobscript",
    "load",
    "plan",
    "run",
    "run_batch",
    "run_block",
    "status",
]
