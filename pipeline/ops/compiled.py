"""Compiled loops for the hottest block kernels, bit for bit what scipy/numpy give.

``scipy.ndimage.gaussian_filter`` and ``numpy.histogram`` spend most of their time on
one block in generic machinery (line buffers, index arrays, temporaries); the loops
here do the same floating-point operations, in the same order, on data that stays in
the cache. Equality with the library functions is what the tests check, over shapes,
sigmas, modes and dtypes; callers fall back to the library wherever a case is not
covered here. A third loop gathers each local label's size, first voxel and box in
one pass over a block, where numpy needs an index array and a scatter per quantity.

Numba compiles each loop on its first use and keeps the machine code on disk beside
this module (or in numba's user cache where that folder is read-only; with neither
writable, each process compiles the loops again).
"""

from __future__ import annotations

import threading

import numpy as np
from scipy import ndimage as ndi

# np.pad mode for each scipy.ndimage boundary mode (scipy extends each line this way)
PAD_MODES = {"nearest": "edge", "constant": "constant", "reflect": "symmetric", "mirror": "reflect"}

# Images smaller than this go to scipy: as fast there, and a dtype probe on a few voxels
# does not load the compiler.
SMALL = 4096

_kernels: dict[str, object] = {}
_compiling = threading.Lock()


def _compile() -> dict[str, object]:
    """The compiled loops (numba is imported and the loops compiled on first use)."""
    if _kernels:
        return _kernels
    with _compiling:  # the first tasks of a pass call in at once: define the loops once
        if not _kernels:
            _kernels.update(_define())
    return _kernels


