"""Run a pipeline from a config: the function behind ``segpipe run`` and ``pipeline.run``."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pipeline.batch import BatchResult, input_config, run_batch
from pipeline.config.loader import LoadedConfig, load_config
from pipeline.config.model import size_in_bytes
from pipeline.engine.cluster import connect
from pipeline.engine.engine import Engine, tty_progress
from pipeline.engine.journal import FOLDER as JOURNAL
from pipeline.engine.journal import Journal, segpipe_version
from pipeline.engine.scratch import Scratch, page_cache_budget
from pipeline.errors import BlockError, ConfigError, DataError, OutputExistsError
from pipeline.graph.dag import with_input_spacing
from pipeline.io import ome_zarr
from pipeline.io.inputs import BatchInput, input_name
from pipeline.io.readers import Source, close_files, open_source, output_inside
from pipeline.io.resized import ResizedSource
from pipeline.measure.crops import check_crop_properties
from pipeline.measure.projection import projection_factor
from pipeline.ops.resample import output_shape, plan_resize
from pipeline.outputs import (
    overview_step,
    table_properties,
    write_nifti_output,
    write_objects_table,
    write_run_report,
)
from pipeline.run_input import input_items, input_range, opened, plan_for, resized_input
from pipeline.summary import (
    config_sha256,
    make_summary,
    objects_per_block,
    size_statistics,
    write_summary,
)
from pipeline.write import voxels_per_id, write_pass


@dataclass(frozen=True)
class RunResult:
    """What a run produced."""

    count: int
    labels_path: Path
    summary_path: Path
    summary: dict
    earlier: bool = False  # the output held a finished run of this config already


def _finished_run(cfg: LoadedConfig) -> RunResult | None:
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


def _prepare_output(
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


def run(
    config: str | os.PathLike | dict,
    overrides: list[str] | tuple[str, ...] = (),
    overwrite: bool | None = None,
    progress: bool = False,
    scheduler: str | None = None,
    cluster: str | None = None,
    only: str | None = None,
    dry_run: bool = False,
    block: str | None = None,
) -> RunResult | BatchResult | list[dict] | dict:
    """Run a pipeline and write its outputs.

    Parameters
    ----------
    config : path or dict
        YAML file or the same structure as a dict.
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
        Run one input of a batch, by name or 0-based index (no batch table is written:
        for job arrays, one task per input).
    dry_run : bool
        Check the config and open every input (metadata only); compute and write
        nothing. Returns a row per input: name, input, output, shape, blocks.
    block : str, optional
        ``"i,j,k"``: compute just this block's result in this process, on one thread,
        after the passes it needs (loaded from an interrupted run's checkpoints where
        there are some); write nothing. Returns what the block gave.

    Returns
    -------
    RunResult or BatchResult
        Object count, the label image and summary paths, and the summary; for a batch of
        inputs, a row per input (see :mod:`pipeline.batch`).
    """
    try:
        return _run_config(config, overrides, overwrite, progress, scheduler, cluster, only,
                           dry_run, block)  # fmt: skip
    except BlockError as exc:
        if exc.block is None or exc.rerun or isinstance(config, dict):
            raise
        at = ",".join(map(str, exc.block))
        rerun = f"segpipe run {config} --block {at} --debug"
        raise BlockError(exc.task, exc.block, exc.error, rerun) from exc


def _run_config(config, overrides, overwrite, progress, scheduler, cluster, only, dry_run, block):
    from pipeline import modes  # (it builds on this module)

    t_start = time.perf_counter()
    cfg = load_config(config, overrides, scheduler, cluster)
    inputs = input_items(cfg)
    if only is not None:
        inputs = modes.select_input(inputs, only)
    if inputs is None and "{name}" in cfg.spec.output.path:  # one input, named
        path = cfg.spec.input.path
        cfg = load_config(input_config(cfg, BatchInput(input_name(path), path)))
    if dry_run:
        return modes.dry_run(cfg, inputs)
    if block is not None:
        if inputs is not None and len(inputs) != 1:
            raise ConfigError("--block: name one input of the batch with --input")
        if inputs is not None:
            cfg = load_config(input_config(cfg, inputs[0]))
        try:
            return modes.debug_block(cfg, opened(cfg), block)
        finally:
            close_files()
    ow = cfg.spec.output.overwrite if overwrite is None else overwrite
    if inputs is None:  # one input: check it before a cluster starts
        if not ow and (done := _finished_run(cfg)) is not None:
            return done
        source = opened(cfg)
    spec = cfg.spec.cluster.model_dump(exclude_none=True) if cfg.spec.cluster else None
    try:
        with connect(spec) as get:
            sched = get or cfg.spec.engine.scheduler
            if inputs is None:
                return _run(cfg, source, sched, ow, progress, t_start)

            def one(raw: dict, replace_old: bool) -> RunResult:
                one_cfg = load_config(raw)
                if not replace_old and (done := _finished_run(one_cfg)) is not None:
                    return done
                t0 = time.perf_counter()
                return _run(one_cfg, opened(one_cfg), sched, replace_old, False, t0)

            return run_batch(cfg, inputs, one, ow, table=only is None)
    finally:
        close_files()


def _run(cfg, source, scheduler, overwrite: bool, progress, t_start) -> RunResult:
    """Run one input (not finished earlier) on ``scheduler``; ``overwrite`` replaces
    another config's output."""
    out = Path(cfg.spec.output.path)
    sha = config_sha256(cfg)
    target = cfg.spec.output.labels
    dag, source = resized_input(cfg, source, target, scheduler)
    if cfg.spec.output.table is not None:  # on the grid the labels are made on
        try:
            check_crop_properties(table_properties(cfg.spec.output.table)[1], source.spacing)
        except ValueError as exc:
            raise DataError(f"output.table.properties: {exc}") from None
    dag = with_input_spacing(dag, source.spacing)
    plan = plan_for(cfg, source)
    engine = Engine(
        dag,
        source,
        plan,
        scheduler=scheduler,
        num_workers=cfg.spec.engine.workers,
        wave_tasks=cfg.spec.engine.wave_tasks,
        progress=tty_progress if progress else None,
        scratch=Scratch(cfg.spec.engine.scratch or out / ".scratch", _scratch_budget(cfg)),
    )
    engine.check([target])
    engine.attach_journal(_prepare_output(out, overwrite, source, sha, cfg.spec.engine.checkpoints))
    try:
        result = _execute(cfg, source, plan, engine, target, out, t_start)
    except BaseException:
        engine.close(keep_scratch=True)  # with the journal, a rerun resumes from here
        raise
    engine.close()
    if engine.journal is not None:
        engine.journal.remove()
    return result


