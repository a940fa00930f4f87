"""The report: pictures made from the write pass's gathered pieces, and the HTML page."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from matplotlib.image import imread
from skimage.segmentation import find_boundaries

import pipeline
from pipeline.io.report import grey
from tests.conftest import smooth_field


def _run(tmp_path, img, chunks):
    np.save(tmp_path / "in.npy", img)
    cfg = {
        "input": {"path": str(tmp_path / "in.npy"), "chunks": list(chunks)},
        "steps": {
            "mask": {"op": "threshold", "method": "otsu"},
            "cells": {"op": "label", "connectivity": 1},
        },
        "output": {"path": str(tmp_path / "out"), "labels": "cells", "report": True},
    }
    return pipeline.run(cfg)


@pytest.mark.parametrize("shape, chunks", [((20, 90, 70), (8, 32, 24)), ((120, 100), (50, 33))])
def test_report_pictures(tmp_path, shape, chunks):
    img = smooth_field(shape, noise=True)
    res = _run(tmp_path, img, chunks)
    folder = tmp_path / "out" / "report"
    assert res.summary["report"] == str(folder / "report.html")
    labels = zarr.open_array(str(res.labels_path / "0"), mode="r")[:]
    mip = img.max(axis=0) if img.ndim == 3 else img
    lab_mip = labels.max(axis=0) if labels.ndim == 3 else labels

    raw = (imread(folder / "projection.png")[..., :3] * 255).round().astype(np.uint8)
    over = (imread(folder / "overview.png")[..., :3] * 255).round().astype(np.uint8)
    # The projection assembled from the blocks is the projection of the whole image.
    np.testing.assert_array_equal(raw, grey(mip))
    # The overview differs from it on the objects' outlines, and only there.
    edge = find_boundaries(lab_mip, mode="inner") & (lab_mip != 0)
    differs = (raw != over).any(axis=-1)
    assert edge.sum() > 50
    assert not (differs & ~edge).any()
    assert differs[edge].mean() > 0.9

    for name in ("sizes.png", "blocks.png"):
        pic = imread(folder / name)
        assert pic.shape[0] > 200 and pic[..., :3].std() > 0.05  # drawn, not blank
    page = (folder / "report.html").read_text()
    for src in ("overview.png", "sizes.png", "blocks.png"):
        assert f'src="{src}"' in page
    assert f"<th>objects</th><td>{res.count}</td>" in page


def test_report_needs_no_table(tmp_path):
    """The overview uses the input when no other image is named; counts per block add up."""
    img = smooth_field((16, 64, 64), seed=2, noise=True)
    res = _run(tmp_path, img, (8, 32, 32))
    per_block = res.summary["objects_per_block"]
    assert len(per_block) == 8 and sum(per_block) >= res.count
