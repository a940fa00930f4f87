"""The benchmark's fix of dask-image's label (benchmarks/bench_daskimage_fix.py): the labels
of ``scipy.ndimage.label`` up to renumbering, the stock dask-image labels exactly, and each
upstream task run once."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_daskimage_fix as fix  # noqa: E402

CASES = [
    ((40, 37), (40, 37)),  # one chunk
    ((40, 37), (10, 10)),
    ((40, 37), ((5, 15, 20), (1, 12, 24))),  # uneven, a chunk one voxel wide
    ((40, 37), (1, 37)),  # single rows
    ((12, 14, 13), (12, 14, 13)),
    ((12, 14, 13), (4, 5, 6)),
    ((12, 14, 13), ((2, 7, 3), (14,), (1, 1, 11))),
]


def structures(ndim: int) -> list:
    return [None, ndi.generate_binary_structure(ndim, ndim)]


@pytest.fixture
def patched(monkeypatch):
    """``dask_image.ndmeasure.label`` patched by ``apply`` (put back after the test)."""
    from dask_image import ndmeasure

    stock = ndmeasure.label
    monkeypatch.setattr(ndmeasure, "label", stock)
    fix.apply()
    assert ndmeasure.label is fix.label
    return stock, ndmeasure.label


def counted(mask: np.ndarray, chunks):
    """``mask`` as a dask array whose blocks come from a map_blocks task recording its
    block index each time it runs."""
    runs: Counter = Counter()

    def record(block, block_id=None):
        runs[block_id] += 1
        return block

    meta = np.empty((0,) * mask.ndim, dtype=mask.dtype)
    return da.from_array(mask, chunks=chunks).map_blocks(record, meta=meta), runs


def assert_same_objects(labels: np.ndarray, n: int, expected: np.ndarray, n_expected: int):
    """``labels`` are ``expected`` renumbered: a bijection between their label values."""
    assert n == n_expected
    assert np.array_equal(labels > 0, expected > 0)
    pairs = np.unique(np.stack([labels[labels > 0], expected[expected > 0]]), axis=1)
    # Each label meets one expected label and each expected label one label.
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1] == n
    assert labels.max(initial=0) == n


@pytest.mark.parametrize(("shape", "chunks"), CASES)
def test_labels_are_scipys_and_upstream_runs_once(patched, shape, chunks):
    _, label = patched
    rng = np.random.default_rng(sum(shape))
    for fill in (0.0, 0.35, 0.6, 1.0):
        mask = rng.random(shape) < fill
        for structure in structures(mask.ndim):
            image, runs = counted(mask, chunks)
            labels, n = label(image, structure=structure)
            labels, n = dask.compute(labels, n, scheduler="sync")
            expected, n_expected = ndi.label(mask, structure=structure)
            assert_same_objects(labels, int(n), expected, n_expected)
            blocks = set(np.ndindex(*image.numblocks))
            assert set(runs) == blocks and set(runs.values()) == {1}, runs


@pytest.mark.parametrize(
    ("shape", "chunks", "wrap_axes"),
    [
        ((14, 15), (5, 6), None),
        ((14, 15), ((3, 11), (15,)), None),
        ((14, 15), (5, 6), (0,)),
        ((14, 15), (5, 6), (0, 1)),
        ((8, 9, 7), (4, 4, 4), None),
    ],
)
def test_labels_are_stock_dask_images(patched, shape, chunks, wrap_axes):
    """The same numbers as stock dask-image (tiny arrays: the stock one recomputes each
    block's upstream many times over), wrapped axes included."""
    stock, label = patched
    rng = np.random.default_rng(7)
    mask = rng.random(shape) < 0.45
    for structure in structures(mask.ndim):
        image, runs = counted(mask, chunks)
        ours = dask.compute(*label(image, structure, wrap_axes), scheduler="sync")
        assert set(runs.values()) == {1}
        image, stock_runs = counted(mask, chunks)
        theirs = dask.compute(*stock(image, structure, wrap_axes), scheduler="sync")
        assert np.array_equal(ours[0], theirs[0]) and ours[1] == theirs[1]
        if wrap_axes is None:
            assert_same_objects(ours[0], int(ours[1]), *ndi.label(mask, structure))
        if image.npartitions > 1:  # what the fix is for: stock reruns upstream tasks
            assert max(stock_runs.values()) > 1


def test_graph_keys_shared_and_linear():
    """The graph holds each input block once and grows with the blocks (stock dask-image's
    holds renamed copies of the upstream: 140 tasks a block at 2³ blocks, 816 at 4³)."""
    per_block = []
    for grid in (2, 4):
        image = da.zeros((grid * 3,) * 3, dtype=bool, chunks=3)
        labels, n = fix.label(image)
        graph = {**dict(labels.__dask_graph__()), **dict(n.__dask_graph__())}
        inputs = [k for k in graph if isinstance(k, tuple) and k[0] == image.name]
        assert len(inputs) == grid**3
        per_block.append(len(graph) / grid**3)
    assert per_block[1] < 1.5 * per_block[0]
