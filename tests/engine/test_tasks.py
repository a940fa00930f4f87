"""Guarded tasks: an error in a task, or in a task nested in its arguments, names the
task and its block."""

from __future__ import annotations

import dask
import numpy as np
import pytest

from pipeline.engine import tasks
from pipeline.errors import BlockError


def _too_big(n: int) -> np.ndarray:
    return np.empty((n, n, n, n), np.float64)  # 80 PB


def _first(a: np.ndarray) -> float:
    return float(a.flat[0])


@pytest.mark.parametrize("nested", [False, True])
def test_an_error_names_the_block_whichever_task_raises(nested):
    name = tasks.TaskName(("smooth", 1, 2))
    task = (_first, (_too_big, 10**4)) if nested else (_too_big, 10**4)
    dsk = {("smooth", 1, 2): tasks.guard(name, 2, task)}
    with pytest.raises(BlockError, match=r"smooth: failed on block 1,2: ran out of memory"):
        dask.get(dsk, [("smooth", 1, 2)])


def test_guard_leaves_keys_and_values_as_they_are():
    name = tasks.TaskName(("a", 0))
    assert tasks.guard(name, 1, ("b", 0)) == ("b", 0)  # a key, not a task
    assert tasks.guard(name, 1, [("b", 0), 3]) == [("b", 0), 3]
    guarded = tasks.guard(name, 1, (sum, [(len, "abc"), 1]))
    assert dask.get({"x": guarded}, "x") == 4
