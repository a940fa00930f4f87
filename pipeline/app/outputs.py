"""The run's outputs beyond the label image: the objects table, the report, NIfTI labels."""

from __future__ import annotations

import numpy as np

from pipeline.app.crop_pass import crop_pass
from pipeline.errors import DataError
from pipeline.io.locations import Location, beside, staged
from pipeline.io.nifti_labels import nifti_affine, write_nifti_labels
from pipeline.io.ome_zarr import open_level
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


def write_run_report(out: Location, source, plan, written, sizes, summary: dict, overview) -> str:
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
    with staged(out / "report") as folder:
        sized = np.asarray(sizes) * voxel
        path = write_report(folder, image, labels, sized, unit, per_block, summary)
    return str(beside(path, folder, out / "report"))


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
    cfg, engine, out: Location, labels: Location, merged, source, summary: dict
) -> Location:
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
    name = f"{summary['labels_step']}.{spec.format}"
    provenance = {k: summary[k] for k in ("config_sha256", "versions", "labels")}
    with staged(out) as folder:
        write_table(folder / name, cols, measure.object_blocks(merged), spec.format, provenance)
    return out / name


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


def write_nifti_output(out: Location, labels_path: Location, top: int, source) -> str:
    """``labels.nii.gz`` beside the other outputs, from the written labels' full level;
    ``top`` is the largest label written."""
    labels = open_level(labels_path, 0)
    affine = nifti_affine(source)
    with staged(out) as folder:
        write_nifti_labels(labels, top, folder / "labels.nii.gz", affine, source.unit)
    return str(out / "labels.nii.gz")
