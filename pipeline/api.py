"""Run a pipeline from a config: the function behind ``segpipe run`` and ``pipeline.run``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from pipeline.config.loader import LoadedConfig, load_config
from pipeline.engine.blocks import BlockPlan, auto_block
from pipeline.engine.run import Engine, tty_progress
from pipeline.engine.scratch import Scratch
from pipeline.errors import ConfigError, DataError, OutputExistsError
from pipeline.graph.dag import with_input_spacing, without_resample
from pipeline.io import ome_zarr
from pipeline.io.readers import Source, close_files, open_source, output_inside
from pipeline.io.resized import ResizedSource
from pipeline.ops import measure
from pipeline.ops.resample import convert, output_shape, plan_resize


@dataclass(frozen=True)
class RunResult:
    """What a run produced."""

    count: int
    labels_path: Path
    summary_path: Path
    summary: dict


def plan_for(cfg: LoadedConfig, source: Source, auto_only: bool = False) -> BlockPlan:
    """The block plan of a config on its source (``auto_only``: ignore input.chunks)."""
    chunks = "auto" if auto_only else cfg.spec.input.chunks
    shape = source.shape
    if chunks == "auto":
        block = auto_block(shape, source.storage_chunks, 8)
    else:
        if len(chunks) != len(shape):
            raise DataError(
                f"input.chunks: expected {len(shape)} values for an image of shape {shape}, "
                f"got {list(chunks)}"
            )
        block = tuple(chunks)
    return BlockPlan.regular(shape, block)


def open_input(cfg: LoadedConfig) -> Source:
    """Open the config's input lazily."""
    i = cfg.spec.input
    # Relative paths are relative to the working directory, as on the command line.
    return open_source(i.path, i.channel, i.timepoint, i.dataset, i.spacing, i.unit)


def _check_roles(cfg: LoadedConfig, source: Source) -> None:
    for node in cfg.dag.nodes.values():
        if node.op is None:
            continue
        if node.op.name == "grayscale" and not source.color:
            raise DataError(
                f"step {node.name!r}: grayscale needs an RGB(A) image, "
                f"the input has axes {source.axes!r}"
            )
        if "color" not in node.op.accepts and source.color and node.inputs[0] == "input":
            raise DataError(
                f"step {node.name!r}: the input is RGB (axes {source.axes!r}); "
                "add a grayscale step first"
            )
    dtype = np.dtype(source.dtype)
    if dtype.kind not in "uifb":
        raise DataError(f"{source.path}: cannot segment dtype {dtype}")


def _resized(cfg: LoadedConfig, source, target: str):
    """The DAG and source to run: with a resize step, the resized input is the source."""
    dag, step = without_resample(cfg.dag)
    if step is None:
        return dag, source
    if step.name == target:
        raise ConfigError(f"output.labels: step {target!r} only resizes; name a later step")
    try:
        out_shape = output_shape(source.shape, source.spacing, step.params)
        r = plan_resize(
            source.shape, out_shape, source.dtype, cfg.dag.nodes["input"].role, step.params
        )
    except ValueError as exc:
        raise DataError(f"step {step.name!r}: {exc}") from None
    if r.order > 0:  # skimage clips to the whole input's range
        lo, hi = _input_range(cfg, source)
        conv = convert(np.array([lo, hi], dtype=source.dtype), r)
        r = replace(r, clip=(conv[0].item(), conv[1].item()))
    return dag, ResizedSource(source, r)


def _input_range(cfg: LoadedConfig, source) -> tuple:
    """Minimum and maximum of the input image (one pass over its blocks)."""
    from types import SimpleNamespace

    from pipeline.graph.dag import SOURCE, Dag, Node
    from pipeline.ops.histogram import block_range, merge_range

    dag = Dag({SOURCE: Node(SOURCE, None, None, (), "image")}, {SOURCE: []})
    plan = plan_for(cfg, source, auto_only=True)
    engine = Engine(dag, source, plan, scheduler=cfg.spec.engine.scheduler)
    try:
        node = SimpleNamespace(name="input-range", inputs=(SOURCE,))
        return engine.reduce(node, block_range, merge_range, None, 1, "range input")
    finally:
        engine.close()


