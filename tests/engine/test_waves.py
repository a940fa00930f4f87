"""Passes run in waves of tasks: the same results, each task once, a bounded graph."""

from __future__ import annotations

import itertools
import operator
import threading
import tracemalloc

import dask.threaded
import numpy as np
import pytest
import zarr
from scipy import ndimage as ndi

import pipeline
from pipeline.engine.taskspec import DataNode, compact_graph
from pipeline.engine.waves import _block_order, _dependencies, compute_in_waves
from tests.conftest import otsu_objects, otsu_objects_config


class Counted:
    """Task functions that count their calls (each task must run exactly once)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str, func):
        def run(*args):
            with self._lock:
                self.calls[name] = self.calls.get(name, 0) + 1
            return func(*args)

        return run


def _halo_graph(n: int, counted: Counted) -> tuple[dict, list]:
    """A 2-D pass in miniature: per block a read, a halo, a program over the block and
    its neighbours' halos, a partial result; the partials merged in a tree; and a
    summary per block that a pairs task of the next block along each axis reads."""
    dsk: dict = {}
    read = counted("read", lambda i, j: np.full(4, 10 * i + j))
    halo = counted("halo", lambda a: a[:1].copy())
    prog = counted("prog", lambda own, *nbs: own + sum(h[0] for h in nbs))
    part = counted("part", lambda a: int(a.sum()))
    merge = counted("merge", lambda *xs: sum(xs))
    pair = counted("pair", lambda a, b: (a, b))
    for i, j in itertools.product(range(n), range(n)):
        dsk[("halo-x", (1, 1), i, j)] = (halo, (read, i, j))
        near = [
            ("halo-x", (1, 1), a, b)
            for a in range(max(i - 1, 0), min(i + 2, n))
            for b in range(max(j - 1, 0), min(j + 2, n))
            if (a, b) != (i, j)
        ]
        dsk[("blk-x", i, j)] = (prog, (read, i, j), *near)
        dsk[("part-x", i, j)] = (part, ("blk-x", i, j))
        for lo in [(i - 1, j), (i, j - 1)]:
            if min(lo) >= 0:
                dsk[("pairs-x", *lo, i, j)] = (pair, ("part-x", *lo), ("part-x", i, j))
    keys = [("part-x", i, j) for i, j in itertools.product(range(n), range(n))]
    level = 0
    while len(keys) > 1:
        nxt = []
        for s in range(0, len(keys), 3):
            k = ("reduce-x", level, s, "tree")
            dsk[k] = (merge, *keys[s : s + 3])
            nxt.append(k)
        keys, level = nxt, level + 1
    pairs = sorted(k for k in dsk if k[0] == "pairs-x")
    return dsk, [keys[0], *pairs]


@pytest.mark.parametrize("size", [1, 2, 5, 17, 64, 10_000])
def test_waves_give_the_whole_graph_results_each_task_once(size):
    whole_calls = Counted()
    dsk, keys = _halo_graph(6, whole_calls)
    want = list(dask.threaded.get(dsk, keys))
    calls = Counted()
    dsk, keys = _halo_graph(6, calls)
    seen = []

    def get(sub, wanted, **kwargs):
        tasks = [k for k, v in sub.items() if not isinstance(v, DataNode)]
        seen.append((len(tasks), len(sub) - len(tasks)))
        return dask.threaded.get(sub, wanted, **kwargs)

    got = compute_in_waves(get, dsk, keys, 2, size, num_workers=2)
    assert got == want
    assert calls.calls == whole_calls.calls  # each task once, as in one graph
    if size < len(dsk):
        assert len(seen) > 1
        # Waves of ``size`` tasks, a few more where the next task uses the last one's result.
        assert all(size <= t <= size + 3 for t, _ in seen[:-1]) and seen[-1][0] <= size + 3
        # What is held between waves stays a few rows of blocks, not the whole pass.
        if size <= 5:
            assert max(h for _, h in seen) <= 3 * 6 + size, seen


def test_block_order_runs_dependencies_first_and_follows_the_blocks():
    dsk, keys = _halo_graph(5, Counted())
    deps = _dependencies(dsk, keys)
    order = _block_order(deps, 2)
    assert sorted(order, key=repr) == sorted(deps, key=repr)
    where = {k: i for i, k in enumerate(order)}
    assert all(where[d] < where[k] for k, ds in deps.items() for d in ds)
    halos = [k[2:] for k in order if k[0] == "halo-x"]
    assert halos == sorted(halos)  # tasks needing nothing go in block order
    for a, b in itertools.product(range(5), range(5)):  # a block's task waits a row at most
        if a + 2 < 5:
            assert where[("blk-x", a, b)] < where[("halo-x", (1, 1), a + 2, 0)]


def test_a_small_graph_goes_whole():
    dsk, keys = _halo_graph(2, Counted())
    calls = []

    def get(sub, wanted, **kwargs):
        calls.append(len(sub))
        return dask.threaded.get(sub, wanted, **kwargs)

    compute_in_waves(get, dsk, keys, 2, 10_000)
    assert calls == [len(dsk)]


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(12)
    image = ndi.gaussian_filter((rng.random((28, 44, 36)) < 0.006).astype(float), 1.4)
    return (image / image.max() * 250).astype(np.uint8)


@pytest.mark.parametrize("chunks", [(7, 11, 9), (10, 16, 12), (28, 8, 36)])
def test_runs_in_waves_equal_one_graph_and_scikit_image(blobs, tmp_path, chunks):
    src = tmp_path / "in.zarr"
    zarr.create_array(str(src), data=blobs, chunks=(14, 22, 18))

    def run(out, waves):
        res = pipeline.run(otsu_objects_config(src, out, chunks, {"wave_tasks": waves}))
        return res.count, zarr.open_array(str(res.labels_path / "0"), mode="r")[...]

    count, labels = run(tmp_path / "whole", 1_000_000)
    for waves in (3, 40):
        c, lab = run(tmp_path / f"waves{waves}", waves)
        assert c == count
        np.testing.assert_array_equal(lab, labels)
    np.testing.assert_array_equal(labels, otsu_objects(blobs))


def _pick(d, name):
    return d[name]


def test_the_compact_graph_computes_what_dask_computes():
    """Keys as values, in lists, tuples and inner tasks, dict and array arguments: the
    same results from the graph as given and from its compact form."""
    dsk = {
        "a": 1,
        ("b", 0): (operator.add, "a", 2),
        "alias": ("b", 0),
        "listed": (sum, [("b", 0), "a", (operator.add, "a", 1)]),
        "nested": (len, [[("b", 0)], ("a", ("b", 0)), "not a key"]),
        "dict": (_pick, {"x": 5, "y": "a"}, "y"),  # keys in dicts stay as they are
        "array": (np.sum, np.arange(4)),
        "value list": [("b", 0), "a"],
        "box": (operator.getitem, ((0, 2), (1, 3)), 1),
        "set": (sorted, {"a", ("b", 0)}),
        "named": (operator.attrgetter("start"), slice(1, 2)),
    }
    keys = list(dsk)
    want = dask.threaded.get(dsk, keys)
    got = dask.threaded.get(compact_graph(dsk), keys)
    assert list(got) == list(want)


def test_the_compact_graph_takes_less_memory_than_dasks_conversion():
    """A block task naming the slabs of its 27 neighbours: Dask's own conversion makes an
    alias with a set of its own per name."""
    from dask._task_spec import convert_legacy_graph

    grid = list(itertools.product(range(6), repeat=3))
    dsk = {("halo", *i): (str, i) for i in grid}
    for i in grid:
        near = [("halo", *j) for j in grid if np.abs(np.subtract(i, j)).max() <= 1]
        dsk[("part", *i)] = (len, (list, ["plan", [near]]))

    def traced(convert) -> int:
        tracemalloc.start()
        try:
            graph = convert(dsk)
            size = tracemalloc.get_traced_memory()[0]
            del graph
            return size
        finally:
            tracemalloc.stop()

    assert traced(compact_graph) < 0.7 * traced(convert_legacy_graph)
    keys = [("part", *i) for i in grid]
    got = dask.threaded.get(compact_graph(dsk), keys)
    assert list(got) == list(dask.threaded.get(dsk, keys))
