"""Per-object properties that need the object's voxels, from crops of the label image.

``skimage.measure.regionprops`` computes each of these from the object's image inside
its bounding box. An object whose bounding box lies inside one block is measured on
that block; any other object on its own bounding-box crop. Either way the object's
image is the one regionprops sees on the whole array, so the values are the same.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import regionprops_table

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


def check_crop_properties(properties: tuple[str, ...], spacing: tuple[float, ...]) -> None:
    """Raise ValueError for a property skimage does not define for this grid."""
    ndim = len(spacing)
    probe = np.zeros((5,) * ndim, np.int32)
    probe[(slice(1, 4),) * ndim] = 1
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
    return regionprops_table(wanted, properties=("label", *properties), spacing=spacing)