def _prepare_output(path: Path, overwrite: bool, source: Source) -> None:
    if output_inside(path, source):
        raise DataError(f"output.path {path} is inside the input {source.path}")
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"output.path {path} exists (use --overwrite to replace it)")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def run(
    config: str | os.PathLike | dict,
    overrides: list[str] | tuple[str, ...] = (),
    overwrite: bool | None = None,
    progress: bool = False,
) -> RunResult:
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

    Returns
    -------
    RunResult
        Object count, the label image and summary paths, and the summary.
    """
    t_start = time.perf_counter()
    cfg = load_config(config, overrides)
    source = open_input(cfg)
    _check_roles(cfg, source)
    target = cfg.spec.output.labels
    dag, source = _resized(cfg, source, target)
    dag = with_input_spacing(dag, source.spacing)
    plan = plan_for(cfg, source)
    out = Path(cfg.spec.output.path)
    engine = Engine(
        dag,
        source,
        plan,
        scheduler=cfg.spec.engine.scheduler,
        num_workers=cfg.spec.engine.workers,
        progress=tty_progress if progress else None,
        scratch=Scratch(cfg.spec.engine.scratch or out / ".scratch"),
    )
    engine.check([target])
    _prepare_output(out, cfg.spec.output.overwrite if overwrite is None else overwrite, source)
    try:
        return _execute(cfg, source, plan, engine, target, out, t_start)
    finally:
        engine.close()
        close_files()


def _execute(cfg, source, plan, engine, target, out, t_start) -> RunResult:
    final = engine.dag.nodes[target]
    if final.kind == "resample":  # labels made on this grid, written on another
        return _execute_resized(cfg, source, plan, engine, final, out, t_start)
    engine.resolve([target])
    lab = engine.labellings.get(target)
    dtype = lab.luts[0].dtype if lab else engine.dtype_of(target)
    if dtype == np.bool_:
        dtype = np.dtype(np.uint8)
    labels_path = out / f"{target}.ome.zarr"
    axes = source.spatial_axes
    spec = cfg.spec.output.table
    also = (spec.intensity,) if spec is not None and spec.intensity else ()
    levels, written = _write_labels(
        engine, target, labels_path, dtype, axes, lab is None, spec is not None, also
    )
    ids = [w[0] for w in written]
    # Stitched labels know their count; other label images (watershed, classes) count
    # the distinct ids written.
    count = _distinct(ids, dtype) if lab is None else lab.count
    ome_zarr.finish_labels(labels_path, target, levels, axes, source.spacing, source.unit, count)
    summary = _summary(cfg, source, plan, engine, target, count, labels_path, levels)
    summary["objects_per_block"] = _objects_per_block(lab, ids)
    if engine.dag.nodes[target].kind == "global":  # a class image (kmeans, multi_otsu)
        summary["voxels_per_class"] = _voxels_per_id([w[2] for w in written])
    if spec is not None:
        summary["table"] = _write_table(cfg, out, target, [w[1] for w in written], source, summary)
    summary["timings"]["total"] = time.perf_counter() - t_start
    return RunResult(count, labels_path, _write_summary(out, summary), summary)


def _write_table(cfg, out: Path, name: str, partials: list, source, summary: dict) -> str:
    """The objects' table from the blocks' partial aggregates (Parquet or CSV)."""
    spec = cfg.spec.output.table
    props = tuple(
        spec.properties
        or [p for p in measure.PROPERTIES if p not in measure.INTENSITY or spec.intensity]
    )
    merged = measure.merge(partials)
    try:
        cols = measure.table(merged, tuple(source.spacing), props)
    except ValueError as exc:
        raise DataError(f"output.table: {exc}") from None
    n = len(merged.ids)
    if "area" in props:
        cols["unit"] = np.array([source.unit or "voxel"] * n, dtype=object)
    blocks = measure.object_blocks(partials, merged.ids)
    path = out / f"{name}.{spec.format}"
    if spec.format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        meta = {
            "segpipe": json.dumps(
                {
                    "config_sha256": summary["config_sha256"],
                    "versions": summary["versions"],
                    "labels": summary["labels"],
                }
            )
        }
        arrays = {k: pa.array(v) for k, v in cols.items()}
        arrays["blocks"] = pa.array([b.tolist() for b in blocks], type=pa.list_(pa.int64()))
        t = pa.table(arrays).replace_schema_metadata(meta)
        pq.write_table(t, path)
    else:
        import csv

        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow([*cols, "blocks"])
            joined = [";".join(map(str, b.tolist())) for b in blocks]
            for row in zip(*[c.tolist() for c in cols.values()], joined, strict=True):
                w.writerow(row)
    return str(path)


def _execute_resized(cfg, source, plan, engine, final, out, t_start) -> RunResult:
    """Make the labels of the step the final resize reads, keep them, and write them
    resized (nearest for labels and masks) on the new grid."""
    from pipeline.graph.dag import SOURCE, Dag, Node

    made = final.inputs[0]
    if cfg.spec.output.table is not None:
        raise DataError("output.table: a table of labels resized by the last step is not supported")
    engine.resolve([made])
    lab = engine.labellings.get(made)
    dtype = lab.luts[0].dtype if lab else engine.dtype_of(made)
    dtype = np.dtype(np.uint8) if dtype == np.bool_ else np.dtype(dtype)
    kept = out / ".before-resize.zarr"
    _write_labels(
        engine, made, kept, dtype, source.spatial_axes, False, levels=1, label=f"keep {made}"
    )
    try:
        grid = open_source(kept / "0", spacing=list(source.spacing), unit=source.unit)
        try:
            shape = output_shape(grid.shape, grid.spacing, final.params)
            r = plan_resize(grid.shape, shape, grid.dtype, final.role, final.params)
        except ValueError as exc:
            raise DataError(f"step {final.name!r}: {exc}") from None
        if r.order > 0:
            lo, hi = _input_range(cfg, grid)
            r = replace(r, clip=(float(lo), float(hi)))
        resized = ResizedSource(grid, r)
        plan2 = plan_for(cfg, resized)
        dag = Dag({SOURCE: Node(SOURCE, None, None, (), final.role)}, {SOURCE: []})
        writer = Engine(dag, resized, plan2, scheduler=cfg.spec.engine.scheduler)
        try:
            labels_path = out / f"{final.name}.ome.zarr"
            out_dtype = resized.resize.out_dtype
            axes = source.spatial_axes
            levels, written = _write_labels(writer, SOURCE, labels_path, out_dtype, axes, True)
            engine.timings.update(writer.timings)
        finally:
            writer.close()
    finally:
        shutil.rmtree(kept, ignore_errors=True)
    count = _distinct([w[0] for w in written], out_dtype)
    ome_zarr.finish_labels(
        labels_path, final.name, levels, axes, resized.spacing, source.unit, count
    )
    summary = _summary(cfg, resized, plan2, engine, final.name, count, labels_path, levels)
    summary["timings"]["total"] = time.perf_counter() - t_start
    return RunResult(count, labels_path, _write_summary(out, summary), summary)


def _write_labels(
    engine,
    target,
    path: Path,
    dtype,
    axes,
    count_ids,
    measures=False,
    also=(),
    levels=None,
    label="write labels",
):
    """Create the label image of ``target`` and write every block (the last pass).

    Returns the number of pyramid levels and, per block, what :func:`_write` gives.
    """
    plan = engine.plan
    block = tuple(c[0] for c in plan.chunks)
    levels = levels or ome_zarr.pyramid_levels(plan.shape, block)
    ome_zarr.create_labels(path, plan.shape, block, dtype, levels, axes)
    written = engine.for_each_block(
        target, _write, label, str(path), levels, dtype, count_ids, measures, also=also
    )
    return levels, written


def _distinct(ids: list, dtype) -> int:
    """How many distinct non-zero ids the blocks wrote."""
    return len(np.unique(np.concatenate([np.zeros(0, dtype), *ids])))


def _size_statistics(sizes: np.ndarray, spacing, unit) -> dict:
    """Object sizes in voxels: min, percentiles, max; and in physical units."""
    if len(sizes) == 0:
        return {"count": 0}
    q = np.percentile(sizes, [5, 25, 50, 75, 95])
    voxel = float(np.prod(spacing))
    return {
        "count": len(sizes),
        "min": int(sizes.min()),
        "p5": float(q[0]),
        "p25": float(q[1]),
        "median": float(q[2]),
        "p75": float(q[3]),
        "p95": float(q[4]),
        "max": int(sizes.max()),
        "voxel_size": voxel,
        "unit": f"{unit}^{len(spacing)}" if unit else "voxels",
        "median_physical": float(q[2]) * voxel,
    }


def _voxels_per_id(parts: list) -> dict[str, int]:
    """Voxels of each non-zero id over all blocks (class images: per class)."""
    total: dict[int, int] = {}
    for ids, counts in parts:
        for i, c in zip(ids.tolist(), counts.tolist(), strict=True):
            total[i] = total.get(i, 0) + c
    return {str(k): v for k, v in sorted(total.items())}


def _objects_per_block(lab, ids: list) -> list[int]:
    """Objects present in each block, in raster order of the blocks."""
    if lab is not None:
        return [int(np.count_nonzero(np.unique(lut[1:]))) for lut in lab.luts]
    return [0 if i is None else len(i) for i in ids]


def _write_summary(out: Path, summary: dict) -> Path:
    """Write ``summary.json`` last, under a temporary name first: its presence means done."""
    path = out / "summary.json"
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, default=_json_default))
    tmp.replace(path)
    return path


def _write(box, data, path, levels, dtype, count_ids: bool, measures: bool = False, *also):
    """Write one block. Returns the distinct non-zero ids in it (when ``count_ids``) and
    its objects' partial measurements (when ``measures``; ``also``: the intensity block)."""
    data = data.astype(dtype, copy=False)
    ome_zarr.write_block(path, levels, box, data)
    ids = counts = None
    if count_ids:
        ids, counts = np.unique(data[data != 0], return_counts=True)
        counts = (ids, counts)
    part = measure.block_partial(data, also[0] if also else None, box) if measures else None
    return ids, part, counts


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def _versions() -> dict:
    out = {}
    for pkg in (
        "segpipe",
        "dask",
        "numpy",
        "scipy",
        "scikit-image",
        "zarr",
        "tifffile",
        "connected-components-3d",
        "pydantic",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _summary(cfg, source, plan, engine, target, count, labels_path, levels) -> dict:
    resolved = cfg.spec.model_dump(mode="json")
    blob = json.dumps(resolved, sort_keys=True).encode()
    lab = engine.labellings.get(target)
    sizes = lab.sizes if lab is not None else np.zeros(0)
    return {
        "count": int(count),
        "labels": str(labels_path),
        "labels_step": target,
        "input": {
            "path": source.path,
            "axes": source.axes,
            "dtype": source.dtype,
            "spacing": list(source.spacing),
            "unit": source.unit,
        },
        "shape": list(plan.shape),
        "chunks": [list(c) for c in plan.chunks],
        "blocks": plan.nblocks,
        "pyramid_levels": levels,
        "thresholds": engine.thresholds,
        # Steps of the config (not the engine's own checks, whose names hold a colon).
        "counts": {k: v.count for k, v in engine.labellings.items() if ":" not in k},
        "warnings": list(engine.warnings),
        "object_sizes": _size_statistics(sizes, source.spacing, source.unit),
        "timings": dict(engine.timings),
        "versions": _versions(),
        "config": resolved,
        "config_sha256": hashlib.sha256(blob).hexdigest(),
    }
