"""The ways to run a config: :func:`run` (one input), :func:`run_batch` (every input of a
batch), :func:`dry_run` (open the inputs, compute nothing) and :func:`run_block` (one
block on its own). Each takes a config file, a dict of the same structure, or a config
loaded already (:func:`load`), and each starts from a :class:`~pipeline.app.prepared.Prepared`
input.
"""

from __future__ import annotations

import os
import time

import numpy as np

from pipeline.app.batch import run_inputs
from pipeline.app.execute import execute
from pipeline.app.output_folder import SCRATCH, finished_run, prepare_output
from pipeline.app.output_location import (
    Protected,
    check_output_location,
    make_output_folder,
    protected_paths,
    read_by,
)
from pipeline.app.outputs import table_properties
from pipeline.app.prepared import (
    Prepared,
    check_roles,
    input_items,
    item_config,
    open_input,
    opened,
    plan_for,
    prepare,
    register_locations,
    select_input,
    single_config,
)
from pipeline.app.results import BatchResult, BlockResult, PlannedInput, RunResult
from pipeline.app.summary import config_sha256
from pipeline.config.loader import LoadedConfig, load_config
from pipeline.config.model import size_in_bytes
from pipeline.engine.cluster import connect
from pipeline.engine.engine import Engine, tty_progress
from pipeline.engine.journal import FOLDER as JOURNAL
from pipeline.engine.journal import Journal
from pipeline.engine.scratch import Scratch, page_cache_budget
from pipeline.errors import BlockError, ConfigError, DataError
from pipeline.io.inputs import BatchInput, input_name
from pipeline.io.locations import Location, ObjectPath, location
from pipeline.io.readers import close_files
from pipeline.measure.crops import check_crop_properties

Config = str | os.PathLike | dict | LoadedConfig


def load(
    config: Config,
    overrides: list[str] | tuple[str, ...] = (),
    scheduler: str | None = None,
    cluster: str | None = None,
) -> LoadedConfig:
    """``config`` validated (a loaded config as it is; see
    :func:`pipeline.config.load_config` for the arguments)."""
    if isinstance(config, LoadedConfig):
        if overrides or scheduler or cluster:
            raise ValueError("overrides, scheduler and cluster apply to a config not yet loaded")
        return config
    return load_config(config, overrides, scheduler, cluster)


def jobscript(
    config: Config, overrides: list[str] | tuple[str, ...] = (), cluster: str | None = None
) -> str:
    """The batch script of the config's worker jobs (``cluster``: slurm, pbs or lsf,
    default the config's ``cluster.jobqueue``)."""
    from pipeline.engine.cluster import job_script

    cfg = load(config, overrides, None, cluster)
    if cfg.spec.cluster is None or cfg.spec.cluster.jobqueue is None:
        raise ConfigError(f"{cfg.source}: cluster.jobqueue: needed (or give --cluster slurm)")
    return job_script(cfg.spec.cluster.jobqueue.model_dump(exclude_none=True))


def is_batch(cfg: LoadedConfig) -> bool:
    """Whether ``cfg``'s input is a batch of inputs (a list, a manifest, a glob of volumes,
    several timepoints)."""
    return input_items(cfg) is not None


def run(
    config: Config,
    overrides: list[str] | tuple[str, ...] = (),
    overwrite: bool | None = None,
    progress: bool = False,
    scheduler: str | None = None,
    cluster: str | None = None,
    only: str | None = None,
) -> RunResult:
    """Run a pipeline on its one input and write its outputs.

    Parameters
    ----------
    config : path, dict or LoadedConfig
        YAML file, the same structure as a dict, or a config loaded already.
    overrides : list of str
        ``key.path=value`` settings applied before validation.
    overwrite : bool, optional
        Replace an existing output (default: the config's ``output.overwrite``).
    progress : bool
        Show a progress bar on stderr.
    scheduler, cluster : str, optional
        Replace the config's cluster section: an existing scheduler (address or
        scheduler file), or a kind (threads, local, slurm, pbs, lsf).
    only : str, optional
        Run this input of a batch, by name or 0-based index (for job arrays: one task
        per input; no batch table is written).

    Returns
    -------
    RunResult
        Object count, the label image and summary paths, and the summary.

    Raises
    ------
    ConfigError
        Where the config's input is a batch and ``only`` names none of it
        (:func:`run_batch` runs them all).
    """
    t_start = time.perf_counter()
    cfg = load(config, overrides, scheduler, cluster)
    inputs = input_items(cfg)
    if only is not None:
        cfg = item_config(cfg, select_input(inputs, only))
    elif inputs is not None:
        raise ConfigError(
            f"input.path: a batch of {len(inputs)} inputs; run_batch runs them "
            "(or name one with only= / --input)"
        )
    else:
        cfg = single_config(cfg)
    register_locations(cfg)
    ow = cfg.spec.output.overwrite if overwrite is None else overwrite
    with _located(cfg):
        if not ow and (done := finished_run(cfg)) is not None:
            return done
        try:
            source = opened(cfg)  # checked before a cluster starts
            with connect(_cluster(cfg)) as get:
                protected = read_by(cfg.raw, source.path, config_file(cfg))
                return _run_prepared(cfg, source, get, ow, progress, t_start, protected)
        finally:
            close_files()


