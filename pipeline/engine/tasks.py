"""Functions that run inside Dask tasks (plain numpy; picklable arguments)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.engine import journal, scratch, stitch
from pipeline.engine.blocks import BlockPlan, Box, crop, grow, intersect
from pipeline.engine.program import Program, run_program
from pipeline.errors import BlockError, SegpipeError
from pipeline.kernels.compiled import apply_table
from pipeline.kernels.labels import BlockLabels, local_label, summarise_block


def read_block(source, box: Box) -> np.ndarray:
    """Read one block of the source (the reader opens its file itself)."""
    return source.read(box)


def _pieces(program: Program, box: Box, shape, leaf_data) -> dict:
    """Each leaf's (box, array) pieces covering what ``program`` needs around ``box``."""
    plan, items = leaf_data
    out = {}
    for leaf, leaf_items in zip(program.leaves, items, strict=True):
        want = program.leaf_box(leaf, box, shape)
        pieces = []
        for nb, it in zip(plan.blocks_in(want), leaf_items, strict=True):
            bx = plan.box(nb)
            if isinstance(it, str):  # a neighbour's halo slabs, in a scratch file
                part = intersect(want, bx)
                pieces.append((part, scratch.load_part(it, part)))
                scratch.done_reading(it)
            elif isinstance(it, HaloSlabs):  # ... or moved here by Dask
                part = intersect(want, bx)
                pieces.append((part, it.parts[part]))
            else:
                pieces.append((bx, it))
        out[leaf] = pieces
    return out


@dataclass(frozen=True)
class HaloSlabs:
    """The parts of one block its neighbours need, by box, as a task result."""

    parts: dict


def halo_out(
    block: np.ndarray,
    plan: BlockPlan,
    index,
    margin,
    path: str | None,
    whole: bool = False,
    readers: int = 0,
) -> str | HaloSlabs:
    """Store the parts of block ``index`` that blocks within ``margin`` need; their file.

    The slabs go to scratch rather than memory, so however the scheduler orders the
    tasks, no slab waits in memory for the blocks that need it. With ``whole``, the
    block itself is stored too, for its own program task. With ``readers``, the file is
    deleted once that many tasks of this process have read it. Without ``path`` the
    slabs are the task's result, which Dask keeps (and spills to the worker's own disk)
    until the tasks that need them have run, moving them between workers.
    """
    box = plan.box(index)
    parts = {box: block} if whole else {}
    for j in plan.blocks_in(grow(box, margin, plan.shape)):
        if j != index:
            part = intersect(grow(plan.box(j), margin, plan.shape), box)
            parts[part] = np.ascontiguousarray(crop(block, box, part))
    if path is None:
        return HaloSlabs(parts)
    scratch.save_parts(path, parts)
    if readers:
        scratch.expect_readers(path, readers)
    return path


def program_block(program: Program, box: Box, shape, leaf_data) -> np.ndarray:
    """Evaluate a fused program on one block from its leaves' blocks."""
    return run_program(program, box, shape, _pieces(program, box, shape, leaf_data))


def program_block_kept(program: Program, box: Box, shape, leaf_data, path: str) -> np.ndarray:
    """Evaluate a fused program on one block and keep the result in scratch."""
    data = program_block(program, box, shape, leaf_data)
    scratch.save(path, data)
    return data


def load_block(path: str) -> np.ndarray:
    """A block kept in scratch by an earlier pass."""
    return scratch.load(path)


@dataclass(frozen=True)
class Prepare:
    """How an object filter turns its input block into the mask it labels.

    (Not a tuple: Dask would take a tuple that starts with a function for a task.)
    """

    func: Callable
    params: object
    peaks: bool  # whether the summary records each label's largest input value
    margin: tuple[int, ...] | None = None  # context func needs beyond the block
    planar: bool = False  # objects connect within planes of constant first index only


def label_block(
    program: Program,
    box: Box,
    shape,
    leaf_data,
    connectivity: int,
    keep_values: bool,
    prepare=None,
):
    """Compute the labelling input on one block and label it locally.

    With a :class:`Prepare`, the block is labelled as ``prepare.func(data, params)``
    and, with ``peaks``, the summary gets each label's largest value of ``data``.
    Returns (labels, values kept for the faces, peak source).
    """
    data = run_program(program, box, shape, _pieces(program, box, shape, leaf_data))
    if prepare is None:
        return local_label(data, connectivity), (data if keep_values else None), None
    mask = prepare.func(data, prepare.params)
    peaks = prepare.peaks
    if isinstance(mask, tuple):  # the mask, and what the summary takes peaks of
        mask, data = mask
        peaks = True
    if prepare.margin is not None:
        grown = program.out_box(box, shape)
        mask, data = crop(mask, grown, box), crop(data, grown, box)
    if mask.dtype != np.bool_:  # graded: objects are its non-zero part, peaks its values
        data, mask = mask, mask > 0
    labels = local_label(mask, connectivity, planar=prepare.planar)
    return labels, None, (data if peaks else None)


