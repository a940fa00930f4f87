"""Halo files of the source kept for a later pass that computes the same image again."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.filters import threshold_mean, threshold_otsu
from skimage.measure import label

from pipeline.engine.blocks import BlockPlan
from pipeline.engine.engine import Engine
from pipeline.engine.scratch import Scratch
from pipeline.graph.dag import build_dag
from pipeline.ops.catalogue import CATALOGUE
from tests.engine.test_scratch import CountingSource

SHAPE, CHUNKS = (40, 40, 40), (16, 16, 16)
# Each block grown by the Gaussian's radius (4) within the volume: 56 voxels per axis for
# every 40, so the source's halo files (uint16) take 2 * 1.4**3 = 5.49 bytes a voxel,
# the float64 Gaussian 8 and the histogram bin codes 2.
HALOS = 2 * (56 / 40) ** 3


def _run(tmp_path, method: str, budget: float):
    image = (ndi.gaussian_filter(np.random.default_rng(8).random(SHAPE), 2) * 60000).astype(
        np.uint16
    )
    ops = CATALOGUE
    steps = {
        "smooth": ("gaussian", ops["gaussian"].params(sigma=1.0), ("input",)),
        "mask": ("threshold", ops["threshold"].params(method=method), ("smooth",)),
        "objects": ("label", ops["label"].params(connectivity=1), ("mask",)),
    }
    scratch = Scratch(tmp_path / "s", int(budget * image.size))
    source = CountingSource(image)
    plan = BlockPlan.regular(SHAPE, CHUNKS)
    engine = Engine(build_dag(steps), source, plan, scheduler="threads", scratch=scratch)
    got = engine.to_numpy("objects")
    smooth = ndi.gaussian_filter(image, 1.0, mode="nearest", truncate=4.0, output=np.float64)
    threshold = {"otsu": threshold_otsu, "mean": threshold_mean}[method](smooth)
    np.testing.assert_array_equal(got, label(smooth > threshold, connectivity=1))
    return source.reads, engine


def test_the_files_hold_each_block_grown_by_the_margin():
    plan = BlockPlan.regular(SHAPE, CHUNKS)
    assert plan.grown_voxels((4, 4, 4)) == 56**3
    assert plan.grown_voxels((0, 0, 0)) == 40**3
    assert plan.grown_voxels((0, 100, 0)) == 40 * (3 * 40) * 40  # each block the whole axis


@pytest.mark.parametrize(
    ("budget", "reads"),
    [
        (8, 1),  # the Gaussian kept: computed once, no halo needed again
        (HALOS + 2 + 0.05, 1),  # halos and bin codes kept: the source read by the first pass
        (HALOS + 1, 2),  # not both: the bin codes (sparing a pass's Gaussian) win
        (HALOS - 0.05, 2),  # no room for the halos: the codes
        (2 - 0.05, 3),  # neither: each pass reads the source
    ],
)
def test_otsu_reads_the_source_once_when_its_halos_and_codes_fit(tmp_path, budget, reads):
    got, engine = _run(tmp_path, "otsu", budget)
    assert set(got.values()) == {reads}
    assert not engine.kept.halos  # the labelling pass read none: deleted


@pytest.mark.parametrize(("budget", "reads"), [(HALOS + 0.05, 1), (HALOS - 0.05, 2)])
def test_kept_halos_serve_every_later_pass(tmp_path, budget, reads):
    """A mean threshold has no bin codes: the labelling pass computes the Gaussian again,
    from the halo files its first pass kept."""
    got, _ = _run(tmp_path, "mean", budget)
    assert set(got.values()) == {reads}


def test_a_missing_halo_file_is_made_again(tmp_path):
    """A kept file gone (a resumed run, a deletion) is written again by a task."""
    image = np.arange(np.prod(SHAPE), dtype=np.uint16).reshape(SHAPE)
    ops = CATALOGUE
    steps = {"smooth": ("gaussian", ops["gaussian"].params(sigma=1.0), ("input",))}
    plan = BlockPlan.regular(SHAPE, CHUNKS)
    engine = Engine(
        build_dag(steps), CountingSource(image), plan, "sync", scratch=Scratch(tmp_path / "s", 0)
    )
    slot = "halo-input-4_4_4"
    engine.kept.halos.add(slot)
    present = engine.scratch.path(slot, (0, 0, 0))
    with open(present, "wb"):
        pass
    keys = engine.new_pass("halos").keys
    assert keys.halo("input", (4, 4, 4), (0, 0, 0)) == present
    assert keys.halo("input", (4, 4, 4), (1, 0, 0)) == ("halo-input", (4, 4, 4), 1, 0, 0)


@pytest.mark.parametrize("chunks", [(16, 16, 16), (7, 40, 9), (40, 5, 40), (5, 6, 4)])
def test_halos_through_dask_equal_the_whole_array(tmp_path, chunks):
    """With ``halo_exchange="dask"`` the slabs are task results, no file is written and
    nothing is kept: each pass reads the source again, and the labels are skimage's."""
    image = (ndi.gaussian_filter(np.random.default_rng(3).random(SHAPE), 2) * 60000).astype(
        np.uint16
    )
    ops = CATALOGUE
    steps = {
        "smooth": ("gaussian", ops["gaussian"].params(sigma=1.5), ("input",)),
        "mask": ("threshold", ops["threshold"].params(method="mean"), ("smooth",)),
        "objects": ("label", ops["label"].params(connectivity=3), ("mask",)),
    }
    scratch = Scratch(tmp_path / "s", 0)
    source = CountingSource(image)
    plan = BlockPlan.regular(SHAPE, chunks)
    engine = Engine(
        build_dag(steps), source, plan, scheduler="threads", scratch=scratch, halo_exchange="dask"
    )
    got = engine.to_numpy("objects")
    smooth = ndi.gaussian_filter(image, 1.5, mode="nearest", truncate=4.0, output=np.float64)
    np.testing.assert_array_equal(got, label(smooth > threshold_mean(smooth), connectivity=3))
    assert set(source.reads.values()) == {2}  # the mean's pass and the labelling pass
    files = [p for p in (tmp_path / "s").rglob("*") if p.is_file()]
    assert files == []