def run_batch(
    config: Config,
    overrides: list[str] | tuple[str, ...] = (),
    overwrite: bool | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
) -> BatchResult:
    """Run a pipeline on every input of its batch, each into its own output folder
    (see :mod:`pipeline.app.batch`); ``batch.csv`` gets a row per input.

    The arguments are :func:`run`'s. An input whose output holds a finished run of this
    config is skipped (unless ``overwrite``); one that fails is a failed row.
    """
    cfg = load(config, overrides, scheduler, cluster)
    inputs = input_items(cfg)
    if inputs is None:
        raise ConfigError("input.path: one input, not a batch; run runs it")
    ow = cfg.spec.output.overwrite if overwrite is None else overwrite
    for item in inputs:  # every process of the run knows every location's options
        register_locations(item_config(cfg, item))
    try:
        with connect(_cluster(cfg)) as get:

            def one(item_cfg: LoadedConfig, replace_old: bool) -> RunResult:
                if not replace_old and (done := finished_run(item_cfg)) is not None:
                    return done
                t0 = time.perf_counter()
                source = opened(item_cfg)
                # (the batch's folders were checked against all its inputs before it began)
                protected = protected_paths([source.path], config_file(cfg))
                return _run_prepared(item_cfg, source, get, replace_old, False, t0, protected)

            return run_inputs(cfg, inputs, one, ow)
    finally:
        close_files()


def dry_run(
    config: Config,
    overrides: list[str] | tuple[str, ...] = (),
    scheduler: str | None = None,
    cluster: str | None = None,
    only: str | None = None,
) -> list[PlannedInput]:
    """Check the config and open every input (metadata only, or the one ``only`` names);
    compute and write nothing. One :class:`PlannedInput` per input."""
    cfg = load(config, overrides, scheduler, cluster)
    inputs = input_items(cfg)
    if only is not None:
        inputs = [select_input(inputs, only)]
    single = cfg.spec.input.path
    rows = []
    try:
        for item in inputs or [BatchInput(input_name(single), single)]:
            one = single_config(cfg) if inputs is None else item_config(cfg, item)
            register_locations(one)
            source = open_input(one)
            check_roles(one, source)
            plan = plan_for(one, source)
            rows.append(
                PlannedInput(
                    item.name, source.path, one.spec.output.path, tuple(source.shape), plan.nblocks
                )
            )
    finally:
        close_files()
    return rows


def run_block(
    config: Config,
    block: str,
    overrides: list[str] | tuple[str, ...] = (),
    only: str | None = None,
) -> BlockResult:
    """Compute one block's result in this process, on one thread, after the passes it
    needs (loaded from an interrupted run's checkpoints where there are some); write
    nothing. ``block``: ``"i,j,k"``; ``only`` names the input of a batch."""
    cfg = load(config, overrides)
    inputs = input_items(cfg)
    if inputs is not None:
        if only is None and len(inputs) != 1:
            raise ConfigError("--block: name one input of the batch with --input")
        cfg = item_config(cfg, inputs[0] if only is None else select_input(inputs, only))
    else:
        cfg = single_config(cfg)
    register_locations(cfg)
    try:
        idx = tuple(int(v) for v in block.split(","))
    except ValueError:
        raise ConfigError(f"--block {block}: expected block indices like 3,1,0") from None
    try:
        return _one_block(prepare(cfg, "sync"), idx, block)
    finally:
        close_files()


class _located:
    """Names the command that reruns a failed block, where the config is a file."""

    def __init__(self, cfg: LoadedConfig) -> None:
        self.path = config_file(cfg)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> None:
        if not isinstance(exc, BlockError) or exc.block is None or exc.rerun or not self.path:
            return
        if exc.data:  # the input or a record is at fault; the block's rerun shows no more
            return
        at = ",".join(map(str, exc.block))
        rerun = f"segpipe run {self.path} --block {at} --debug"
        raise BlockError(exc.task, exc.block, exc.error, rerun, exc.data) from exc


def _cluster(cfg: LoadedConfig) -> dict | None:
    return cfg.spec.cluster.model_dump(exclude_none=True) if cfg.spec.cluster else None


def scratch_budget(cfg: LoadedConfig) -> int:
    """The config's scratch budget; by default the page cache's share, split between the
    inputs of a batch that run at once (none where halos move through Dask: nothing is
    kept between passes)."""
    if halo_exchange(cfg) == "dask":
        return 0
    given = cfg.spec.engine.scratch_budget
    if given is not None:
        return size_in_bytes(given)
    return page_cache_budget() // cfg.spec.engine.concurrent_inputs


