"""Agreement of the chunked watershed with scikit-image's on the whole image.

    .venv/bin/python benchmarks/bench_agreement.py

The "split touching nuclei" recipe (threshold -> distance -> peaks -> label -> watershed)
runs through segpipe at several block sizes and halos, on synthetic 3D touching spheres
and on the real images of ../shared/data, and is compared with the same recipe in
scikit-image on the whole image: object F1 at IoU >= 0.5 and the fraction of voxels
with the same id. Peaks and markers are exact (their counts are checked); only the
flooding depends on the halo.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile
import zarr
from scipy import ndimage as ndi
from skimage import feature, filters, measure, segmentation

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"


def object_f1(a: np.ndarray, b: np.ndarray, iou: float = 0.5) -> float:
    """F1 of objects matched one to one at IoU >= ``iou`` (IoU > 0.5 makes matches unique)."""
    fg = (a > 0) & (b > 0)
    pairs, inter = np.unique(np.stack([a[fg], b[fg]]), axis=1, return_counts=True)
    ia, na = np.unique(a[a > 0], return_counts=True)
    ib, nb = np.unique(b[b > 0], return_counts=True)
    sa, sb = dict(zip(ia, na, strict=True)), dict(zip(ib, nb, strict=True))
    matched = sum(
        1 for (i, j), n in zip(pairs.T, inter, strict=True) if n / (sa[i] + sb[j] - n) >= iou
    )
    return 2 * matched / (len(ia) + len(ib)) if len(ia) + len(ib) else 1.0


def whole(image, sigma, min_distance, max_distance):
    smooth = (
        ndi.gaussian_filter(image.astype(np.float64), sigma, mode="nearest") if sigma else image
    )
    t = filters.threshold_otsu(smooth)
    mask = smooth > t
    dist = np.minimum(ndi.distance_transform_edt(mask), max_distance)
    coords = feature.peak_local_max(dist, min_distance=min_distance)
    peaks = np.zeros(mask.shape, bool)
    peaks[tuple(coords.T)] = True
    markers = measure.label(peaks, connectivity=1)
    return segmentation.watershed(-dist, markers, mask=mask), markers.max()


def config(path, out, chunks, halo, sigma, min_distance, max_distance):
    steps = {}
    if sigma:
        steps["smooth"] = {"op": "gaussian", "sigma": sigma}
    steps.update(
        {
            "mask": {"op": "threshold", "method": "otsu"},
            "dist": {"op": "distance_transform", "max_distance": max_distance},
            "peaks": {"op": "peak_local_max", "min_distance": min_distance},
            "markers": {"op": "label", "connectivity": 1},
            "cells": {
                "op": "watershed",
                "input": "dist",
                "markers": "markers",
                "mask": "mask",
                "invert": True,
                "halo": halo,
            },
        }
    )
    return {
        "input": {"path": str(path), "chunks": list(chunks)},
        "steps": steps,
        "output": {"path": str(out), "labels": "cells", "overwrite": True},
    }


def touching_spheres(shape=(48, 128, 128), n=90, seed=0):
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    img = np.zeros(shape, np.uint8)
    for _ in range(n):
        c = rng.uniform(6, np.array(shape) - 6)
        r = rng.uniform(4.0, 7.0)
        img[sum((g - ci) ** 2 for g, ci in zip(grid, c, strict=True)) <= r * r] = 200
    return img


def main() -> int:
    import pipeline

    cases = [("synthetic touching spheres 48×128×128", touching_spheres(), 0, 4, 12.0)]
    for name, rel, sigma, md in [
        ("human_mitosis 512×512", "human_mitosis/human_mitosis.tif", 1.0, 5),
        ("blobs 254×256", "blobs/blobs.tif", 1.0, 5),
        ("stardist_dsb_crop 256×256", "stardist_dsb_crop/image.tif", 1.0, 4),
    ]:
        path = DATA / rel
        if path.exists():
            cases.append((name, tifffile.imread(path), sigma, md, 20.0))
        else:
            print(f"skipping {name}: {path} is missing", file=sys.stderr)
    print(
        "| image | blocks | halo | objects (whole) | markers equal "
        "| object F1 (IoU ≥ 0.5) | voxels equal |"
    )
    print("|---|---|---:|---:|---|---:|---:|")
    work = Path(tempfile.mkdtemp(prefix="segpipe-agreement-"))
    for name, img, sigma, md, maxd in cases:
        ref, n_markers = whole(img, sigma, md, maxd)
        src = work / "in.npy"
        np.save(src, img)
        block = (16, 32, 32) if img.ndim == 3 else (64, 64)
        for chunks, halo in [
            (block, 8),
            (block, 16),
            (block, 32),
            (tuple(2 * b for b in block), 16),
        ]:
            res = pipeline.run(config(src, work / "out", chunks, halo, sigma, md, maxd))
            out = np.asarray(zarr.open_group(str(res.labels_path), mode="r")["0"])
            f1 = object_f1(out, ref)
            same = float(np.mean(out == ref))
            markers_ok = res.summary["counts"]["markers"] == n_markers
            print(
                f"| {name} | {'×'.join(map(str, chunks))} | {halo} | {ref.max()} | "
                f"{markers_ok} | {f1:.4f} | {same:.5f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
