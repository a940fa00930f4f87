"""Deterministic synthetic microscopy-like stacks used as demo input.

The image holds bright ellipsoidal "nuclei" (some touching) over an uneven, smoothly
varying background, with shot and read noise, stored as uint16.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import tifffile

#: Physical voxel size in micrometres, (z, y, x).
SPACING_UM = (2.0, 0.5, 0.5)

# Fraction of the image covered by nuclei; a 2D field is far denser than a 3D volume
# for the same look, and these give a few hundred nuclei at the default shapes.
_FILL = {2: 0.15, 3: 0.02}
_TOUCH_PROB = 0.25


def make_demo_stack(shape: tuple[int, ...] = (256, 512, 512), seed: int = 0) -> np.ndarray:
    """Generate a nuclei-like 2D image or 3D stack.

    Parameters
    ----------
    shape : tuple of int
        ``(z, y, x)`` or ``(y, x)``.
    seed : int
        Seed of :func:`numpy.random.default_rng`; equal seeds give identical images.

    Returns
    -------
    numpy.ndarray
        uint16 array of ``shape``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in _FILL or min(shape) < 1:
        raise ValueError(f"shape must be 2D or 3D with positive sizes, got {shape}")
    ndim = len(shape)
    rng = np.random.default_rng(seed)
    vol = np.zeros(shape, dtype=np.float32)

    mean_size = (4 / 3 * np.pi * 8.0**3) if ndim == 3 else np.pi * 8.0**2
    n_blobs = max(1, round(_FILL[ndim] * vol.size / mean_size))
    centers: list[np.ndarray] = []
    radii: list[np.ndarray] = []
    for _ in range(n_blobs):
        r = np.clip(rng.uniform(4.0, 12.0) * rng.uniform(0.8, 1.2, ndim), 4.0, 12.0)
        if centers and rng.random() < _TOUCH_PROB:
            # Place next to an existing nucleus so that clusters of touching objects exist.
            i = rng.integers(len(centers))
            u = rng.normal(size=ndim)
            u /= np.linalg.norm(u)
            c = centers[i] + u * (radii[i].mean() + r.mean()) * rng.uniform(0.85, 1.0)
        else:
            c = rng.uniform(0, shape)
        centers.append(c)
        radii.append(r)
        _paint_ellipsoid(vol, c, r, rng.uniform(500.0, 1500.0))

    # Illumination falls off radially in the plane and with depth; it scales the signal.
    yy, xx = np.ogrid[: shape[-2], : shape[-1]]
    d2 = ((yy - shape[-2] / 2) / shape[-2]) ** 2 + ((xx - shape[-1] / 2) / shape[-1]) ** 2
    vignette = (1.0 - 0.8 * d2 - 0.1 * xx / shape[-1]).astype(np.float32)
    planes = vol.reshape(-1, shape[-2], shape[-1])
    depth = np.exp(-0.5 * np.arange(len(planes)) / len(planes))
    out = np.empty(planes.shape, dtype=np.uint16)
    # Per plane so that noise temporaries stay one plane in size.
    for z, plane in enumerate(planes):
        signal = (plane + np.float32(120.0)) * (vignette * np.float32(depth[z]))
        # Shot noise as a Gaussian with variance = signal (plus read noise, sd 6): signal is
        # >30 counts everywhere, where this matches Poisson and is ~5x faster to sample.
        noise = rng.standard_normal(signal.shape, dtype=np.float32)
        signal += noise * np.sqrt(signal + np.float32(36.0)) + np.float32(100.0)
        out[z] = np.clip(signal, 0, 65535, out=signal)
    return out.reshape(shape)


def _paint_ellipsoid(vol: np.ndarray, center: np.ndarray, radii: np.ndarray, value: float) -> None:
    """Write one soft-edged ellipsoid into ``vol`` in place, touching only its bounding box."""
    lo = np.maximum(np.floor(center - radii - 1).astype(int), 0)
    hi = np.minimum(np.ceil(center + radii + 2).astype(int), vol.shape)
    if np.any(hi <= lo):
        return
    axes = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    rho = np.sqrt(sum(((ax - c) / r) ** 2 for ax, c, r in zip(axes, center, radii, strict=True)))
    # (1 - rho) * r_min approximates the distance to the surface: a ~1 voxel soft edge.
    blob = np.clip((1.0 - rho) * radii.min() + 0.5, 0.0, 1.0).astype(np.float32) * value
    crop = vol[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    np.maximum(crop, blob, out=crop)


def write_demo_tiff(
    path: str | os.PathLike, shape: tuple[int, ...] = (256, 512, 512), seed: int = 0
) -> Path:
    """Write :func:`make_demo_stack` as an ImageJ TIFF with physical spacing.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; parent directories are created.
    shape : tuple of int
        ``(z, y, x)`` or ``(y, x)``.
    seed : int
        Random seed.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = make_demo_stack(shape, seed)
    metadata: dict[str, object] = {"unit": "um", "axes": "ZYX" if data.ndim == 3 else "YX"}
    if data.ndim == 3:
        metadata["spacing"] = SPACING_UM[0]
    res = (1.0 / SPACING_UM[1], 1.0 / SPACING_UM[2])
    tifffile.imwrite(path, data, imagej=True, resolution=res, metadata=metadata)
    return path


def write_demo_slices(
    folder: str | os.PathLike, shape: tuple[int, int, int] = (32, 256, 256), seed: int = 0
) -> Path:
    """Write a 3D demo stack as one 2D TIFF per plane, ``slice_0001.tif``, ``slice_0002.tif``, ...

    Parameters
    ----------
    folder : str or os.PathLike
        Output folder; created if missing.
    shape : tuple of int
        ``(z, y, x)``.
    seed : int
        Random seed.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    if len(shape) != 3:
        raise ValueError(f"shape must be (z, y, x), got {shape}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, plane in enumerate(make_demo_stack(shape, seed), start=1):
        tifffile.imwrite(folder / f"slice_{i:04d}.tif", plane)
    return folder


def write_demo_model(path: str | Path, sigma: float = 1.0) -> Path:
    """Write a tiny fully convolutional 2D ONNX network: a foreground probability.

    A 5×5 Gaussian (``sigma``) of a [0, 1] image, shifted by -0.5, scaled by 10 and put
    through a sigmoid: bright, smooth regions get probabilities near 1. Receptive field
    radius 2, so a halo of 2 makes chunked inference equal whole-image inference. Needs
    the ``onnx`` package (in the test extra).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    r = np.arange(-2, 3)
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    weights = (g / g.sum()).astype(np.float32)[None, None]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["s"], pads=[2, 2, 2, 2]),
        helper.make_node("Mul", ["s", "k"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "demo_foreground",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c", "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.array([-0.5], np.float32), "b"),
            numpy_helper.from_array(np.array(10.0, np.float32), "k"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write the synthetic demo stack as a TIFF.")
    parser.add_argument("out", type=Path, help="output .tif; left untouched if it exists")
    parser.add_argument("--shape", type=int, nargs="+", default=[256, 512, 512])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.out.exists():
        write_demo_tiff(args.out, tuple(args.shape), args.seed)
    print(args.out)