def halo_exchange(cfg: LoadedConfig) -> str:
    """How the run's halo slabs travel: the config's choice, or by default through Dask
    where scratch would be in an object store (measured faster there, with half the
    bytes moved: docs/object-storage.md), else through scratch files."""
    given = cfg.spec.engine.halo_exchange
    if given != "auto":
        return given
    return "dask" if isinstance(scratch_folder(cfg), ObjectPath) else "scratch"


def config_file(cfg: LoadedConfig) -> str | None:
    """The config's file (None: the config was a dict)."""
    return None if cfg.source == "<config>" else cfg.source


def scratch_folder(cfg: LoadedConfig) -> Location:
    """The run's scratch folder: ``.scratch`` in the output folder, or a folder of its
    own, named by the config, in the config's ``engine.scratch`` (which may be shared);
    a prefix in an object store where either is a URL."""
    given = cfg.spec.engine.scratch
    if given is None:
        return location(cfg.spec.output.path) / SCRATCH
    return location(given) / f"segpipe-{config_sha256(cfg)[:16]}"


def _run_prepared(
    cfg, source, get, overwrite: bool, progress: bool, t_start, protected: Protected
) -> RunResult:
    """Run one input (opened as ``source``, not finished earlier) on the cluster's ``get``
    or the config's scheduler; ``overwrite`` replaces another config's output; the output
    folder may be, hold or lie inside none of ``protected`` (see
    :func:`~pipeline.app.output_location.protected_paths`)."""
    scheduler = get or cfg.spec.engine.scheduler
    if cfg.spec.engine.scratch is not None:  # a folder of its own there, checked as outputs are
        check_output_location(scratch_folder(cfg), protected, key="engine.scratch")
        make_output_folder(scratch_folder(cfg), key="engine.scratch")
    prepared = prepare(cfg, scheduler, source)
    out = location(cfg.spec.output.path)
    if cfg.spec.output.table is not None:  # on the grid the labels are made on
        try:
            spacing = prepared.source.spacing
            check_crop_properties(table_properties(cfg.spec.output.table)[1], spacing)
        except ValueError as exc:
            raise DataError(f"output.table.properties: {exc}") from None
    engine = Engine(
        prepared.dag,
        prepared.source,
        prepared.plan,
        scheduler=scheduler,
        num_workers=cfg.spec.engine.workers,
        wave_tasks=cfg.spec.engine.wave_tasks,
        progress=tty_progress if progress else None,
        scratch=Scratch(scratch_folder(cfg), scratch_budget(cfg)),
        halo_exchange=halo_exchange(cfg),
    )
    engine.check([prepared.target])
    sha = config_sha256(cfg)
    checkpoints = cfg.spec.engine.checkpoints
    engine.attach_journal(prepare_output(cfg, overwrite, protected, sha, checkpoints))
    try:
        result = execute(prepared, engine, out, t_start)
    except BaseException:
        engine.close(keep_scratch=True)  # with the journal, a rerun resumes from here
        raise
    engine.close()
    if engine.journal is not None:
        engine.journal.remove()
    return result


def _one_block(prepared: Prepared, idx: tuple[int, ...], block: str) -> BlockResult:
    cfg, plan, target = prepared.cfg, prepared.plan, prepared.target
    if len(idx) != len(plan.grid) or not all(
        0 <= i < g for i, g in zip(idx, plan.grid, strict=True)
    ):
        raise DataError(f"--block {block}: expected indices within the block grid {plan.grid}")
    out = location(cfg.spec.output.path)
    sha = config_sha256(cfg)
    resume = Journal.resumable(out / JOURNAL, sha)
    # (with the run's scratch budget and halo exchange: it decides what is kept as the run
    # does, and a resumed run follows what the journal records of those decisions)
    engine = Engine(
        prepared.dag,
        prepared.source,
        plan,
        scheduler="sync",
        scratch=Scratch(scratch_folder(cfg), scratch_budget(cfg)) if resume else Scratch(),
        halo_exchange=halo_exchange(cfg),
    )
    if resume:
        engine.attach_journal(Journal(out / JOURNAL, sha))
    engine.check([target])
    try:
        engine.resolve([target])
        data = engine.compute_block(target, idx, f"block {block}")
        return BlockResult(
            block=idx,
            box=tuple(tuple(b) for b in plan.box(idx)),
            dtype=str(data.dtype),
            nonzero=int(np.count_nonzero(data)),
            ids=len(np.unique(data[data != 0])),
            resumed_blocks=dict(engine.journal.loaded) if resume else {},
        )
    finally:
        engine.close(keep_scratch=resume)
