"""A small local fix for stock dask-image's label on dask >= 2025.4 (benchmark use only).

``dask_image.ndmeasure.label`` hands dask-array slices to ``dask.delayed`` calls. Since
dask 2025.4, ``dask.delayed`` wraps every dask collection argument in ``ProhibitReuse``,
which gives all of its upstream keys a fresh suffix, so each call recomputes everything
upstream of its argument: the read and Gaussian of its block, and (through the running
label offsets) the local labelling of every earlier block, about 2.5 × blocks² times.

The fix passes the same arguments as ``Delayed`` chunk references
(``to_delayed(optimize_graph=False)``), whose keys are shared, so each upstream task runs
once. The algorithm, its tasks and its result are unchanged.
"""

from __future__ import annotations

import dask
import numpy as np


def _one(arr):
    """A Delayed holding the whole of dask array ``arr`` (its chunks joined)."""
    parts = arr.to_delayed(optimize_graph=False)
    if parts.size == 1:
        return parts.ravel()[0]
    if arr.ndim == 1:
        return dask.delayed(np.concatenate)(list(parts.ravel()))
    return dask.delayed(np.block)(parts.tolist())


def apply() -> None:
    """Patch ``dask_image.ndmeasure._utils._label`` in this process."""
    import dask.array as da
    from dask_image.ndmeasure._utils import _label

    label_dtype = _label.LABEL_DTYPE
    ndi_label = _label.scipy.ndimage.label
    grouping = dask.delayed(_label._across_block_label_grouping)
    to_csr = _label._to_csr_matrix  # already a dask.delayed function

    def block_ndi_label_delayed(block, structure):
        labeled, n = dask.delayed(ndi_label, nout=2)(_one(block), structure=structure)
        n = dask.delayed(label_dtype.type)(n)
        labeled = da.from_delayed(labeled, shape=block.shape, dtype=label_dtype)
        return labeled, da.from_delayed(n, shape=(), dtype=label_dtype)

    def across_block_label_grouping_delayed(face, structure):
        grouped = grouping(_one(face), structure)
        return da.from_delayed(grouped, shape=(2, np.nan), dtype=label_dtype)

    def to_csr_matrix(i, j, n):
        return to_csr(_one(i), _one(j), _one(n))

    _label.block_ndi_label_delayed = block_ndi_label_delayed
    _label._across_block_label_grouping_delayed = across_block_label_grouping_delayed
    _label._to_csr_matrix = to_csr_matrix
