"""Blocks kept on disk between passes: round trips, reuse, and clean-up."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.measure import label

import pipeline
from pipeline.engine import scratch, tasks
from pipeline.engine.blocks import BlockPlan
from pipeline.engine.engine import Engine
from pipeline.engine.journal import Journal
from pipeline.engine.scratch import Scratch
from pipeline.graph.dag import build_dag
from pipeline.ops.catalogue import CATALOGUE
from tests.conftest import ArraySource


@pytest.mark.parametrize(
    "array",
    [
        np.random.default_rng(0).random((3, 5, 7)) > 0.5,  # bits, not a multiple of 8
        np.ones((1,), dtype=bool),
        np.zeros((0, 4), dtype=bool),
        np.random.default_rng(1).random((4, 6)),
        np.arange(24, dtype=np.uint16).reshape(2, 3, 4),
        np.arange(60, dtype=np.uint32).reshape(3, 4, 5)[:, ::2],  # not contiguous
        np.zeros((0, 3), dtype=np.uint16),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_save_load_round_trip(tmp_path, array, compress):
    path = str(tmp_path / "block.blk")
    scratch.save(path, array, compress=compress)
    back = scratch.load(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable
    assert not (tmp_path / "block.blk.part").exists()


def test_compressed_labels_are_small(tmp_path):
    labels = np.zeros((64, 64, 64), dtype=np.uint16)
    labels[10:20, 30:40, 5:9] = 3
    scratch.save(str(tmp_path / "raw.blk"), labels)
    scratch.save(str(tmp_path / "small.blk"), labels, compress=True)
    assert (tmp_path / "small.blk").stat().st_size * 50 < (tmp_path / "raw.blk").stat().st_size


def _pipeline_engine(image, chunks, root, budget=None):
    ops = CATALOGUE
    steps = {
        "smooth": ("gaussian", ops["gaussian"].params(sigma=1.0), ("input",)),
        "mask": ("threshold", ops["threshold"].params(method="otsu"), ("smooth",)),
        "objects": ("label", ops["label"].params(connectivity=1), ("mask",)),
    }
    dag = build_dag(steps)
    plan = BlockPlan.regular(image.shape, chunks)
    return Engine(dag, ArraySource(image), plan, scheduler="sync", scratch=Scratch(root, budget))


def test_later_passes_read_kept_blocks(tmp_path):
    rng = np.random.default_rng(3)
    image = ndi.gaussian_filter(rng.random((20, 24, 22)), 2)
    engine = _pipeline_engine(image, (7, 9, 8), tmp_path / "scratch")
    engine.resolve(["objects"])
    # The smoothed image, its histogram bin codes and the local labels were kept, one
    # file per block each; the halo slabs of the first pass are gone.
    engine.scratch.wait()
    files = list((tmp_path / "scratch").rglob("*.blk"))
    assert len(files) == 3 * engine.plan.nblocks
    graph = engine.new_pass("final")
    keys = graph.keys.blocks("objects")
    funcs = set()

    def walk(item):  # tasks may hold tasks inline (a block's own read)
        if isinstance(item, tuple) and item and callable(item[0]):
            funcs.add(item[0])
        if isinstance(item, (tuple, list)):
            for sub in item:
                walk(sub)

    for task in graph.dsk.values():
        walk(task)
    # The final pass reads the local labels back; nothing computes the Gaussian or labels.
    assert tasks.read_block not in funcs and tasks.program_block not in funcs
    assert tasks.label_block not in funcs and tasks.load_block not in funcs
    assert tasks.load_local in funcs and tasks.relabel in funcs
    # What the final pass does not read is deleted while it runs.
    graph.last()
    engine.scratch.wait()
    assert len(list((tmp_path / "scratch").rglob("*.blk"))) == engine.plan.nblocks
    blocks = graph.compute(list(keys.values()))
    assert sum(len(np.unique(b)) > 1 for b in blocks) > 0
    engine.close()
    assert not (tmp_path / "scratch").exists()


@pytest.mark.parametrize(("budget", "reads"), [(8, 1), (8 - 1e-6, 2), (2 - 1e-6, 3)])
def test_images_past_the_budget_are_computed_again(tmp_path, budget, reads):
    """The Gaussian is kept when all of it fits the budget; else its histogram bin codes
    (2 bytes a voxel), which the labelling pass thresholds; else it is computed in each
    pass. ``budget`` is in bytes per voxel."""
    image = ndi.gaussian_filter(np.random.default_rng(6).random((20, 24, 22)), 1.5)
    engine = _pipeline_engine(image, (7, 9, 8), tmp_path / "s", int(budget * image.size))
    engine.source = source = CountingSource(image)
    got = engine.to_numpy("objects")
    smooth = ndi.gaussian_filter(image, 1.0, mode="nearest", truncate=4.0)
    np.testing.assert_array_equal(got, label(smooth > threshold_otsu(smooth), connectivity=1))
    # Each block read once (the Gaussian kept), twice (by the range and histogram
    # passes: the codes kept) or three times (by the labelling pass too).
    assert set(source.reads.values()) == {reads}


def test_budget_reservations(tmp_path):
    room = Scratch(tmp_path / "s", budget=100)
    assert room.budget == 100
    assert room.reserve("a", 60) and room.reserve("a", 60) and not room.reserve("b", 41)
    assert room.reserved("a") == 60 and room.reserved("b") == 0 and room.room() == 40
    assert room.reserve("b", 40) and room.room() == 0
    room.drop_later("a")  # dropping an image gives its room back
    assert room.room() == 60 and room.reserve("c", 60)
    room.remove()
    assert scratch.page_cache_budget() > 0
    assert Scratch(tmp_path / "t").budget > 0  # the page cache's share by default


def test_resumed_run_keeps_the_budget_it_started_with(tmp_path):
    """A rerun resuming into the journal of a killed run takes that run's budget."""
    image = np.zeros((8, 9, 10))
    first = _pipeline_engine(image, (4, 5, 5), tmp_path / "s", budget=0)
    journal = Journal(tmp_path / "journal", "sha")
    journal.start()
    first.attach_journal(journal)
    assert first.scratch.budget == 0
    again = _pipeline_engine(image, (4, 5, 5), tmp_path / "s", budget=10**12)
    again.attach_journal(Journal(tmp_path / "journal", "sha"))
    assert again.scratch.budget == 0
    assert Journal.recorded_config(tmp_path / "journal") == "sha"