def _scratch_budget(cfg: LoadedConfig) -> int:
    """The config's scratch budget; by default the page cache's share, split between the
    inputs of a batch that run at once."""
    given = cfg.spec.engine.scratch_budget
    if given is not None:
        return size_in_bytes(given)
    return page_cache_budget() // cfg.spec.engine.concurrent_inputs


def _label_dtype(engine, name: str) -> np.dtype:
    """The dtype ``name``'s label image is written in (masks as uint8)."""
    lab = engine.labellings.get(name)
    dtype = np.dtype(lab.luts[0].dtype if lab else engine.dtype_of(name))
    return np.dtype(np.uint8) if dtype == np.bool_ else dtype


def _execute(cfg, source, plan, engine, target, out, t_start) -> RunResult:
    final = engine.dag.nodes[target]
    if final.kind == "resample":  # labels made on this grid, written on another
        return _execute_resized(cfg, source, plan, engine, final, out, t_start)
    engine.resolve([target])
    lab = engine.labellings.get(target)
    dtype = _label_dtype(engine, target)
    spec = cfg.spec.output
    image = None
    labels_path = out / f"{target}.ome.zarr"
    if spec.image is not None:  # the labels go into the image's labels/ group
        image = (out / "image.ome.zarr", spec.image)
        labels_path = image[0] / "labels" / target
    overview = overview_step(cfg, source)
    levels, written, merged = write_pass(
        engine,
        target,
        labels_path,
        dtype,
        source.spatial_axes,
        count_ids=lab is None,
        measures=spec.table is not None,
        intensity=spec.table.intensity if spec.table is not None else None,
        image=image,
        projection=projection_factor(plan.shape) if spec.report else None,
        overview=overview if spec.report else None,
    )
    if lab is not None:  # stitched labels know their ids and sizes
        ids, sizes = np.arange(1, lab.count + 1), lab.sizes
    else:  # other label images (watershed, classes): the ids written
        ids, sizes = voxels_per_id(written)
    count = len(ids)
    summary = make_summary(cfg, source, plan, engine, target, count, labels_path, levels)
    summary["object_sizes"] = size_statistics(sizes, source.spacing, source.unit)
    summary["objects_per_block"] = objects_per_block(lab, written)
    if final.kind == "global":  # a class image (kmeans, multi_otsu)
        summary["voxels_per_class"] = {str(i): int(c) for i, c in zip(ids, sizes, strict=True)}
    if spec.table is not None:
        table = write_objects_table(cfg, engine, out, labels_path, merged, source, summary)
        summary["table"] = str(table)
    props = {"num_pixels": np.asarray(sizes, np.int64)}
    props["area"] = props["num_pixels"] * float(np.prod(source.spacing))
    finish = (labels_path, target, levels, source.spatial_axes, source.spacing, source.unit)
    if image is not None:
        ome_zarr.finish_labels(*finish, ids, props, source_image="../../")
        ome_zarr.finish_image(image[0], spec.image, *finish[2:], labels=[target])
        summary["image"] = str(image[0])
    else:
        ome_zarr.finish_labels(*finish, ids, props)
    if spec.nifti:
        top = int(ids.max()) if len(ids) else 0
        summary["nifti"] = write_nifti_output(out, labels_path, top, source)
    if spec.report:
        summary["report"] = write_run_report(out, source, plan, written, sizes, summary, overview)
    summary["timings"]["total"] = time.perf_counter() - t_start
    return RunResult(count, labels_path, write_summary(out, summary), summary)


