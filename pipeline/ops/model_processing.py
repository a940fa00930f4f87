"""The pre- and postprocessing steps of bioimage.io models, as pure numpy functions.

A step that depends on the data (``zero_mean_unit_variance``, ``scale_range``) gets its
statistics as arguments: segpipe takes them over the
whole volume (or each plane) in a statistics pass, never over one tile, so that a tiled
run normalises every tile as a whole-image run would. :func:`statistics` says which
statistics a step needs, :func:`apply` runs a step given them.

Tensors carry bioimage.io axis letters (``b`` batch, ``c`` channel, ``z``, ``y``, ``x``).
A step's ``axes`` are those its statistics are taken over; they are taken separately for
each index of the other axes (each channel, say). Parameters given per index of one axis
(``gain`` along ``c``, ``axis: channel`` in the description) are broadcast along it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# bioimage.io axis ids as segpipe's tensor letters
AXIS_LETTERS = {"batch": "b", "channel": "c", "z": "z", "y": "y", "x": "x"}


@dataclass(frozen=True)
class Statistic:
    """One statistic a step needs: ``mean``, ``std`` or ``percentile`` (with ``q`` in
    percent), over the tensor axes ``over`` (the others each get their own value)."""

    kind: str
    over: str
    q: float | None = None


def _letters(axes) -> str:
    """Axis letters of a step's ``axes`` (None: every axis but the batch)."""
    if axes is None:
        return ""
    return "".join(AXIS_LETTERS.get(str(a), str(a)) for a in axes)


def statistics(step_id: str, kwargs: dict, tensor_axes: str) -> list[Statistic]:
    """The statistics :func:`apply` needs for step ``step_id`` on a tensor with axes
    ``tensor_axes`` (none for steps that need no data)."""
    over = _letters(kwargs.get("axes")) or tensor_axes.replace("b", "")
    if step_id == "zero_mean_unit_variance":
        return [Statistic("mean", over), Statistic("std", over)]
    if step_id == "scale_range":
        lo, hi = (
            float(kwargs.get("min_percentile", 0.0)),
            float(kwargs.get("max_percentile", 100.0)),
        )
        return [Statistic("percentile", over, lo), Statistic("percentile", over, hi)]
    return []


def _along(values, axis: str | None, tensor_axes: str, ndim: int) -> np.ndarray:
    """``values`` (a number, or one per index of ``axis``) shaped to broadcast over a
    tensor with axes ``tensor_axes``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0 or axis is None:
        return arr
    letter = AXIS_LETTERS.get(str(axis), str(axis))
    shape = [1] * ndim
    shape[tensor_axes.index(letter)] = arr.size
    return arr.reshape(shape)


def apply(
    step_id: str, kwargs: dict, tensor: np.ndarray, tensor_axes: str, stats: list | None = None
) -> np.ndarray:
    """Run one pre- or postprocessing step on ``tensor``.

    Parameters
    ----------
    step_id : str
        The bioimage.io id of the step (``zero_mean_unit_variance``, ``scale_range``,
        ``scale_linear``, ``clip``, ``sigmoid``, ``binarize``, ``ensure_dtype``,
        ``fixed_zero_mean_unit_variance``).
    kwargs : dict
        The step's arguments, as the description gives them.
    tensor : numpy.ndarray
        The data, with axes ``tensor_axes``.
    tensor_axes : str
        Axis letters of ``tensor``.
    stats : list of numpy.ndarray, optional
        The values of :func:`statistics` for this step, in its order, each shaped to
        broadcast over ``tensor`` (kept dimensions of size 1 along the axes taken over).

    Returns
    -------
    numpy.ndarray
        The processed tensor (float64 unless ``ensure_dtype`` or ``binarize`` says
        otherwise).

    Raises
    ------
    ValueError
        A step segpipe does not know (``scale_mean_variance``, statistics of another
        tensor), or statistics missing for one that needs them.
    """
    x = np.asarray(tensor)
    eps = float(kwargs.get("eps", 1e-6))
    axis = kwargs.get("axis")
    nd = x.ndim
    if step_id == "ensure_dtype":
        return x.astype(np.dtype(kwargs["dtype"]))
    if step_id == "sigmoid":
        from scipy.special import expit

        return expit(x.astype(np.float64))
    if step_id == "clip":
        low, high = kwargs.get("min"), kwargs.get("max")
        return np.clip(x.astype(np.float64), low, high)
    if step_id == "binarize":
        return x > _along(kwargs["threshold"], axis, tensor_axes, nd)
    if step_id == "scale_linear":
        gain = _along(kwargs.get("gain", 1.0), axis, tensor_axes, nd)
        offset = _along(kwargs.get("offset", 0.0), axis, tensor_axes, nd)
        return x.astype(np.float64) * gain + offset
    if step_id == "fixed_zero_mean_unit_variance":
        mean = _along(kwargs["mean"], axis, tensor_axes, nd)
        std = _along(kwargs["std"], axis, tensor_axes, nd)
        return (x.astype(np.float64) - mean) / (std + eps)
    needed = statistics(step_id, kwargs, tensor_axes)
    if not needed or kwargs.get("reference_tensor") is not None:
        raise ValueError(f"processing step {step_id!r} is not supported")
    if stats is None or len(stats) != len(needed):
        raise ValueError(f"{step_id} needs its statistics ({', '.join(s.kind for s in needed)})")
    a, b = (np.asarray(s, dtype=np.float64) for s in stats)
    if step_id == "zero_mean_unit_variance":
        return (x.astype(np.float64) - a) / (b + eps)
    return (x.astype(np.float64) - a) / (b - a + eps)  # scale_range


def whole_statistics(tensor: np.ndarray, tensor_axes: str, needed: list[Statistic]) -> list:
    """:func:`statistics` taken on ``tensor`` itself (the whole image, as a reference; a
    run takes them in a statistics pass), each with the axes taken over kept as size 1."""
    out = []
    for s in needed:
        over = tuple(tensor_axes.index(a) for a in s.over if a in tensor_axes)
        data = np.asarray(tensor, dtype=np.float64)
        if s.kind == "mean":
            out.append(data.mean(axis=over, keepdims=True))
        elif s.kind == "std":
            out.append(data.std(axis=over, keepdims=True))
        else:
            out.append(np.percentile(data, s.q, axis=over, keepdims=True))
    return out
