"""Peaks equal skimage.feature.peak_local_max; watershed agrees with the whole-image run."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import feature, measure, segmentation

from pipeline.ops.distance import DistanceParams
from pipeline.ops.labelling import LabelParams
from pipeline.ops.threshold import ThresholdParams
from pipeline.ops.watershed import PeaksParams, WatershedParams
from tests.conftest import run_steps


def touching_spheres(shape=(24, 48, 48), n=14, seed=0):
    """Overlapping balls: the classic case for splitting touching nuclei."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    mask = np.zeros(shape, bool)
    for _ in range(n):
        c = rng.uniform([4, 6, 6], np.array(shape) - [4, 6, 6])
        r = rng.uniform(3.5, 6.0)
        mask |= sum((g - ci) ** 2 for g, ci in zip(grid, c, strict=True)) <= r * r
    return mask


def _peaks_ref(image, p: PeaksParams):
    coords = feature.peak_local_max(
        image,
        footprint=np.ones(p.footprint, bool) if p.footprint else None,
        min_distance=p.min_distance,
        threshold_abs=p.threshold_abs,
        threshold_rel=p.threshold_rel,
        exclude_border=p.exclude_border,
        num_peaks=p.num_peaks if p.num_peaks is not None else np.inf,
    )
    out = np.zeros(image.shape, bool)
    out[tuple(coords.T)] = True
    return out


@pytest.mark.parametrize("chunks", [(3, 7, 9), (8, 16, 16), (24, 48, 48)])
@pytest.mark.parametrize(
    "p",
    [
        PeaksParams(min_distance=1),
        PeaksParams(min_distance=3, threshold_rel=0.3),
        PeaksParams(min_distance=4, exclude_border=False, num_peaks=9),
        PeaksParams(min_distance=2, threshold_abs=2.0),
        PeaksParams(min_distance=2, footprint=[3, 7, 5]),
    ],
)
def test_peaks_equal_skimage(chunks, p):
    dist = ndi.distance_transform_edt(touching_spheres())
    out, _ = run_steps(dist, {"pk": ("peak_local_max", p, ("input",))}, "pk", chunks)
    ref = _peaks_ref(dist, p)
    assert ref.sum() > 3
    np.testing.assert_array_equal(out, ref)


def test_peaks_with_plateaus_2d_and_flat():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 4, (40, 37)).astype(np.uint8)  # many equal neighbours
    for md in (1, 2, 3):
        p = PeaksParams(min_distance=md)
        out, _ = run_steps(img, {"pk": ("peak_local_max", p, ("input",))}, "pk", (7, 9))
        np.testing.assert_array_equal(out, _peaks_ref(img, p))
    flat = np.full((10, 12), 3.0)
    out, _ = run_steps(flat, {"pk": ("peak_local_max", PeaksParams(), ("input",))}, "pk", (4, 4))
    assert not out.any()


def object_f1(a: np.ndarray, b: np.ndarray, iou: float = 0.5) -> float:
    """F1 of objects matched one to one at IoU >= ``iou``."""
    ids_a, ids_b = np.unique(a[a > 0]), np.unique(b[b > 0])
    both = (a > 0) & (b > 0)
    pairs, inter = np.unique(np.stack([a[both], b[both]]), axis=1, return_counts=True)
    size_a = dict(zip(*np.unique(a[a > 0], return_counts=True), strict=True))
    size_b = dict(zip(*np.unique(b[b > 0], return_counts=True), strict=True))
    matched = sum(
        1
        for (i, j), n in zip(pairs.T, inter, strict=True)
        if n / (size_a[i] + size_b[j] - n) >= iou
    )
    return 2 * matched / (len(ids_a) + len(ids_b))


@pytest.mark.parametrize("chunks, halo", [((8, 16, 16), 14), ((12, 24, 24), 12)])
def test_split_touching_spheres_matches_whole_watershed(chunks, halo):
    mask = touching_spheres()
    img = mask.astype(np.float32)
    dist = ndi.distance_transform_edt(mask)
    ref_peaks = _peaks_ref(dist, PeaksParams(min_distance=4))
    ref_markers = measure.label(ref_peaks, connectivity=1)
    ref = segmentation.watershed(-dist, ref_markers, mask=mask)
    steps = {
        "mask": ("threshold", ThresholdParams(value=0.5), ("input",)),
        "dist": ("distance_transform", DistanceParams(max_distance=10.0), ("mask",)),
        "peaks": ("peak_local_max", PeaksParams(min_distance=4), ("dist",)),
        "markers": ("label", LabelParams(connectivity=1), ("peaks",)),
        "cells": (
            "watershed",
            WatershedParams(markers="markers", mask="mask", halo=halo, invert=True),
            ("dist", "markers", "mask"),
        ),
    }
    out, engine = run_steps(img, steps, "cells", chunks)
    assert engine.labellings["markers"].count == ref_markers.max() > 5
    f1 = object_f1(out, ref)
    assert f1 >= 0.99, f1


def test_preflight_warns_when_objects_outgrow_the_halo(tmp_path):
    import pipeline

    mask = touching_spheres()
    np.save(tmp_path / "in.npy", mask.astype(np.uint8))

    def run(halo):
        cfg = {
            "input": {"path": str(tmp_path / "in.npy"), "chunks": [8, 16, 16]},
            "steps": {
                "mask": {"op": "threshold", "value": 0},
                "dist": {"op": "distance_transform", "max_distance": 10},
                "peaks": {"op": "peak_local_max", "min_distance": 4},
                "markers": {"op": "label", "connectivity": 1},
                "cells": {
                    "op": "watershed",
                    "input": "dist",
                    "invert": True,
                    "markers": "markers",
                    "mask": "mask",
                    "halo": halo,
                },
            },
            "output": {"path": str(tmp_path / f"out{halo}"), "labels": "cells"},
        }
        return pipeline.run(cfg)

    small = run(4)
    objects = measure.label(mask, connectivity=1)
    extents = [np.ptp(np.nonzero(objects == i), axis=1) + 1 for i in range(1, objects.max() + 1)]
    widest = int(np.max(extents))
    over = sum(1 for e in extents if e.max() > 4)
    assert small.summary["warnings"] == [
        f"step 'cells': {over} object(s) of the mask are wider than the halo "
        f"({widest} > 4 voxels); they may differ from a whole-image watershed: raise halo"
    ]
    assert "cells:mask-objects" not in small.summary["counts"]
    assert run(widest).summary["warnings"] == []
