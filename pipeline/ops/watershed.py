"""Markers from peaks of the whole volume, and watershed from globally numbered markers.

``peak_local_max`` finds candidate peaks per block (a maximum filter through the
halo), then applies scikit-image's rules to the candidates of the whole volume at
once: global threshold, border exclusion, brightest first, minimum spacing. So the
peaks equal ``skimage.feature.peak_local_max`` on the whole image.

``watershed`` floods each block grown by ``halo`` from the markers it sees. Markers
are numbered over the whole volume (label the peaks with ``label``), so one object
has one id in every block and nothing needs matching afterwards. The result equals
the whole-image watershed wherever each voxel's basin and its marker lie within the
halo; the agreement is measured, not assumed (see the README).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

import numpy as np
from pydantic import Field
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from pipeline.kernels.histogram import value_range
from pipeline.kernels.reduction import Stats
from pipeline.ops.contract import GlobalOp, NeighbourhoodOp, OpParams, Preflight, core_slices


class PeaksParams(OpParams):
    """Parameters of the ``peak_local_max`` op (skimage's names and defaults)."""

    min_distance: int = Field(1, ge=1, le=64, description="Peaks at least this far apart.")
    threshold_abs: float | None = Field(None, description="Minimum peak value.")
    threshold_rel: float | None = Field(
        None, ge=0, le=1, description="Minimum peak value as a fraction of the volume's maximum."
    )
    exclude_border: bool = Field(True, description="No peaks within min_distance of the border.")
    num_peaks: int | None = Field(
        None, ge=1, description="Keep at most this many, brightest first."
    )
    footprint: list[Annotated[int, Field(ge=1)]] | None = Field(
        None,
        description="Box (size per axis) in which a peak is the maximum; default a cube of "
        "2·min_distance+1 (skimage's footprint=np.ones(sizes)).",
    )

    def window(self, ndim: int) -> tuple[int, ...]:
        """Size per axis of the maximum filter."""
        if self.footprint is None:
            return (2 * self.min_distance + 1,) * ndim
        if len(self.footprint) != ndim:
            raise ValueError(
                f"footprint has {len(self.footprint)} sizes, the image has {ndim} axes"
            )
        return tuple(self.footprint)


def _candidates(image, box, core, *, size, threshold):
    """Local maxima of one block's core above ``threshold`` (coords, values), and how
    many of its voxels are not local maxima (none in a flat image)."""
    is_max = image == ndi.maximum_filter(image, size=size, mode="nearest")
    inner = core_slices(box, core)
    is_max, image = is_max[inner], image[inner]
    not_max = int(is_max.size - np.count_nonzero(is_max))
    local = np.nonzero(is_max & (image > threshold))
    coords = np.stack(local, axis=1) + np.array([c0 for c0, _ in core])
    return coords.astype(np.int64), image[local], not_max


def _concat(a, b):
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]), a[2] + b[2]


def spaced(coords: np.ndarray, spacing: float, max_out: int | None) -> np.ndarray:
    """Greedy minimum spacing: walk ``coords`` in order, drop those closer than
    ``spacing`` (Chebyshev) to one already kept; stop after ``max_out`` kept."""
    if len(coords) == 0:
        return coords
    tree = cKDTree(coords)
    near = tree.query_ball_point(coords, r=spacing, p=np.inf)
    rejected = np.zeros(len(coords), dtype=bool)
    kept = []
    for i, others in enumerate(near):
        if rejected[i]:
            continue
        kept.append(i)
        for j in others:
            if j != i and np.max(np.abs(coords[j] - coords[i])) < spacing:
                rejected[j] = True
        if max_out is not None and len(kept) >= max_out:
            break
    return coords[kept]


