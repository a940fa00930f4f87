"""dask-image's label with each upstream task run once (benchmark use).

``dask_image.ndmeasure.label`` labels each block of the image with ``scipy.ndimage.label``
(the labels of each block offset by the running count of the blocks before it), finds the
label pairs across each face between neighbouring blocks, joins the pairs into a sparse
graph, takes its connected components and relabels the blocks with them. It hands dask
array slices (a block of the image, a face of the block labels, the pair rows) to
``dask.delayed`` calls. On dask >= 2025.4, ``dask.delayed`` wraps each dask collection
argument in ``ProhibitReuse``, which gives all of its upstream keys a fresh suffix, so each
call recomputes everything upstream of its argument: the read and Gaussian of its block,
and (through the running label offsets) the local labelling of every earlier block. The
work grows with the square of the number of blocks.

:func:`apply` replaces ``dask_image.ndmeasure.label`` with :func:`label`: the same
algorithm, with dask-image's face slices and pair finding and its sparse graph, connected
components and relabelling done as dask-image does them, in tasks that refer to the
image's chunks by their keys. So each upstream task runs once, and the labels are
dask-image's.

The tasks are written into one graph layer, a plain ``(func, *args)`` tuple each, which
dask takes as it takes its own tasks, so building the graph stays linear in the number of
blocks. Built call by call instead, it would not: each dask array operation or
``dask.delayed`` call copies the layers of the graphs it depends on, and the running label
offsets, like the block labels each face is cut from, depend on the tasks of all earlier
blocks. Run as a script (``--grids 8,16,24``), the module prints the time :func:`label`
takes to build its graph at those numbers of blocks per side.
"""

from __future__ import annotations

import bisect
import operator

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph


def _labelled(block: np.ndarray, structure: np.ndarray) -> tuple[np.ndarray, object]:
    """``scipy.ndimage.label`` of a block: its labels and their count (dask-image's
    dtype)."""
    from dask_image.ndmeasure._utils import _label

    labels, n = _label.scipy.ndimage.label(block, structure=structure)
    return labels, _label.LABEL_DTYPE.type(n)


def _total(labelled: tuple, before=None):
    """The labels counted up to and including a block (the running total)."""
    return labelled[1] if before is None else before + labelled[1]


def _offset(labelled: tuple, before=None) -> np.ndarray:
    """A block's labels offset by the count of the blocks before it (``before``)."""
    from dask_image.ndmeasure._utils import _label

    labels = labelled[0]
    if before is None:
        return labels
    return labels + np.where(labels > 0, before, _label.LABEL_DTYPE.type(0))


def _nest(flat: list, shape: tuple[int, ...]) -> list:
    """``flat`` (C order) as nested lists of ``shape``, for ``np.block``."""
    if len(shape) == 1:
        return list(flat)
    step = len(flat) // shape[0]
    return [_nest(flat[k * step : (k + 1) * step], shape[1:]) for k in range(shape[0])]


def _cut(grid_shape: tuple[int, ...], local: list, *blocks: np.ndarray) -> np.ndarray:
    """A face from the blocks it crosses (C order over ``grid_shape``); ``local[b]`` holds
    the index of block ``b``'s part along each axis (a slice, or an index array)."""
    parts = []
    for block, index in zip(blocks, local, strict=True):
        for axis, ix in enumerate(index):
            block = block[(slice(None),) * axis + (ix,)]
        parts.append(block)
    if len(parts) == 1:
        return parts[0]
    return np.block(_nest(parts, grid_shape))


def _face_pairs(structure, grid_shape, local, *blocks) -> np.ndarray:
    """dask-image's label pairs (2, M) across one face, cut from the blocks it crosses."""
    from dask_image.ndmeasure._utils import _label

    return _label._across_block_label_grouping(_cut(grid_shape, local, *blocks), structure)


def _relabelling(total, *pairs: np.ndarray) -> np.ndarray:
    """The new label of every block label: the connected components of the sparse graph
    of the pairs, built as dask-image's ``_to_csr_matrix`` builds it."""
    from dask_image.ndmeasure._utils import _label

    i, j = np.concatenate([np.empty((2, 0), dtype=_label.LABEL_DTYPE), *pairs], axis=1)
    n = total + 1
    mat = _label.scipy.sparse.coo_matrix((np.ones_like(i), (i, j)), shape=(n, n)).tocsr()
    components = _label.scipy.sparse.csgraph.connected_components(mat, directed=False)[1]
    return components.astype(_label.LABEL_DTYPE)


def _along(s: slice, bounds: list[int]) -> list[tuple[int, slice | np.ndarray]]:
    """The blocks along one axis that ``s`` crosses (by their ``bounds``), in order, each
    with the index of its part (local to the block)."""
    start, stop, step = s.indices(bounds[-1])
    out = []
    if step == 1:  # a slab: a slice of each block it crosses
        b = bisect.bisect_right(bounds, start) - 1
        while start < stop:
            end = min(stop, bounds[b + 1])
            out.append((b, slice(start - bounds[b], end - bounds[b])))
            start, b = end, b + 1
        return out
    idx = np.arange(start, stop, step)  # a wrapped face: the first and last plane
    block = np.searchsorted(bounds, idx, side="right") - 1
    for b in dict.fromkeys(block.tolist()):
        out.append((b, idx[block == b] - bounds[b]))
    return out