def label_block_kept(
    program: Program,
    box: Box,
    shape,
    leaf_data,
    connectivity: int,
    keep_values: bool,
    paths: tuple[str, str],
    prepare=None,
):
    """Label one block locally and keep its local labels (and values) in scratch.

    Labels are kept as uint16 when they fit, compressed: reading them back costs the
    final pass less than labelling again.
    """
    local = label_block(program, box, shape, leaf_data, connectivity, keep_values, prepare)
    labels, values, _ = local
    n = int(labels.max()) if labels.size else 0
    scratch.save(paths[0], labels.astype(np.uint16) if n < 2**16 else labels, compress=True)
    if values is not None:
        scratch.save(paths[1], values, compress=True)
    return local


def load_local(paths: tuple[str, str], keep_values: bool):
    """Local labels (and values) kept in scratch by the labelling pass."""
    return scratch.load(paths[0]), (scratch.load(paths[1]) if keep_values else None), None


def summarise(local, box: Box, shape) -> BlockLabels:
    """Summary of a locally labelled block, its faces compressed while they wait."""
    labels, values, peak_source = local
    offset = tuple(lo for lo, _ in box)
    return stitch.packed(summarise_block(labels, values, offset, shape, peak_source))


def counts_part(summary: BlockLabels):
    """The part of a summary the client needs: first voxels, sizes, border, peaks, boxes.

    The client holds every block's part until all blocks are labelled, so first voxels
    and sizes come as uint32 and boxes as uint16 offsets where they fit.
    """
    first = stitch.narrow(summary.first, np.uint32)
    sizes = stitch.narrow(summary.sizes, np.uint32)
    boxes = summary.bbox if summary.bbox is None else stitch.compact_boxes(summary.bbox)
    return summary.n, first, sizes, summary.border, summary.peaks, boxes


def pairs(plan, index, connectivity, planar, own, neighbour_keys, *neighbours):
    """Touching pairs across the lower faces of one block."""
    return stitch.block_pairs(
        plan, index, connectivity, own, dict(zip(neighbour_keys, neighbours, strict=True)), planar
    )


def filter_finish(filtered: np.ndarray, original: np.ndarray, finish, params) -> np.ndarray:
    """An object filter's output from its relabelled objects and its input block."""
    return finish(original, filtered, params)


def relabel(local, lut: np.ndarray) -> np.ndarray:
    """Apply a block's relabel table to its local labels."""
    return apply_table(local[0], lut)


def partial_result(func, box: Box, core: Box, *blocks):
    """A global op's partial result of one block."""
    return func(*blocks, box, core)


def partial_and_stand_in(func, box: Box, core: Box, path: str, *blocks):
    """A global op's partial result of one block, its stand-in kept at ``path``.

    ``func`` gives the pair (partial result, stand-in); see
    :meth:`pipeline.kernels.reduction.Stats.reduce`.
    """
    part, stand_in = func(*blocks, box, core)
    scratch.save(path, stand_in)
    return part


def merge(combine, *parts):
    """Merge partial results in order, skipping None (``a + b`` by default)."""
    out = None
    for p in parts:
        if p is None:
            continue
        if out is None:
            out = p
        else:
            out = combine(out, p) if combine is not None else out + p
    return out


def merge_all(combine, *parts):
    """Merge partial results with ``combine(list)``, skipping None."""
    parts = [p for p in parts if p is not None]
    return combine(parts) if parts else None


@dataclass(frozen=True)
class TaskName:
    """A task's key, carried as a plain value (a key would read as a dependency)."""

    key: tuple


def guard(name: TaskName, ndim: int, task: object) -> object:
    """``task`` with it and every task nested in its arguments run by :func:`guarded`
    (a nested task runs before the one holding it, so its error needs its own guard)."""
    if isinstance(task, tuple) and task and callable(task[0]):
        return (guarded, name, ndim, task[0], *(guard(name, ndim, a) for a in task[1:]))
    if isinstance(task, list):
        return [guard(name, ndim, a) for a in task]
    return task


def guarded(name: TaskName, ndim: int, func: Callable, *args):
    """Run one task; an unexpected error names the task and its block."""
    try:
        return func(*args)
    except BlockError:
        raise
    except Exception as exc:
        key = name.key
        name, rest = key[0], key[1:]
        if name == journal.INNER and rest:  # a checkpointed block's own task
            name, rest = rest[0], rest[1:]
        block = tuple(rest) if len(rest) == ndim and all(isinstance(i, int) for i in rest) else None
        ours = isinstance(exc, SegpipeError)
        if ours:
            said = str(exc)
        elif isinstance(exc, MemoryError):
            said = "ran out of memory" + (f" ({exc})" if str(exc) else "")
        else:
            said = f"{type(exc).__name__}: {exc}"
        # An error of segpipe's own with no cause says all there is (NaN in the image, a
        # missing chunk); one made from a library's error has a traceback worth seeing.
        raise BlockError(str(name), block, said, data=ours and exc.__cause__ is None) from exc
