"""Order statistics of each plane against numpy per plane, over several chunkings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipeline.kernels import histogram, plane_order
from pipeline.kernels.plane_order import order_statistics_per_plane


class BlockStats:
    """Passes over an in-memory stack in blocks of ``chunks`` (no halo), in order."""

    def __init__(self, array: np.ndarray, chunks: tuple[int, ...]) -> None:
        self.array, self.shape, self.dtype = array, array.shape, array.dtype
        self.dtypes, self.colour = (array.dtype,), False
        starts = [range(0, n, c) for n, c in zip(array.shape, chunks, strict=True)]
        self.boxes = [
            tuple((s, min(s + c, n)) for s, c, n in zip(start, chunks, array.shape, strict=True))
            for start in itertools.product(*starts)
        ]
        self.passes = 0

    def reduce(self, func, combine=None, halo=None, name="", n_inputs=1, stand_in=None):
        self.passes += 1
        out = None
        for box in self.boxes:
            part = func(self.array[tuple(slice(a, b) for a, b in box)], box, box)
            out = part if out is None else (combine or (lambda a, b: a + b))(out, part)
        return out


def _values(block, box, core):
    return block.astype(np.float64)


@pytest.mark.parametrize("chunks", [(7, 40, 33), (1, 9, 10), (3, 17, 5)])
def test_each_plane_as_numpy_sorts_it(chunks, monkeypatch):
    rng = np.random.default_rng(0)
    stack = np.stack([
        rng.normal(10, 2, (40, 33)),
        np.round(rng.normal(0, 3, (40, 33))),  # many ties
        np.full((40, 33), 2.5),  # one value
        rng.exponential(1.0, (40, 33)) ** 4,  # a long tail
        rng.integers(0, 3, (40, 33)).astype(float),
        rng.normal(0, 1e-9, (40, 33)),
    ])  # fmt: skip
    monkeypatch.setattr(plane_order, "GATHER_LIMIT", 64)  # narrow in several passes
    n = 40 * 33
    ranks = [0, 1, 13, n // 2, n - 2, n - 1]
    stats = BlockStats(stack, chunks)
    found = order_statistics_per_plane(stats, ranks, _values, len(stack))
    for plane, got in zip(stack, found, strict=True):
        want = np.sort(plane.ravel())
        assert got == {k: want[k] for k in ranks}
    assert stats.passes <= 8  # the passes do not grow with the planes


def test_percentiles_per_plane_equal_numpy():
    rng = np.random.default_rng(1)
    stack = rng.gamma(2.0, 3.0, (4, 25, 31)) * np.arange(1, 5)[:, None, None]
    n = 25 * 31
    for q in (0.5, 1.0, 37.3, 99.8):
        ranks = histogram.percentile_ranks(n, q)
        found = order_statistics_per_plane(BlockStats(stack, (2, 8, 16)), ranks, _values, 4)
        got = [histogram.percentile_from(f.__getitem__, n, q) for f in found]
        np.testing.assert_array_equal(got, np.percentile(stack.reshape(4, -1), q, axis=1))
