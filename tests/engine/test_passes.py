"""A block computed for one task alone runs inside that task; the result does not change."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import zarr
from dask.callbacks import Callback

import pipeline
from tests.conftest import otsu_objects, otsu_objects_config


@pytest.mark.parametrize("chunks", [(16, 16, 16), (20, 24, 11)])
def test_single_use_blocks_run_inside_their_users_task(tmp_path, chunks):
    rng = np.random.default_rng(4)
    image = rng.normal(100, 30, (40, 48, 33)).clip(0, 255).astype(np.uint8)
    src = tmp_path / "in.zarr"
    zarr.create_array(str(src), data=image, chunks=(20, 16, 11))
    # nothing kept: each pass computes the Gaussian of every block again
    cfg = otsu_objects_config(src, tmp_path / "out", chunks, {"scratch_budget": "0"})
    ran = collections.Counter()

    def seen(key, dsk, state):
        if isinstance(key, tuple):
            ran[key[0]] += 1

    with Callback(pretask=seen):
        res = pipeline.run(cfg)
    blocks = res.summary["blocks"]
    # The partial minimum / histogram tasks computed the Gaussian themselves, and the
    # summaries labelled their blocks themselves: no task of its own for either.
    assert ran["part-mask-1"] == ran["part-mask-2"] == ran["summary-objects"] == blocks
    assert not [name for name in ran if name.startswith(("blk-", "grown-"))]
    assert ran["local-objects"] == blocks  # the write pass loading the kept local labels
    got = zarr.open_array(str(res.labels_path / "0"), mode="r")[...]
    np.testing.assert_array_equal(got, otsu_objects(image))
