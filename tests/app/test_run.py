"""The Python API: ``pipeline.run`` on a dict config."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from skimage.filters import threshold_otsu
from skimage.measure import label

import pipeline
from pipeline.app.run import scratch_budget
from pipeline.config.loader import load_config
from pipeline.engine.scratch import page_cache_budget
from pipeline.errors import ConfigError


@pytest.fixture
def blobs_tiff(tmp_path):
    rng = np.random.default_rng(7)
    image = (rng.random((20, 40, 36)) * 255).astype(np.uint8)
    path = tmp_path / "blobs.tif"
    tifffile.imwrite(path, image)
    return path, image


def test_dict_keeps_step_order(blobs_tiff, tmp_path):
    # Names in reverse alphabetical order: each step's input defaults to the step before it.
    path, image = blobs_tiff
    config = {
        "input": {"path": path, "chunks": [7, 13, 11]},
        "steps": {
            "zmask": {"op": "threshold", "method": "otsu"},
            "objects": {"op": "label", "connectivity": 2},
        },
        "output": {"path": tmp_path / "out", "labels": "objects"},
    }
    result = pipeline.run(config)
    expected = label(image > threshold_otsu(image), connectivity=2)
    assert result.count == expected.max()
    assert result.summary["count"] == expected.max()
    assert list(result.summary["config"]["steps"]) == ["zmask", "objects"]


def test_auto_chunks(blobs_tiff, tmp_path):
    path, image = blobs_tiff
    config = {
        "input": {"path": str(path)},
        "steps": {"mask": {"op": "threshold", "value": 128}, "objects": {"op": "label"}},
        "output": {"path": str(tmp_path / "out"), "labels": "objects"},
    }
    result = pipeline.run(config)
    assert result.count == label(image > 128).max()


def test_dict_with_unusable_value(tmp_path):
    config = {"input": {"path": object()}, "steps": {}, "output": {"path": "x"}}
    with pytest.raises(ConfigError, match="not a config value"):
        pipeline.run(config)


def test_scratch_budget_from_config(blobs_tiff, tmp_path):
    def budget(**engine):
        cfg = {
            "input": {"path": str(blobs_tiff)},
            "steps": {"mask": {"op": "threshold", "method": "otsu"}},
            "output": {"path": str(tmp_path / "out"), "labels": "mask"},
            "engine": engine,
        }
        return scratch_budget(load_config(cfg))

    assert budget(scratch_budget="1GiB") == 2**30
    assert budget(scratch_budget="500MB", concurrent_inputs=4) == 500 * 10**6
    # By default, the page cache's share, split between inputs that run at once.
    share = budget(concurrent_inputs=4) / page_cache_budget()
    assert 0.2 < share < 0.3