def _define() -> dict[str, object]:
    import numba

    def jit(func):
        try:
            return numba.njit(cache=True, nogil=True, error_model="numpy")(func)
        except RuntimeError:  # no writable cache folder: compile in each process instead
            return numba.njit(nogil=True, error_model="numpy")(func)

    @jit
    def separable_3d(padded, wz, wy, wx, out):
        # out[z, y, x] = Gaussian of padded around (z + rz, y + ry, x + rx), one axis
        # after the other (z, y, x), each pass as scipy's symmetric correlate1d computes
        # it: centre * w[0], then (left_k + right_k) * w[k] added for k = r .. 1, in
        # double precision, one output plane at a time.
        rz, ry, rx = wz.size - 1, wy.size - 1, wx.size - 1
        nz, ny, nx = out.shape
        ny_in, nx_in = ny + 2 * ry, nx + 2 * rx
        after_z = np.empty((ny_in, nx_in))
        after_y = np.empty((ny, nx_in))
        for z in range(nz):
            zc = z + rz
            for y in range(ny_in):
                line = after_z[y]
                centre = padded[zc, y]
                w0 = wz[0]
                for x in range(nx_in):
                    line[x] = np.float64(centre[x]) * w0
                for k in range(rz, 0, -1):
                    lo, hi, wk = padded[zc - k, y], padded[zc + k, y], wz[k]
                    for x in range(nx_in):
                        line[x] += (np.float64(lo[x]) + np.float64(hi[x])) * wk
            for y in range(ny):
                yc = y + ry
                line = after_y[y]
                centre = after_z[yc]
                w0 = wy[0]
                for x in range(nx_in):
                    line[x] = centre[x] * w0
                for k in range(ry, 0, -1):
                    lo, hi, wk = after_z[yc - k], after_z[yc + k], wy[k]
                    for x in range(nx_in):
                        line[x] += (lo[x] + hi[x]) * wk
            for y in range(ny):
                line = out[z, y]
                src = after_y[y]
                w0 = wx[0]
                for x in range(nx):
                    line[x] = src[x + rx] * w0
                for k in range(rx, 0, -1):
                    wk = wx[k]
                    for x in range(nx):
                        line[x] += (src[x + rx - k] + src[x + rx + k]) * wk

    @jit
    def uniform_counts(values, edges, counts):
        # numpy.histogram's equal-bin path, value by value: keep values in
        # [first, last], index ((v - first) / (last - first)) * n, then correct it by one
        # against the edges; the last bin holds the last edge.
        n = counts.size
        first, last = edges[0], edges[n]
        denom = last - first
        for i in range(values.size):
            v = values[i]
            if not (v >= first and v <= last):
                continue
            idx = np.intp(((v - first) / denom) * n)
            if idx == n:
                idx -= 1
            if v < edges[idx]:
                idx -= 1
            if idx != n - 1 and v >= edges[idx + 1]:
                idx += 1
            counts[idx] += 1

    @jit
    def label_extents(labels, sizes, first, box):
        # Per label of a 3D block: voxel count, raster index of its first voxel, and
        # its smallest and largest index per axis (box[l, :3] and box[l, 3:]).
        nz, ny, nx = labels.shape
        for z in range(nz):
            for y in range(ny):
                row = labels[z, y]
                for x in range(nx):
                    label = row[x]
                    if label == 0:
                        continue
                    seen = sizes[label]
                    sizes[label] = seen + 1
                    if seen == 0:
                        first[label] = (z * ny + y) * nx + x
                        box[label, 0], box[label, 1], box[label, 2] = z, y, x
                        box[label, 3], box[label, 4], box[label, 5] = z, y, x
                        continue
                    box[label, 3] = z  # raster order: z never falls
                    if y < box[label, 1]:
                        box[label, 1] = y
                    elif y > box[label, 4]:
                        box[label, 4] = y
                    if x < box[label, 2]:
                        box[label, 2] = x
                    elif x > box[label, 5]:
                        box[label, 5] = x

    return {
        "separable_3d": separable_3d,
        "uniform_counts": uniform_counts,
        "label_extents": label_extents,
    }


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
    Returns None for what the compiled loop does not cover (not 2D/3D, fewer than
    ``SMALL`` voxels, an unknown mode, a reflecting mode on an axis no longer than the
    kernel radius), where the caller uses scipy.
    """
    if image.ndim not in (2, 3) or mode not in PAD_MODES or image.size < SMALL:
        return None
    if image.dtype.kind not in "biuf" or image.dtype.itemsize > 8:
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
    _compile()["separable_3d"](src, *weights, out)
    return out.reshape(shape)


def label_extents(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per label ``1..n`` of a 2D/3D label block: voxel count, the raster index of its
    first voxel, and its box (first index per axis, then last index + 1).

    Labels must lie in ``0..n`` (0 is background); a label with no voxel gets size 0.
    """
    shape = labels.shape
    if labels.ndim > 3:
        return _label_extents_numpy(labels, n)
    block = labels.reshape((1,) * (3 - labels.ndim) + shape)
    sizes = np.zeros(n + 1, np.int64)
    first = np.zeros(n + 1, np.int64)
    box = np.zeros((n + 1, 6), np.int64)
    _compile()["label_extents"](np.ascontiguousarray(block), sizes, first, box)
    box[:, 3:] += 1
    keep = [3 - labels.ndim + a for a in range(labels.ndim)]
    box = box[:, keep + [3 + a for a in keep]]
    return sizes[1:], first[1:], box[1:]


def _label_extents_numpy(labels: np.ndarray, n: int):
    """:func:`label_extents` for images of more than three axes, with numpy."""
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

    For float64 values and the float64 edges numpy makes for them; None otherwise.
    """
    if values.dtype != np.float64 or edges.dtype != np.float64:
        return None
    if not (np.isfinite(edges[0]) and np.isfinite(edges[-1]) and np.all(edges[:-1] < edges[1:])):
        return None  # numpy widens an empty range and refuses bins of no width
    counts = np.zeros(edges.size - 1, np.int64)
    _compile()["uniform_counts"](np.ascontiguousarray(values).ravel(), edges, counts)
    return counts
