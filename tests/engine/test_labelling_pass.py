"""What the client keeps per object after stitching: boxes and object ids, kept small."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import measure

import pipeline
from pipeline.engine import labelling_pass
from pipeline.engine.labelling_pass import _object_boxes


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
    stitched = labelling_pass._stitched

    def keep(*args, **kwargs):
        kept["lab"] = lab = stitched(*args, **kwargs)
        return lab

    monkeypatch.setattr(labelling_pass, "_stitched", keep)
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
    assert lab.final.dtype == np.uint32 and lab.bbox.dtype == np.int32
    want = measure.regionprops(measure.label(mask, connectivity=1))
    assert res.count == len(want) == lab.count
    np.testing.assert_array_equal(lab.bbox, [r.bbox for r in want])