class CountingSource(ArraySource):
    """Counts the reads of each block."""

    def __init__(self, array):
        super().__init__(array)
        self.reads: dict = {}

    def read(self, box):
        self.reads[box] = self.reads.get(box, 0) + 1
        return super().read(box)


@pytest.mark.parametrize("chunks", [(7, 9, 8), (2, 3, 2), (20, 24, 5)])
def test_each_source_block_is_read_once(tmp_path, chunks):
    """The halo task that reads a block for its neighbours keeps it for its own task."""
    image = ndi.gaussian_filter(np.random.default_rng(4).random((20, 24, 22)), 1.5)
    engine = _pipeline_engine(image, chunks, tmp_path / "s")
    engine.source = source = CountingSource(image)
    got = engine.to_numpy("objects")
    smooth = ndi.gaussian_filter(image, 1.0, mode="nearest", truncate=4.0)
    np.testing.assert_array_equal(got, label(smooth > threshold_otsu(smooth), connectivity=1))
    assert sorted(source.reads) == sorted(engine.plan.box(i) for i in engine.plan.indices())
    assert set(source.reads.values()) == {1}


def test_to_numpy_with_scratch_matches_skimage(tmp_path):
    rng = np.random.default_rng(5)
    image = ndi.gaussian_filter(rng.random((18, 21, 19)), 1.5)
    engine = _pipeline_engine(image, (5, 8, 6), tmp_path / "s")
    got = engine.to_numpy("objects")
    smooth = ndi.gaussian_filter(image, 1.0, mode="nearest", truncate=4.0)
    np.testing.assert_array_equal(got, label(smooth > threshold_otsu(smooth), connectivity=1))
    assert not (tmp_path / "s").exists()


def test_run_removes_scratch(tmp_path):
    rng = np.random.default_rng(9)
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, (rng.random((16, 30, 30)) * 1000).astype(np.uint16))
    where = tmp_path / "work"
    config = {
        "input": {"path": str(path), "chunks": [8, 16, 16]},
        "steps": {
            "smooth": {"op": "gaussian", "sigma": 1.0},
            "mask": {"op": "threshold", "method": "otsu"},
            "objects": {"op": "label"},
        },
        "output": {"path": str(tmp_path / "out"), "labels": "objects"},
        "engine": {"scratch": str(where)},
    }
    result = pipeline.run(config)
    assert result.count > 0
    assert list(where.iterdir()) == []  # the run's own folder in it is gone; it stays
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".segpipe",
        "objects.ome.zarr",
        "summary.json",
    ]


def test_parts_round_trip(tmp_path):
    path = str(tmp_path / "parts.blk")
    parts = {
        ((0, 2), (0, 3)): np.arange(6, dtype=np.float64).reshape(2, 3),
        ((2, 4), (0, 3)): np.zeros((2, 3), dtype=np.int32) - 7,
        ((4, 4), (0, 3)): np.zeros((0, 3), dtype=np.uint8),
    }
    scratch.save_parts(path, parts)
    for part, array in parts.items():
        back = scratch.load_part(path, part)
        assert back.dtype == array.dtype and back.shape == array.shape
        np.testing.assert_array_equal(back, array)


def test_not_a_scratch_file(tmp_path):
    path = tmp_path / "other.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="not a segpipe scratch file"):
        scratch.load(str(path))


def test_a_file_is_deleted_by_its_last_reader(tmp_path):
    path = tmp_path / "b.blk"
    scratch.save_parts(str(path), {((0, 2),): np.arange(2)})
    scratch.done_reading(str(path))  # not expected: nothing happens
    assert path.exists()
    scratch.expect_readers(str(path), 2)
    scratch.done_reading(str(path))
    assert path.exists()
    scratch.done_reading(str(path))
    assert not path.exists()
    scratch.done_reading(str(path))  # forgotten once deleted


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_halo_files_are_gone_when_their_readers_are_done(tmp_path, monkeypatch, scheduler):
    """In this process, each halo file is deleted by the last task that reads it, so a
    pass never holds all of them; the end of the pass finds none left."""
    left = []
    drop = Scratch.drop_later

    def drop_later(self, what):
        if what.startswith("halo-"):
            left.extend(p.name for p in (self.root / self._slots[what].split("/")[-1]).iterdir())
        drop(self, what)

    monkeypatch.setattr(Scratch, "drop_later", drop_later)
    image = ndi.gaussian_filter(np.random.default_rng(6).random((20, 24, 22)), 1.5)
    engine = _pipeline_engine(image, (7, 9, 8), tmp_path / "s")
    engine.scheduler = scheduler
    got = engine.to_numpy("objects")
    smooth = ndi.gaussian_filter(image, 1.0, mode="nearest", truncate=4.0)
    np.testing.assert_array_equal(got, label(smooth > threshold_otsu(smooth), connectivity=1))
    assert left == []