def face_task(name: str, bounds: list[list[int]], face_slice: tuple[slice, ...], structure):
    """The task finding the label pairs across ``face_slice`` of the block labels (keys
    ``(name, *index)``; ``bounds``, their chunk boundaries per axis), from the blocks the
    face crosses."""
    axes = [_along(s, b) for s, b in zip(face_slice, bounds, strict=True)]
    grid_shape = tuple(len(a) for a in axes)
    pieces = list(np.ndindex(*grid_shape))
    keys = [(name, *(axes[d][p[d]][0] for d in range(len(p)))) for p in pieces]
    local = [[axes[d][p[d]][1] for d in range(len(p))] for p in pieces]
    return (_face_pairs, structure, grid_shape, local, *keys)


def label(image, structure=None, wrap_axes=None):
    """``dask_image.ndmeasure.label``, each upstream task run once: the same algorithm and
    result, its tasks built into one graph layer."""
    import scipy.ndimage
    from dask_image.ndmeasure._utils import _label

    image = da.asarray(image)
    if structure is None:  # dask-image's default, for the blocks and the faces alike
        structure = scipy.ndimage.generate_binary_structure(image.ndim, 1)
    structure = np.asarray(structure)
    token = tokenize(image.name, structure, wrap_axes)
    names = {
        part: f"{part}-{token}"
        for part in ("ndi-label", "label-total", "block-labels", "pairs", "relabelling")
    }
    out = f"dask-image-label-{token}"
    dsk: dict = {}
    total = None
    # Each block labelled on its own, its labels offset by the count of the blocks before.
    for index in np.ndindex(*image.numblocks):
        labelled = (names["ndi-label"], *index)
        dsk[labelled] = (_labelled, (image.name, *index), structure)
        before = () if total is None else (total,)
        dsk[(names["block-labels"], *index)] = (_offset, labelled, *before)
        dsk[(names["label-total"], *index)] = (_total, labelled, *before)
        total = (names["label-total"], *index)
    # The labels touching across block faces joined into global labels.
    bounds = [np.cumsum((0, *c)).tolist() for c in image.chunks]
    faces = _label._chunk_faces(image.chunks, image.shape, structure, wrap_axes=wrap_axes)
    pairs = []
    for k, face_slice in enumerate(faces):
        pairs.append((names["pairs"], k))
        dsk[pairs[-1]] = face_task(names["block-labels"], bounds, face_slice, structure)
    dsk[names["relabelling"]] = (_relabelling, total, *pairs)
    for index in np.ndindex(*image.numblocks):
        block = (names["block-labels"], *index)
        dsk[(out, *index)] = (operator.getitem, names["relabelling"], block)
    graph = HighLevelGraph.from_collections(out, dsk, dependencies=[image])
    relabeled = da.Array(graph, out, chunks=image.chunks, dtype=_label.LABEL_DTYPE)
    return relabeled, da.max(relabeled)


def apply() -> None:
    """Use :func:`label` as ``dask_image.ndmeasure.label`` in this process."""
    from dask_image import ndmeasure

    ndmeasure.label = label


def graph_build_seconds(grid: int, chunk: int = 4) -> tuple[float, float, int]:
    """Seconds to build :func:`label`'s graph over ``grid``³ blocks of ``chunk``³ voxels
    (of a thresholded array; nothing computed), seconds to materialise it, and its tasks."""
    import time

    image = da.zeros((grid * chunk,) * 3, dtype=np.uint8, chunks=chunk) > 0
    t0 = time.perf_counter()
    labels, n = label(image)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    tasks = len({**dict(labels.__dask_graph__()), **dict(n.__dask_graph__())})
    return built, time.perf_counter() - t0, tasks


def main(argv: list[str] | None = None) -> int:
    """Print the graph-building time of :func:`label` at growing block counts."""
    import argparse

    p = argparse.ArgumentParser(description="graph building of the fixed dask-image label")
    p.add_argument("--grids", default="8,16,24", help="blocks per side, comma-separated")
    p.add_argument("--chunk", type=int, default=4, help="voxels per block side")
    args = p.parse_args(argv)
    graph_build_seconds(2, args.chunk)  # imports and first calls out of the timings
    print("| blocks | build s | materialise s | tasks | build µs / block |")
    print("|---:|---:|---:|---:|---:|")
    for grid in (int(g) for g in args.grids.split(",")):
        built, made, tasks = graph_build_seconds(grid, args.chunk)
        per = built / grid**3 * 1e6
        print(
            f"| {grid}³ = {grid**3} | {built:.2f} | {made:.2f} | {tasks} | {per:.0f} |", flush=True
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
