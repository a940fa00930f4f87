"""summary.json: what a run did, with what, and what came out; written last."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from pipeline.io.locations import Location, ObjectPath
from pipeline.io.readers import library_messages
from pipeline.io.storage import hidden


def size_statistics(sizes: np.ndarray, spacing, unit) -> dict:
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


def objects_per_block(lab, written: list) -> list[int]:
    """Objects present in each block, in raster order of the blocks (``lab``: the
    stitched labelling, else the ids each block wrote)."""
    if lab is not None:
        return [_distinct_nonzero(lut[1:]) for lut in lab.luts]
    return [0 if w.ids is None else len(w.ids) for w in written]


def _distinct_nonzero(values: np.ndarray) -> int:
    # A sort: numpy's unique hashes small integer arrays, much slower on a block's table.
    ids = np.sort(values[values != 0])
    return int(ids.size and 1 + np.count_nonzero(ids[1:] != ids[:-1]))


def write_summary(out: Location, summary: dict) -> Location:
    """Write ``summary.json`` last, whole (locally under a temporary name first): its
    presence means done."""
    path = out / "summary.json"
    text = json.dumps(summary, indent=2, default=_json_default)
    if isinstance(out, ObjectPath):  # an object is written whole or not at all
        path.write_text(text)
        return path
    tmp = out / "summary.json.tmp"
    tmp.write_text(text)
    tmp.replace(path)
    return path


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path | ObjectPath):
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
        "pyarrow",
        "matplotlib",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def shown_config(cfg) -> dict:
    """The resolved config as a summary records it: every secret of its storage options
    replaced."""
    shown = cfg.spec.model_dump(mode="json")
    for section in ("input", "output"):
        if shown[section].get("storage_options"):
            shown[section]["storage_options"] = hidden(shown[section]["storage_options"])
    return shown


def config_sha256(cfg) -> str:
    """SHA-256 of the resolved config, without the sections that only say where and how
    the work runs (``engine``, ``cluster``): equal hashes mean equal results."""
    where = {"storage_options"}  # how the data is reached, not what it is
    exclude = {"engine": True, "cluster": True, "input": where, "output": where}
    resolved = cfg.spec.model_dump(mode="json", exclude=exclude)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()


def _placement(source) -> dict:
    """The input's affine (voxel x, y, z → world) and world space, where it has one, and the
    selection made from it."""
    base = getattr(source, "base", source)
    out: dict = {}
    if getattr(base, "affine", None) is not None:
        out["affine"] = [list(row) for row in base.affine]
        out["world_space"] = base.world_space
    for key in ("crop", "fixed"):
        if getattr(base, key, ()):
            axes = base.native_axes
            out[key] = {axes[a]: list(rest) for a, *rest in getattr(base, key)}
    return out


def make_summary(cfg, source, plan, engine, target, count, labels_path, levels) -> dict:
    """The summary's common part: input, grid, thresholds, timings, versions, config."""
    loaded = engine.journal.loaded if engine.journal is not None else {}
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
            **_placement(source),
        },
        "shape": list(plan.shape),
        "chunks": [list(c) for c in plan.chunks],
        "blocks": plan.nblocks,
        "pyramid_levels": levels,
        "thresholds": engine.thresholds,
        # Steps of the config (not the engine's own checks, whose names hold a colon).
        "counts": {k: v.count for k, v in engine.labellings.items() if ":" not in k},
        "warnings": list(engine.warnings),
        # What the reading libraries said of the input (kept off stderr).
        "input_messages": library_messages(source.path),
        # Blocks of each pass loaded from an interrupted run's records, not computed.
        "resumed_blocks": {k: v for k, v in loaded.items() if v},
        "timings": dict(engine.timings),
        "versions": _versions(),
        "config": shown_config(cfg),
        "config_sha256": config_sha256(cfg),
    }
