"""Compiled loops for the two hottest block kernels, bit for bit what scipy/numpy give.

``scipy.ndimage.gaussian_filter`` and ``numpy.histogram`` spend most of their time on
one block in generic machinery (line buffers, index arrays, temporaries); the loops
here do the same floating-point operations, in the same order, on data that stays in
the cache. Equality with the library functions is what the tests check, over shapes,
sigmas, modes and dtypes; callers fall back to the library wherever a case is not
covered here.

Numba compiles each loop on its first use and keeps the machine code on disk beside
this module (or in numba's user cache where that folder is read-only).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

# np.pad mode for each scipy.ndimage boundary mode (scipy extends each line this way)
PAD_MODES = {"nearest": "edge", "constant": "constant", "reflect": "symmetric", "mirror": "reflect"}

_kernels: dict[str, object] = {}


def _compile() -> dict[str, object]:
    """The compiled loops (numba is imported and the loops compiled on first use)."""
    if _kernels:
        return _kernels
    import numba

    jit = numba.njit(cache=True, nogil=True, error_model="numpy")

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

    _kernels.update(separable_3d=separable_3d, uniform_counts=uniform_counts)
    return _kernels


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
    image: np.ndarray, sigmas: tuple[float, ...], mode: str, truncate: float
) -> np.ndarray | None:
    """``scipy.ndimage.gaussian_filter(image, sigmas, output=float64, mode=mode)``.

    Returns None for what the compiled loop does not cover (not 2D/3D, an unknown
    mode, an axis shorter than the kernel radius with a reflecting mode), where the
    caller uses scipy.
    """
    if image.ndim not in (2, 3) or mode not in PAD_MODES:
        return None
    if image.dtype.kind not in "biuf" or image.dtype.itemsize > 8:
        return None
    weights = [gaussian_weights(s, truncate) for s in sigmas]
    radii = [w.size - 1 for w in weights]
    short = any(n <= r for n, r in zip(image.shape, radii, strict=True))
    if mode in ("reflect", "mirror") and short:
        return None
    if image.dtype.kind == "b":
        image = image.view(np.uint8)
    if image.ndim == 2:
        image, weights, radii = image[None], [np.ones(1), *weights], [0, *radii]
    padded = np.pad(image, [(r, r) for r in radii], mode=PAD_MODES[mode])
    out = np.empty(image.shape, np.float64)
    _compile()["separable_3d"](padded, *weights, out)
    return out[0] if len(sigmas) == 2 else out


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
