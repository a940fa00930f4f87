"""The run's outputs beyond the label image: the objects table, the report, NIfTI labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.app.crop_pass import crop_pass
from pipeline.errors import DataError
from pipeline.io.nifti_labels import nifti_affine, write_nifti_labels
from pipeline.io.table import write_table
from pipeline.measure import objects as measure
from pipeline.measure.crops import CROP_PROPERTIES
from pipeline.measure.projection import projection_factor


def overview_step(cfg, source) -> str | None:
    """The image the report's overview shows: output.image, the intensity image, or
    the input when it is not RGB."""
    spec = cfg.spec.output
    if spec.image is not None:
        return spec.image
    if spec.table is not None and spec.table.intensity is not None:
        return spec.table.intensity
    return None if source.color else "input"


def write_run_report(out: Path, source, plan, written, sizes, summary: dict, overview) -> str:
    """Write report/ (pictures and an HTML page); its path."""
    from pipeline.io.report import write_report
    from pipeline.measure.projection import assemble_projection

    factor = projection_factor(plan.shape)
    labels = assemble_projection([w.label_piece for w in written], plan.shape, factor)
    image = None
    if overview is not None:
        image = assemble_projection([w.image_piece for w in written], plan.shape, factor)
    voxel = float(np.prod(source.spacing))
    unit = f"{source.unit}^{len(source.spacing)}" if source.unit else "voxels"
    per_block = np.asarray(summary["objects_per_block"]).reshape(plan.grid)
    path = write_report(
        out / "report", image, labels, np.asarray(sizes) * voxel, unit, per_block, summary
    )
    return str(path)


def table_properties(spec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The table's aggregated properties and its crop properties."""
    props = spec.properties or [
        p for p in measure.PROPERTIES if p not in measure.INTENSITY or spec.intensity
    ]
    return (
        tuple(p for p in props if p not in CROP_PROPERTIES),
        tuple(p for p in props if p in CROP_PROPERTIES),
    )


def write_objects_table(
    cfg, engine, out: Path, labels: Path, merged, source, summary: dict
) -> Path:
    """The objects' table from the merged partial aggregates (Parquet or CSV), with the
    crop properties measured on the written labels."""
    spec = cfg.spec.output.table
    props, crops = table_properties(spec)
    spacing = tuple(source.spacing)
    try:
        cols = measure.table(merged, spacing, props)
    except ValueError as exc:
        raise DataError(f"output.table: {exc}") from None
    if crops:
        measured = crop_pass(engine, labels, merged, crops, spacing)
        cols.update(measured)
        summary["warnings"].extend(_not_finite(measured))
    if "area" in props:
        cols["unit"] = np.array([source.unit or "voxel"] * len(merged.ids), dtype=object)
    path = out / f"{summary['labels_step']}.{spec.format}"
    provenance = {k: summary[k] for k in ("config_sha256", "versions", "labels")}
    write_table(path, cols, measure.object_blocks(merged), spec.format, provenance)
    return path


def _not_finite(cols: dict[str, np.ndarray]) -> list[str]:
    """A warning per column with values skimage leaves undefined (NaN, infinity)."""
    said = []
    for name, values in cols.items():
        bad = int(np.count_nonzero(~np.isfinite(values))) if values.dtype.kind == "f" else 0
        if bad:
            said.append(
                f"output.table: {name} is not finite for {bad} of {len(values)} objects "
                "(objects one voxel thick along an axis: skimage gives no finite value)"
            )
    return said


def write_nifti_output(out: Path, labels_path: Path, top: int, source) -> str:
    """``labels.nii.gz`` beside the other outputs, from the written labels' full level;
    ``top`` is the largest label written."""
    import zarr

    labels = zarr.open_array(str(Path(labels_path) / "0"), mode="r")
    affine = nifti_affine(source)
    return str(write_nifti_labels(labels, top, out / "labels.nii.gz", affine, source.unit))
