"""A prepared run's passes and outputs: the labels (resized where the last step resizes),
the image, the objects table, the report, NIfTI labels, and summary.json last."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from pipeline.app.outputs import (
    overview_step,
    write_nifti_output,
    write_objects_table,
    write_run_report,
)
from pipeline.app.prepared import Prepared, input_range, plan_for
from pipeline.app.results import RunResult
from pipeline.app.summary import make_summary, objects_per_block, size_statistics, write_summary
from pipeline.app.write import voxels_per_id, write_pass
from pipeline.engine.engine import Engine
from pipeline.errors import DataError
from pipeline.graph.dag import SOURCE, Dag, Node
from pipeline.io import ome_zarr
from pipeline.io.locations import Location, remove_tree
from pipeline.io.readers import open_source
from pipeline.io.resized import ResizedSource
from pipeline.measure.projection import projection_factor
from pipeline.ops.resample import output_shape, plan_resize


def _label_dtype(engine, name: str) -> np.dtype:
    """The dtype ``name``'s label image is written in (masks as uint8)."""
    lab = engine.labellings.get(name)
    dtype = np.dtype(lab.luts[0].dtype if lab else engine.dtype_of(name))
    return np.dtype(np.uint8) if dtype == np.bool_ else dtype


def execute(prepared: Prepared, engine: Engine, out: Location, t_start: float) -> RunResult:
    """Make ``prepared``'s labels with ``engine`` and write every output into ``out``."""
    cfg, source, plan, target = prepared.cfg, prepared.source, prepared.plan, prepared.target
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
    # Chunks of background were not written: they read as 0.
    grid = open_source(
        str(kept / "0"), spacing=list(source.spacing), unit=source.unit, allow_missing_chunks=True
    )
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
    remove_tree(kept)
    ids, sizes = voxels_per_id(written)
    ome_zarr.finish_labels(labels_path, final.name, levels, axes, resized.spacing, source.unit, ids)
    summary = make_summary(cfg, resized, plan2, engine, final.name, len(ids), labels_path, levels)
    summary["object_sizes"] = size_statistics(sizes, resized.spacing, source.unit)
    summary["timings"]["total"] = time.perf_counter() - t_start
    return RunResult(len(ids), labels_path, write_summary(out, summary), summary)