def _execute_resized(cfg, source, plan, engine, final, out, t_start) -> RunResult:
    """Make the labels of the step the final resize reads, keep them, and write them
    resized (nearest for labels and masks) on the new grid."""
    from pipeline.graph.dag import SOURCE, Dag, Node

    made = final.inputs[0]
    for key in ("table", "image", "report", "nifti"):
        if getattr(cfg.spec.output, key):
            raise DataError(
                f"output.{key}: not supported for labels resized by the last step "
                f"({final.name!r}); resize the input instead"
            )
    engine.resolve([made])
    dtype = _label_dtype(engine, made)
    kept = out / ".before-resize.zarr"
    write_pass(engine, made, kept, dtype, source.spatial_axes, levels=1, label=f"keep {made}")
    grid = open_source(kept / "0", spacing=list(source.spacing), unit=source.unit)
    try:
        shape = output_shape(grid.shape, grid.spacing, final.params)
        r = plan_resize(grid.shape, shape, grid.dtype, final.role, final.params)
    except ValueError as exc:
        raise DataError(f"step {final.name!r}: {exc}") from None
    if r.order > 0:
        lo, hi = input_range(cfg, grid, engine.scheduler)
        r = replace(r, clip=(float(lo), float(hi)))
    resized = ResizedSource(grid, r)
    plan2 = plan_for(cfg, resized)
    dag = Dag({SOURCE: Node(SOURCE, None, None, (), final.role)}, {SOURCE: []})
    writer = Engine(
        dag,
        resized,
        plan2,
        scheduler=engine.scheduler,
        num_workers=engine.num_workers,
        wave_tasks=engine.wave_tasks,
        journal=engine.journal,
    )
    try:
        labels_path = out / f"{final.name}.ome.zarr"
        out_dtype = resized.resize.out_dtype
        axes = source.spatial_axes
        levels, written, _ = write_pass(
            writer, SOURCE, labels_path, out_dtype, axes, count_ids=True
        )
        engine.timings.update(writer.timings)
    finally:
        writer.close()
    # Kept until the resized labels are written: a resumed run reads it again.
    shutil.rmtree(kept, ignore_errors=True)
    ids, sizes = voxels_per_id(written)
    ome_zarr.finish_labels(labels_path, final.name, levels, axes, resized.spacing, source.unit, ids)
    summary = make_summary(cfg, resized, plan2, engine, final.name, len(ids), labels_path, levels)
    summary["object_sizes"] = size_statistics(sizes, resized.spacing, source.unit)
    summary["timings"]["total"] = time.perf_counter() - t_start
    return RunResult(len(ids), labels_path, write_summary(out, summary), summary)
