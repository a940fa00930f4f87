"""Running a pass's graph in waves, so the scheduler holds a bounded part of it at a time.

A pass has a few tasks per block. Handed to Dask whole, a pass over a large volume costs
the scheduler memory and ordering time in proportion to the number of blocks (gigabytes
for a volume of hundreds of gigabytes; see ``docs/design/measured-choices.md``). Run in
waves instead, the tasks are put in an order that follows the blocks (C order of their
indices, each task as soon as what it needs is done) and handed to Dask about ``size``
tasks at a time. Results a later wave needs (halo file names, block summaries waiting for
their neighbours, partial reductions) are held between waves and dropped after their last
use, so what is held stays a few planes of blocks.

On a Dask cluster the waves go to its scheduler the same way. Block data a later wave
needs (halo slabs exchanged through Dask) stays on the workers as futures; the rest a
wave hands on (file names, per-block summaries, partial statistics: bytes to kilobytes
a block) comes to this process with the wave's results and goes to the next waves as
data. The scheduler keeps a finished task while a task that depends on it is alive (to
recompute a lost result), so a chain of futures from wave to wave would keep every task
of the pass there; cut at each wave, it forgets each wave once the next has used it.

The output does not change: every task runs once, on the same inputs, whatever the waves.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable

from dask.core import get_dependencies

from pipeline.engine.taskspec import DataNode, compact_graph


def compute_in_waves(
    get: Callable, dsk: dict, keys: list, ndim: int, size: int, client=None, **kwargs
):
    """The results of ``keys``, computing ``dsk`` by ``get`` in waves of about ``size`` tasks.

    A graph of at most ``size`` tasks goes to ``get`` whole. ``kwargs`` go to ``get``.
    With ``client`` (a distributed Client, whose ``get`` is ``get``) the block data one
    wave hands on (halo slabs exchanged through Dask) stays on the workers as futures;
    see the module's docstring.
    """
    if len(dsk) <= size:  # small enough whatever culling leaves: no dependencies to trace
        return list(get(compact_graph(dsk), keys, **kwargs))
    deps = _dependencies(dsk, keys)
    if len(deps) <= size:
        return list(get(compact_graph(dsk), keys, **kwargs))
    waves = _cut(_block_order(deps, ndim), deps, size)
    wave_of = {k: w for w, wave in enumerate(waves) for k in wave}
    last_use: dict[Hashable, int] = {}
    for k, ds in deps.items():
        for d in ds:
            if wave_of[k] > last_use.get(d, -1):
                last_use[d] = wave_of[k]
    targets = set(keys)
    held: dict[Hashable, object] = {}  # results later waves need (or futures of them)
    remote: set[Hashable] = set()  # the keys held as futures
    for w, wave in enumerate(waves):
        wanted = [k for k in wave if k in targets or last_use.get(k, -1) > w]
        if client is None:
            sub = {k: dsk[k] for k in wave}
            for k in wave:
                for d in deps[k]:
                    if d not in sub:
                        sub[d] = DataNode(d, held[d])
            held.update(zip(wanted, get(compact_graph(sub), wanted, **kwargs), strict=True))
        else:
            # The data goes into the tasks that use it: a key of a finished task may still
            # be on the scheduler (its futures' release is on its way) and must not come
            # back as another task.
            sub = {}
            for k in wave:
                data = {d: held[d] for d in deps[k] if d not in remote and d in held}
                sub[k] = _with_data(dsk[k], data) if data else dsk[k]
                for d in deps[k]:
                    if d in remote:
                        sub[d] = held[d]
            futures = client.get(compact_graph(sub), wanted, sync=False)
            futures = dict(zip(wanted, futures, strict=True))
            stay = {k for k in wanted if k not in targets and _block_data(k)}
            here = [k for k in wanted if k not in stay]
            held.update(zip(here, client.gather([futures[k] for k in here]), strict=True))
            held.update((k, futures.pop(k)) for k in stay)
            remote |= stay
            del futures
        for k in [k for k in held if last_use.get(k, -1) <= w and k not in targets]:
            del held[k]
            remote.discard(k)
    return [held[k] for k in keys]


def _with_data(task, data: dict):
    """``task`` with each key of ``data`` in it (an argument, in a list or a nested task)
    replaced by its value, as data."""
    if type(task) is tuple and task and callable(task[0]):
        return (task[0], *(_with_data(a, data) for a in task[1:]))
    if type(task) is list:
        return [_with_data(a, data) for a in task]
    try:
        if task in data:
            return DataNode(None, data[task])
    except TypeError:  # unhashable: not a key
        pass
    return task


def _block_data(key) -> bool:
    """Whether the task of ``key`` gives block data (halo slabs) rather than a file name,
    a per-block summary or a partial statistic."""
    return isinstance(key, tuple) and isinstance(key[0], str) and key[0].startswith("halo-")


def _cut(order: list, deps: dict[Hashable, tuple], size: int) -> list[list]:
    """``order`` in waves of ``size`` tasks or a few more: a wave does not end between a
    task and the next one when that one uses its result (a block's image and the partial
    result taken from it), so what waves hand on is what waits for other blocks anyway."""
    waves: list[list] = [[]]
    for k in order:
        wave = waves[-1]
        if len(wave) >= size and wave[-1] not in deps[k]:
            waves.append(wave := [])
        wave.append(k)
    return waves


def _dependencies(dsk: dict, keys: list) -> dict[Hashable, tuple]:
    """The direct dependencies of every task ``keys`` need (the graph culled to them)."""
    deps: dict[Hashable, tuple] = {}
    stack = list(keys)
    while stack:
        k = stack.pop()
        if k in deps:
            continue
        deps[k] = tuple(get_dependencies(dsk, k))
        stack.extend(d for d in deps[k] if d not in deps)
    return deps


def _block_order(deps: dict[Hashable, tuple], ndim: int) -> list:
    """The tasks in an order that runs each one after its dependencies, following the
    blocks: of the tasks ready, the one of the lowest block index goes first (a task
    without a block index takes the highest of its dependencies')."""
    waiting = {k: len(ds) for k, ds in deps.items()}
    users: dict[Hashable, list] = {}
    for k, ds in deps.items():
        for d in ds:
            users.setdefault(d, []).append(k)
    rank: dict[Hashable, tuple] = {}
    ready: list = []
    seq = itertools.count()

    def push(k) -> None:
        own = _block_index(k, ndim)
        rank[k] = own if own is not None else max((rank[d] for d in deps[k]), default=())
        heapq.heappush(ready, (rank[k], next(seq), k))

    for k, n in waiting.items():
        if n == 0:
            push(k)
    order = []
    while ready:
        k = heapq.heappop(ready)[2]
        order.append(k)
        for u in users.get(k, ()):
            waiting[u] -= 1
            if waiting[u] == 0:
                push(u)
    return order


def _block_index(key, ndim: int) -> tuple | None:
    # Block keys end with the block's index: ("part-x-1", 0, 3, 2), ("halo-x", m, 0, 3, 2).
    if isinstance(key, tuple) and len(key) > ndim:
        tail = key[-ndim:]
        if all(type(i) is int for i in tail):
            return tail
    return None
