"""Compiled loops for the hottest block kernels, bit for bit what scipy/numpy give.

``scipy.ndimage.gaussian_filter`` and ``numpy.histogram`` spend most of their time on
one block in generic machinery (line buffers, index arrays, temporaries); the loops
here do the same floating-point operations, in the same order, on data that stays in
the cache. Equality with the library functions is what the tests check, over shapes,
sigmas, modes and dtypes; callers fall back to the library wherever a case is not
covered here. A third loop gathers each local label's size, first voxel and box in
one pass over a block, where numpy needs an index array and a scatter per quantity; a
fourth applies a relabel table (``table[labels]``) without numpy's index conversion; a
fifth gives each value's histogram bin and side of the bin's centre with the counts
(:func:`histogram_codes`; its numpy version is several passes). A sixth labels the
connected components of a mask (:func:`label_mask`): cc3d holds the GIL while it labels,
so two threads labelling blocks took as long as one labelling both.

The loops are a C extension (``_loops*.c``, built at install and releasing the GIL).
Where it could not be built, every function here answers through scipy and numpy, but
:func:`label_mask`, whose caller then labels with cc3d.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

try:
    from pipeline.kernels import _loops
except ImportError:  # installed without a C compiler
    _loops = None

# np.pad mode for each scipy.ndimage boundary mode (scipy extends each line this way)
PAD_MODES = {"nearest": "edge", "constant": "constant", "reflect": "symmetric", "mirror": "reflect"}


def gaussian_weights(sigma: float, truncate: float) -> np.ndarray:
    """Half of scipy's Gaussian kernel: ``w[0]`` the centre, ``w[k]`` at offset ``k``.

    Taken from scipy itself (its response to a unit impulse), so the weights are
    exactly the ones ``gaussian_filter`` uses. A zero sigma gives ``[1.0]``.
    """
    if sigma <= 1e-15:  # scipy leaves such an axis untouched; x * 1.0 == x
        return np.ones(1)
    radius = int(truncate * sigma + 0.5)
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    kernel = ndi.gaussian_filter1d(impulse, sigma, truncate=truncate, mode="constant")
    return np.ascontiguousarray(kernel[radius:])


def gaussian_float64(
    image: np.ndarray,
    sigmas: tuple[float, ...],
    mode: str,
    truncate: float,
    trim: tuple[tuple[int, int], ...] | None = None,
) -> np.ndarray | None:
    """``scipy.ndimage.gaussian_filter(image, sigmas, output=float64, mode=mode)``.

    With ``trim``, only ``result[b : n - e]`` along each axis (``trim[a] = (b, e)``),
    where a trim smaller than the kernel radius marks the image's true edge on that side.
    Returns None for what the compiled loop does not cover (not 2D/3D, an unknown mode,
    a reflecting mode on an axis no longer than the kernel radius, no extension), where
    the caller uses scipy.
    """
    if _loops is None or image.ndim not in (2, 3) or mode not in PAD_MODES:
        return None
    if image.dtype.kind not in "biuf" or image.dtype == np.float16 or not image.dtype.isnative:
        return None
    weights = [gaussian_weights(s, truncate) for s in sigmas]
    trim = ((0, 0),) * image.ndim if trim is None else trim
    cut, pads = [], []
    for n, w, (before, after) in zip(image.shape, weights, trim, strict=True):
        r = w.size - 1
        cut.append(slice(max(0, before - r), n - max(0, after - r)))
        pads.append((max(0, r - before), max(0, r - after)))
        if mode in ("reflect", "mirror") and max(pads[-1]) and n <= r:
            return None
    if image.dtype.kind == "b":
        image = image.view(np.uint8)
    src = image[tuple(cut)]
    shape = tuple(n - b - e for n, (b, e) in zip(image.shape, trim, strict=True))
    if any(p != (0, 0) for p in pads):
        src = np.pad(src, pads, mode=PAD_MODES[mode])
    if image.ndim == 2:
        src, weights = src[None], [np.ones(1), *weights]
    out = np.empty((1,) * (3 - image.ndim) + shape, np.float64)
    _loops.separable_3d(np.ascontiguousarray(src), *weights, out)
    return out.reshape(shape)


def label_extents(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per label ``1..n`` of a 2D/3D label block: voxel count, the raster index of its
    first voxel, and its box (first index per axis, then last index + 1).

    Labels must lie in ``0..n`` (0 is background); a label with no voxel gets size 0.
    """
    shape = labels.shape
    if _loops is None or labels.ndim > 3 or labels.dtype.kind not in "iu":
        return _label_extents_numpy(labels, n)
    block = labels.reshape((1,) * (3 - labels.ndim) + shape)
    sizes = np.zeros(n + 1, np.int64)
    first = np.zeros(n + 1, np.int64)
    box = np.zeros((n + 1, 6), np.int64)
    _loops.label_extents(np.ascontiguousarray(block), sizes, first, box)
    box[:, 3:] += 1
    keep = [3 - labels.ndim + a for a in range(labels.ndim)]
    box = box[:, keep + [3 + a for a in keep]]
    return sizes[1:], first[1:], box[1:]


