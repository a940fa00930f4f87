"""Real images from ../shared/data: thresholds and counts exactly as its README lists."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from skimage.measure import label

from pipeline.ops.filters import GaussianParams
from pipeline.ops.labelling import LabelParams
from pipeline.ops.threshold import ThresholdParams
from tests.conftest import closed_after_test, run_steps

# file, Gaussian sigma (0: float64 copy, as the reference), otsu, counts for connectivity 1..ndim
REFERENCE = [
    ("blobs/blobs.tif", 0.0, 120.031, [64, 64]),
    ("blobs/blobs.tif", 1.0, 124.964, [62, 62]),
    ("mini_blobs/mini_blobs.tif", 0.0, 127.688, [7, 7]),
    ("human_mitosis/human_mitosis.tif", 0.0, 36.547, [299, 293]),
    ("human_mitosis/human_mitosis.tif", 1.0, 35.951, [277, 276]),
    ("stardist_dsb_crop/image.tif", 0.0, 65.986, [54, 54]),
    ("stardist_dsb_crop/image.tif", 1.0, 60.303, [50, 49]),
]


def _otsu_label(img, sigma, connectivity, chunks):
    steps = {}
    prev = "input"
    if sigma is not None:
        steps["smooth"] = ("gaussian", GaussianParams(sigma=sigma), ("input",))
        prev = "smooth"
    steps["mask"] = ("threshold", ThresholdParams(method="otsu"), (prev,))
    steps["lab"] = ("label", LabelParams(connectivity=connectivity), ("mask",))
    return run_steps(img, steps, "lab", chunks)


@pytest.mark.parametrize("chunks", [(17, 23), (64, 64), (100, 7)])
@pytest.mark.parametrize(("name", "sigma", "otsu", "counts"), REFERENCE)
def test_reference_thresholds_and_counts(shared_data, name, sigma, otsu, counts, chunks):
    img = tifffile.imread(shared_data / name)
    for conn, expected in enumerate(counts, start=1):
        out, engine = _otsu_label(img, sigma, conn, chunks)
        assert f"{engine.thresholds['mask']:.3f}" == f"{otsu:.3f}"
        assert engine.labellings["lab"].count == expected
        assert out.max() == expected


@pytest.mark.parametrize(
    "name", ["platynereis_gt/platynereis_gt.tif", "cellpose_labels3d/cellpose_labels3d.tif"]
)
@pytest.mark.parametrize("chunks", [(16, 64, 64), (33, 50, 70)])
def test_integer_label_volumes_equal_skimage(shared_data, name, chunks):
    vol = tifffile.imread(shared_data / name)
    for conn in (1, 3):
        steps = {"lab": ("label", LabelParams(connectivity=conn), ("input",))}
        out, _ = run_steps(vol, steps, "lab", chunks, role="labels")
        np.testing.assert_array_equal(out, label(vol, connectivity=conn))


@pytest.mark.slow
@pytest.mark.parametrize(("connectivity", "expected"), [(1, 4744), (3, 3619)])
def test_connectomics_counts(shared_data, connectivity, expected):
    from pipeline.engine.blocks import BlockPlan
    from pipeline.engine.engine import Engine
    from pipeline.graph.dag import build_dag
    from pipeline.io.readers import open_source

    source = open_source(shared_data / "connectomics/connectomics_512.tif")
    dag = build_dag({"lab": ("label", LabelParams(connectivity=connectivity), ("input",))})
    block = (128, 128, 128) if connectivity == 1 else (64, 128, 96)
    engine = closed_after_test(Engine(dag, source, BlockPlan.regular(source.shape, block)))
    engine.resolve(["lab"])
    assert engine.labellings["lab"].count == expected
