"""The one use of Dask's task classes (``dask._task_spec``, not public API): a graph of
tuple tasks as Dask's task objects, made compactly.

Dask converts tuple tasks itself, but makes each reference to another task an ``Alias``
with a set of its own; a block's program task names the halo slabs of up to 27 blocks, so
that conversion holds several kilobytes per task more than this one (see
``tests/engine/test_waves.py``, which measures both). What runs is the same. Should Dask
change these classes, this module is the one to follow it; its tests pin what it relies on.
"""

from __future__ import annotations

from dask._task_spec import (
    DataNode,
    Dict,
    GraphNode,
    List,
    Task,
    TaskRef,
    Tuple,
    convert_legacy_task,
)

__all__ = ["DataNode", "GraphNode", "compact_graph"]


def compact_graph(dsk: dict) -> dict:
    """``dsk`` (tuple tasks) as Dask's task objects, each reference to another task a
    ``TaskRef``.

    A tuple whose first item is callable is a task; a key (in ``dsk``) stands for its
    task's result, also inside lists and tuples; anything else is a value.
    """
    keys = set(dsk)
    out = {}
    for k, t in dsk.items():
        if isinstance(t, GraphNode):
            out[k] = t
        elif type(t) is tuple and t and callable(t[0]):
            out[k] = _compact_task(k, t, keys)
        else:  # a value, or another task's key standing for its result: as Dask does
            node = convert_legacy_task(k, t, keys)
            out[k] = node if isinstance(node, GraphNode) else DataNode(k, t)
    return out


def _compact_task(key, task: tuple, keys: set) -> Task:
    # A dict argument is rebuilt as it is, as Dask's own conversion does.
    args = (Dict(a) if type(a) is dict else _compact_arg(a, keys) for a in task[1:])
    return Task(key, task[0], *args)


def _compact_arg(arg, keys: set):
    if isinstance(arg, (GraphNode, TaskRef)):
        return arg
    if type(arg) is tuple and arg and callable(arg[0]):  # a task inside a task
        return _compact_task(None, arg, keys)
    if isinstance(arg, (int, float, str, tuple)):  # what may be a key, as for Dask
        try:
            if arg in keys:
                return TaskRef(arg)
        except TypeError:  # a tuple holding something unhashable: not a key
            pass
    if type(arg) in (list, tuple):
        items = [_compact_arg(a, keys) for a in arg]
        if any(isinstance(a, (GraphNode, TaskRef)) for a in items):
            return List(*items) if type(arg) is list else Tuple(*items)
    elif isinstance(arg, (list, tuple, set, frozenset)):  # named tuples, sets: as Dask does
        return convert_legacy_task(None, arg, keys)
    return arg