def _label_extents_numpy(labels: np.ndarray, n: int):
    """:func:`label_extents` with numpy (more than three axes, or no extension)."""
    flat = labels.ravel()
    fg = np.flatnonzero(flat)
    ids = flat[fg].astype(np.intp)
    sizes = np.bincount(ids, minlength=n + 1).astype(np.int64)
    first = np.full(n + 1, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, ids, fg)  # fg ascends: each label's first voxel in raster order
    first[sizes == 0] = 0
    ndim = labels.ndim
    box = np.zeros((n + 1, 2 * ndim), np.int64)
    box[:, :ndim] = np.iinfo(np.int64).max
    for a, c in enumerate(np.unravel_index(fg, labels.shape)):
        np.minimum.at(box[:, a], ids, c)
        np.maximum.at(box[:, ndim + a], ids, c + 1)
    box[sizes == 0, :ndim] = 0
    return sizes[1:], first[1:], box[1:]


def histogram_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray | None:
    """``numpy.histogram(values, edges.size - 1, (edges[0], edges[-1]))[0]`` as int64.

    For float64 values and the float64 edges numpy makes for them; None otherwise (and
    without the extension).
    """
    if _loops is None or values.dtype != np.float64 or edges.dtype != np.float64:
        return None
    if not (np.isfinite(edges[0]) and np.isfinite(edges[-1]) and np.all(edges[:-1] < edges[1:])):
        return None  # numpy widens an empty range and refuses bins of no width
    with np.errstate(over="ignore"):
        if not np.isfinite(edges[-1] - edges[0]):
            return None  # numpy's bin estimate is NaN there: its own error stands
    counts = np.zeros(edges.size - 1, np.int64)
    _loops.uniform_counts(np.ascontiguousarray(values).ravel(), edges, counts)
    return counts


ABOVE_CODE = 0xFFFE  # of a value above the last edge
OUTSIDE_CODE = 0xFFFF  # of a value below the first edge, or NaN


def histogram_codes(
    values: np.ndarray, edges: np.ndarray, centres: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each value's code ``2 * bin + (value > centres[bin])`` as uint16, in the shape of
    ``values``, and the values per bin (int64); values above ``edges[-1]`` get
    ``ABOVE_CODE``, those below ``edges[0]`` (and NaN) ``OUTSIDE_CODE``, and no bin.

    A value's bin is the one with ``edges[bin] <= value < edges[bin + 1]`` (the last bin
    closed): the bin ``numpy.histogram`` counts it in. Needs at most 32,767 bins.
    """
    n = centres.size
    if edges.size != n + 1 or not 0 < 2 * n <= ABOVE_CODE:
        raise ValueError(f"needs n centres, n + 1 edges and n < 32768, got {n} and {edges.size}")
    fast = _loops is not None and values.dtype == edges.dtype == centres.dtype == np.float64
    if fast and np.isfinite(edges[0]) and np.isfinite(edges[-1]) and np.all(edges[:-1] < edges[1:]):
        codes = np.empty(values.shape, np.uint16)
        counts = np.zeros(n, np.int64)
        flat = np.ascontiguousarray(values).ravel()
        _loops.uniform_codes(flat, edges, centres, codes.ravel(), counts)
        return codes, counts
    bins = np.searchsorted(edges, values, side="right") - 1
    bins[values == edges[-1]] = n - 1
    inside = (values >= edges[0]) & (values <= edges[-1])
    bins[~inside] = 0
    codes = (2 * bins + (values > centres[bins])).astype(np.uint16)
    counts = np.bincount(bins[inside].ravel(), minlength=n).astype(np.int64)
    codes[~inside] = OUTSIDE_CODE
    codes[values > edges[-1]] = ABOVE_CODE
    return codes, counts


def apply_table(labels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[labels]`` for a 1-D uint32/uint64 table and unsigned labels (numpy for the
    rest). A label outside the table raises IndexError, as numpy does."""
    table_types = (np.dtype(np.uint32), np.dtype(np.uint64))
    if (
        _loops is None
        or table.ndim != 1
        or table.dtype not in table_types
        or labels.dtype.kind != "u"
        or not labels.dtype.isnative
    ):
        return table[labels]
    src = np.ascontiguousarray(labels)  # of one axis where labels has none
    out = np.empty(src.shape, table.dtype)
    _loops.apply_table(src, np.ascontiguousarray(table), out)
    return out.reshape(labels.shape)


def label_mask(mask: np.ndarray, connectivity: int) -> np.ndarray | None:
    """Connected components of a boolean mask of 1 to 3 axes, numbered 1..n in the raster
    order of each component's first voxel.

    Parameters
    ----------
    mask : ndarray of bool
        The voxels to label.
    connectivity : int
        1..ndim: neighbours are at most this many axis steps apart (as
        ``skimage.measure.label``).

    Returns
    -------
    labels : ndarray of uint32, or None
        None where the compiled loop does not cover the case (no extension, other dtype
        or axes, or too many voxels); the caller labels another way.
    """
    if (
        _loops is None
        or mask.dtype != np.bool_
        or not 1 <= mask.ndim <= 3
        or not 1 <= connectivity <= mask.ndim
        or mask.size >= 2**31 - 1
    ):
        return None
    shape3 = (1,) * (3 - mask.ndim) + mask.shape
    src = np.ascontiguousarray(mask).view(np.uint8).reshape(shape3)
    out = np.empty(shape3, np.uint32)
    _loops.label_mask(src, out, connectivity)
    return out.reshape(mask.shape)
