"""A histogram pass keeps each voxel's bin code; the threshold reads the codes, not the
image, and the result still equals scikit-image's on the whole array."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import filters, morphology
from skimage.measure import label

from pipeline.engine import tasks
from pipeline.engine.blocks import BlockPlan
from pipeline.engine.engine import Engine
from pipeline.engine.scratch import Scratch
from pipeline.graph.dag import build_dag
from pipeline.ops.catalogue import CATALOGUE
from tests.engine.test_scratch import CountingSource

SKIMAGE = {
    "otsu": filters.threshold_otsu,
    "yen": filters.threshold_yen,
    "isodata": filters.threshold_isodata,
    "triangle": filters.threshold_triangle,
}


def _image(shape=(20, 24, 22), seed=5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape), 1.5) + 0.02 * rng.random(shape)


def _engine(image, chunks, root, budget, method="otsu", after=None):
    """Gaussian → threshold(method) [→ after] → label, reading ``image`` by blocks, with
    ``budget`` bytes of scratch."""
    ops = CATALOGUE
    steps = {
        "smooth": ("gaussian", ops["gaussian"].params(sigma=1.0), ("input",)),
        "mask": ("threshold", ops["threshold"].params(method=method), ("smooth",)),
    }
    last = "mask"
    if after is not None:
        steps["cleaned"] = (after, ops[after].params(radius=1), ("mask",))
        last = "cleaned"
    steps["objects"] = ("label", ops["label"].params(connectivity=1), (last,))
    plan = BlockPlan.regular(image.shape, chunks)
    source = CountingSource(image)
    engine = Engine(build_dag(steps), source, plan, scheduler="sync", scratch=Scratch(root, budget))
    return engine, source


def _codes_only(image) -> int:
    """A budget the histogram codes fit (2 bytes a voxel) and the Gaussian does not."""
    return 3 * image.size


@pytest.mark.parametrize("method", sorted(SKIMAGE))
@pytest.mark.parametrize("chunks", [(7, 9, 8), (20, 5, 22), (3, 24, 4)])
def test_labels_from_the_codes_equal_skimage(tmp_path, method, chunks):
    image = _image()
    engine, source = _engine(image, chunks, tmp_path / "s", _codes_only(image), method)
    got = engine.to_numpy("objects")
    smooth = ndi.gaussian_filter(image, 1.0, mode="nearest", truncate=4.0)
    t = SKIMAGE[method](smooth)
    assert engine.thresholds["mask"] == t
    np.testing.assert_array_equal(got, label(smooth > t, connectivity=1))
    # Read by the range and histogram passes only: the labelling pass read the codes.
    assert set(source.reads.values()) == {2}


@pytest.mark.parametrize("chunks", [(7, 9, 8), (4, 24, 22)])
def test_codes_serve_an_op_with_a_halo(tmp_path, chunks):
    """An opening after the threshold needs the mask beyond each block: the codes'
    neighbouring blocks give it."""
    image = _image(seed=8)
    engine, source = _engine(
        image, chunks, tmp_path / "s", _codes_only(image), "otsu", after="opening"
    )
    got = engine.to_numpy("objects")
    smooth = ndi.gaussian_filter(image, 1.0, mode="nearest", truncate=4.0)
    mask = smooth > filters.threshold_otsu(smooth)
    params = CATALOGUE["opening"].params(radius=1)
    opened = morphology.opening(mask, morphology.ball(1, dtype=bool), mode=params.mode)
    want = label(opened, connectivity=1)
    np.testing.assert_array_equal(got, want)
    assert set(source.reads.values()) == {2}


def test_the_labelling_pass_reads_codes_not_the_image(tmp_path):
    image = _image()
    engine, _ = _engine(image, (7, 9, 8), tmp_path / "s", _codes_only(image))
    engine.resolve(["mask"])  # the range and histogram passes
    assert "standin-mask" in engine.kept.blocks and "smooth" not in engine.kept.blocks
    graph = engine.new_pass("masks")
    keys = graph.keys.blocks("mask")
    funcs = set()

    def walk(item):  # tasks hold the tasks of their own blocks inline
        if isinstance(item, tuple) and item and callable(item[0]):
            funcs.add(item[0])
        if isinstance(item, (tuple, list)):
            for sub in item:
                walk(sub)

    walk(list(graph.dsk.values()))
    assert tasks.read_block not in funcs and tasks.load_block in funcs
    masks = graph.compute(list(keys.values()))
    assert all(m.dtype == np.bool_ for m in masks)
    engine.close()


@pytest.mark.parametrize(("method", "passes"), [("multi_otsu", 2), ("mean", 1)])
def test_no_codes_for_thresholds_off_the_bin_centres(tmp_path, method, passes):
    """Multi-Otsu's classes take values at a centre in, a mean is no centre: each pass
    (range and histogram, or the sum), then the last, computes the Gaussian."""
    image = _image()
    engine, source = _engine(image, (7, 9, 8), tmp_path / "s", _codes_only(image), method)
    engine.to_numpy("objects")
    assert not engine.kept.stand_ins
    assert set(source.reads.values()) == {passes + 1}
