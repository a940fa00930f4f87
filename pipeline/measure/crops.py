"""Per-object properties that need the object's voxels, from crops of the label image.

``skimage.measure.regionprops`` computes each of these from the object's image inside
its bounding box. An object whose bounding box lies inside one block is measured on
that block; any other object on its own bounding-box crop. Either way the object's
image is the one regionprops sees on the whole array, so the values are the same.
"""

from __future__ import annotations

import warnings

import numpy as np
from skimage.measure import regionprops, regionprops_table

CROP_PROPERTIES = (
    "area_bbox",
    "area_convex",
    "area_filled",
    "axis_major_length",
    "axis_minor_length",
    "eccentricity",
    "euler_number",
    "extent",
    "feret_diameter_max",
    "inertia_tensor_eigvals",
    "orientation",
    "perimeter",
    "perimeter_crofton",
    "solidity",
)


def _probe(ndim: int) -> np.ndarray:
    """One cube object, 3 voxels a side, that every crop property is defined for."""
    probe = np.zeros((5,) * ndim, np.int32)
    probe[(slice(1, 4),) * ndim] = 1
    return probe


def check_crop_properties(properties: tuple[str, ...], spacing: tuple[float, ...]) -> None:
    """Raise ValueError for a property skimage does not define for this grid."""
    probe = _probe(len(spacing))
    for prop in properties:
        try:
            regionprops_table(probe, properties=[prop], spacing=spacing)
        except NotImplementedError as exc:
            raise ValueError(f"{prop}: {exc} (spacing {list(spacing)})") from None


def crop_properties(
    labels: np.ndarray,
    ids: np.ndarray,
    properties: tuple[str, ...],
    spacing: tuple[float, ...],
) -> dict[str, np.ndarray]:
    """Properties of objects ``ids``, each wholly inside ``labels`` (a block or a crop).

    Parameters
    ----------
    labels : ndarray of int
        Label image holding every voxel of the objects.
    ids : ndarray of int
        The objects to measure (others in ``labels`` are ignored).
    properties : tuple of str
        Names from :data:`CROP_PROPERTIES`.
    spacing : tuple of float
        Voxel size per axis.

    Returns
    -------
    dict
        ``label`` and one column per property value, named as ``regionprops_table``
        names them.
    """
    wanted = np.where(np.isin(labels, ids), labels, 0)
    # skimage warns, with Qhull's whole report, for each flat object's convex hull; its
    # value (an empty hull) stays in the table and the run's warnings count what is not
    # finite. A filter, not catch_warnings, which is not safe in threads; adding it again
    # only moves it to the front.
    warnings.filterwarnings("ignore", "Failed to get convex hull image", UserWarning)
    with np.errstate(all="ignore"):  # e.g. solidity of a flat object: area / 0
        try:
            return regionprops_table(wanted, properties=("label", *properties), spacing=spacing)
        except UNDEFINED:  # some object has a property skimage cannot compute
            return _one_by_one(wanted, properties, spacing)


# What skimage raises for a property it cannot compute on an object (marching cubes of
# a one-voxel-thick object for feret_diameter_max, Qhull on collinear points).
UNDEFINED = (ValueError, RuntimeError, ArithmeticError, IndexError)


def _one_by_one(
    wanted: np.ndarray, properties: tuple[str, ...], spacing: tuple[float, ...]
) -> dict[str, np.ndarray]:
    """The table of :func:`crop_properties`, each object and property on its own: NaN
    where skimage cannot compute a property of an object."""
    names = _columns(properties, spacing)
    rows = []
    for region in regionprops(wanted):
        crop = np.where(wanted[region.slice] == region.label, region.label, 0)
        row: dict[str, float] = {"label": region.label}
        for prop in properties:
            try:
                cols = regionprops_table(crop, properties=[prop], spacing=spacing)
                row.update({k: float(v[0]) for k, v in cols.items()})
            except UNDEFINED:
                row.update(dict.fromkeys(names[prop], np.nan))
        rows.append(row)
    out = {"label": np.array([r["label"] for r in rows], wanted.dtype)}
    for prop in properties:
        for k in names[prop]:
            out[k] = np.array([r[k] for r in rows], np.float64)
    return out


def _columns(properties: tuple[str, ...], spacing: tuple[float, ...]) -> dict[str, list[str]]:
    """The table columns of each property (``inertia_tensor_eigvals-0`` ... for a vector)."""
    cols = regionprops_table(_probe(len(spacing)), properties=properties, spacing=spacing)
    return {p: [k for k in cols if k == p or k.startswith(f"{p}-")] for p in properties}
