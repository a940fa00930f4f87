"""What the client keeps per object after stitching: boxes and object ids, kept small,
and released once the last pass is built."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import measure, morphology

import pipeline
from pipeline.engine import stitch, tasks
from pipeline.engine.blocks import BlockPlan
from pipeline.engine.engine import Engine
from pipeline.engine.passes import label as label_pass
from pipeline.engine.passes.label import _object_boxes
from pipeline.graph.dag import build_dag
from pipeline.kernels.labels import summarise_block
from pipeline.ops.catalogue import CATALOGUE
from tests.conftest import ArraySource, closed_after_test


def _parts(rng, final, ndim, dtype):
    lo = rng.integers(0, 50, size=(len(final), ndim))
    hi = lo + rng.integers(1, 9, size=(len(final), ndim))
    boxes = np.concatenate([lo, hi], axis=1).astype(dtype)
    return [boxes[:4], boxes[4:4], boxes[4:]]  # three blocks, one without labels


@pytest.mark.parametrize(
    ("shape", "dtype"), [((60, 60, 60), np.int32), ((2**31, 60, 60), np.int64)]
)
def test_object_boxes_keep_the_blocks_dtype_and_reduce_per_object(shape, dtype):
    rng = np.random.default_rng(5)
    final = np.array([1, 2, 3, 1, 4, 2, 4, 5, 3, 5], dtype=np.uint32)  # local label -> object
    parts = _parts(rng, final, 3, dtype)
    box = _object_boxes(final, 5, parts, shape)
    assert box.dtype == dtype and box.shape == (5, 6)
    every = np.concatenate(parts)
    for obj in range(1, 6):
        mine = every[final == obj]
        np.testing.assert_array_equal(box[obj - 1, :3], mine[:, :3].min(axis=0))
        np.testing.assert_array_equal(box[obj - 1, 3:], mine[:, 3:].max(axis=0))


def test_stitched_objects_have_small_ids_and_the_boxes_scikit_image_gives(tmp_path, monkeypatch):
    rng = np.random.default_rng(8)
    mask = rng.random((20, 30, 26)) < 0.3
    path = tmp_path / "mask.npy"
    np.save(path, mask.astype(np.uint8))
    kept = {}
    stitched = label_pass.stitched

    def keep(*args, **kwargs):  # the tables as stitched (the last pass releases them)
        kept["lab"] = lab = stitched(*args, **kwargs)
        kept["final"], kept["bbox"] = lab.final, lab.bbox
        return lab

    monkeypatch.setattr(label_pass, "stitched", keep)
    cfg = {
        "input": {"path": str(path), "chunks": [7, 9, 8]},
        "steps": {
            "mask": {"op": "threshold", "value": 0.5},
            "objects": {"op": "label", "connectivity": 1},
        },
        "output": {"path": str(tmp_path / "out"), "labels": "objects"},
    }
    res = pipeline.run(cfg)
    lab = kept["lab"]
    assert kept["final"].dtype == np.uint32 and kept["bbox"].dtype == np.int32
    want = measure.regionprops(measure.label(mask, connectivity=1))
    assert res.count == len(want) == lab.count
    np.testing.assert_array_equal(kept["bbox"], [r.bbox for r in want])


def test_blocks_send_their_boxes_as_uint16_offsets_and_the_client_gets_the_same_boxes():
    rng = np.random.default_rng(11)
    final = rng.integers(1, 6, size=12).astype(np.uint32)
    lo = rng.integers(3000, 3100, size=(12, 3))
    plain = np.concatenate([lo, lo + rng.integers(1, 40, size=(12, 3))], axis=1).astype(np.int32)
    compact = [stitch.compact_boxes(plain[:5]), stitch.compact_boxes(plain[5:])]
    assert all(isinstance(c, stitch.BlockBoxes) and c.offsets.dtype == np.uint16 for c in compact)
    np.testing.assert_array_equal(compact[1].boxes(np.int32), plain[5:])
    shape = (4000, 4000, 4000)
    want = _object_boxes(final, 5, [plain[:5], plain[5:]], shape)
    np.testing.assert_array_equal(_object_boxes(final, 5, compact, shape), want)


def test_boxes_too_wide_for_uint16_offsets_and_large_first_voxels_stay_as_they_are():
    wide = np.array([[0, 0, 0, 1, 1, 1], [70000, 0, 0, 70001, 1, 1]], dtype=np.int32)
    assert stitch.compact_boxes(wide) is wide
    first = np.array([5, 2**32], dtype=np.int64)
    assert stitch.narrow(first, np.uint32) is first
    assert stitch.narrow(first[:1], np.uint32).dtype == np.uint32


def test_a_block_summary_reaches_the_client_narrowed():
    labels = measure.label(np.random.default_rng(3).random((9, 10, 11)) < 0.3)
    summary = summarise_block(labels, None, (100, 200, 300), (400, 400, 400))
    n, first, sizes, border, peaks, boxes = tasks.counts_part(summary)
    assert n == summary.n and first.dtype == sizes.dtype == np.uint32 and peaks is None
    np.testing.assert_array_equal(first, summary.first)
    np.testing.assert_array_equal(sizes, summary.sizes)
    np.testing.assert_array_equal(boxes.boxes(np.int64), summary.bbox)


def test_object_tables_are_released_once_the_last_pass_is_built():
    """A filter reads the object table of the labelling before it; the last pass needs
    only the relabel tables, and the tables of every object go before it runs."""
    rng = np.random.default_rng(12)
    mask = rng.random((18, 22, 20)) < 0.3
    ops = CATALOGUE
    steps = {
        "objects": ("label", ops["label"].params(connectivity=1), ("input",)),
        "kept": (
            "remove_small_objects",
            ops["remove_small_objects"].params(min_size=4),
            ("objects",),
        ),
    }
    engine = closed_after_test(
        Engine(
            build_dag(steps, source_role="mask"),
            ArraySource(mask),
            BlockPlan.regular(mask.shape, (7, 8, 9)),
            scheduler="sync",
        )
    )
    engine.resolve(["kept"])
    objects = engine.labellings["objects"]
    assert objects.bbox is not None and objects.final is not None
    blocks = engine.for_each_block("kept", lambda box, block: (box, block), "write")
    for lab in engine.labellings.values():
        assert lab.final is None and lab.border is None and lab.bbox is None
        assert len(lab.luts) == engine.plan.nblocks and lab.sizes is not None
    got = np.zeros(mask.shape, np.uint32)
    for box, block in blocks:
        got[tuple(slice(a, b) for a, b in box)] = block
    labels = measure.label(mask, connectivity=1)
    want = morphology.remove_small_objects(labels, max_size=3)
    np.testing.assert_array_equal(got > 0, want > 0)
    assert engine.labellings["kept"].count == len(np.unique(want)) - 1