def resolve_peaks(params: PeaksParams, stats: Stats) -> np.ndarray:
    """Coordinates (n, ndim) of the peaks of the whole volume, in raster order."""
    md = params.min_distance
    threshold = params.threshold_abs
    if threshold is None or params.threshold_rel is not None:
        lo, hi = value_range(stats)
        threshold = lo if threshold is None else threshold
        if params.threshold_rel is not None:
            threshold = max(threshold, params.threshold_rel * hi)
    window = params.window(len(stats.shape))
    halo = tuple(w // 2 for w in window)
    func = partial(_candidates, size=window, threshold=threshold)
    coords, values, not_max = stats.reduce(func, _concat, halo=halo, name="peaks")
    if not_max == 0:  # every voxel is its neighbourhood's maximum: skimage finds no peak
        return np.zeros((0, len(stats.shape)), dtype=np.int64)
    if params.exclude_border:
        shape = np.array(stats.shape)
        inside = np.all((coords >= md) & (coords < shape - md), axis=1)
        coords, values = coords[inside], values[inside]
    # Brightest first; equal values in raster order, as skimage's stable sort.
    order = np.lexsort((np.ravel_multi_index(coords.T, stats.shape), -values))
    coords = coords[order]
    max_out = params.num_peaks
    if md > 1:
        coords = spaced(coords, md, max_out)
    if max_out is not None:
        coords = coords[:max_out]
    return coords[np.lexsort(coords.T[::-1])]


def peak_mask(image: np.ndarray, coords: np.ndarray, box) -> np.ndarray:
    """Mask of the volume's peaks that fall in ``box`` (label it for markers).

    Parameters
    ----------
    image : ndarray
        The block (for its shape).
    coords : (n, ndim) ndarray
        Peaks of the whole volume in raster order, from ``resolve_peaks``.
    box : tuple of (start, stop)
        The block's place in the volume.

    Returns
    -------
    ndarray of bool
        True at ``skimage.feature.peak_local_max(volume, ...)``'s coordinates.
    """
    out = np.zeros(image.shape, dtype=bool)
    if coords is None or len(coords) == 0:
        return out
    lo = np.array([a for a, _ in box])
    hi = np.array([b for _, b in box])
    z0, z1 = np.searchsorted(coords[:, 0], [lo[0], hi[0]])
    c = coords[z0:z1]
    c = c[np.all((c >= lo) & (c < hi), axis=1)] - lo
    out[tuple(c.T)] = True
    return out


class WatershedParams(OpParams):
    """Parameters of the ``watershed`` op (skimage.segmentation.watershed's names)."""

    markers: str = Field(..., description="Step giving the markers (labels numbered globally).")
    mask: str | None = Field(None, description="Step giving the mask of voxels to flood.")
    halo: int = Field(
        ...,
        ge=1,
        le=512,
        description="Context in voxels around each block; at least the largest object's "
        "diameter for results equal to the whole-image watershed.",
    )
    compactness: float = Field(0.0, ge=0, description="Compact watershed (0: classic).")
    check_halo: bool = Field(
        True, description="Before flooding, warn when an object of the mask outgrows the halo."
    )
    invert: bool = Field(
        False, description="Flood -image, e.g. from the peaks of a distance transform."
    )
    connectivity: int = Field(1, ge=1, le=3, description="Neighbourhood of the flooding.")


def watershed(*args) -> np.ndarray:
    """``skimage.segmentation.watershed(image, markers, mask=mask, ...)`` on the grown block.

    Parameters
    ----------
    *args : image, markers[, mask], params
        The image to flood (negated with ``invert``, e.g. a distance transform), the
        markers, optionally the mask, then :class:`WatershedParams`.

    Returns
    -------
    ndarray of the markers' integer dtype
        Object ids of the markers.
    """
    from skimage.segmentation import watershed as sk_watershed

    *blocks, params = args
    image, markers = blocks[0], blocks[1]
    mask = blocks[2] if len(blocks) > 2 else None
    return sk_watershed(
        -image if params.invert else image,
        markers,
        mask=mask,
        compactness=params.compactness,
        connectivity=params.connectivity,
    )


def halo_holds_objects(params: WatershedParams, objects) -> str | None:
    """A warning when an object of the mask is wider than the halo on some axis.

    An object no wider than the halo lies, with its markers, inside the grown block of
    every block it touches, so it is flooded as in a whole-image run.
    """
    if objects.bbox is None or len(objects.bbox) == 0:
        return None
    ndim = objects.bbox.shape[1] // 2
    extent = objects.bbox[:, ndim:] - objects.bbox[:, :ndim]
    widest = int(extent.max())
    if widest <= params.halo:
        return None
    over = int(np.count_nonzero(extent.max(axis=1) > params.halo))
    return (
        f"{over} object(s) of the mask are wider than the halo ({widest} > {params.halo} "
        "voxels); they may differ from a whole-image watershed: raise halo"
    )


def watershed_halo(params: WatershedParams, ndim: int) -> tuple[int, ...]:
    """The configured context on every axis."""
    return (params.halo,) * ndim


def checked_mask(params: WatershedParams) -> str | None:
    """The mask step whose objects must fit the halo (None: not checked)."""
    return params.mask if params.check_halo else None


def no_peaks(params: PeaksParams) -> None:
    """The stand-in of resolved peaks before the passes ran."""
    return None


PEAK_LOCAL_MAX = GlobalOp(
    name="peak_local_max",
    params=PeaksParams,
    func=peak_mask,
    resolve=resolve_peaks,
    placeholder=no_peaks,
    needs_box=True,
    accepts=("image",),
    produces="mask",
    summary="Mask of skimage.feature.peak_local_max's peaks of the whole volume "
    "(label it for markers).",
    exact="exact: candidates per block, selection over the whole volume",
)
WATERSHED = NeighbourhoodOp(
    name="watershed",
    params=WatershedParams,
    func=watershed,
    halo_of=watershed_halo,
    accepts=("image",),
    inputs={"markers": ("labels",), "mask": ("mask",)},
    preflight=Preflight(mask=checked_mask, check=halo_holds_objects),
    produces="labels",
    summary="Watershed from globally numbered markers (skimage.segmentation.watershed), "
    "per block with a halo.",
    exact="no: equal where basins fit in the halo; object F1 measured",
)
