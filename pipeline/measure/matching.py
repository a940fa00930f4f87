"""How well a segmentation's objects match ground-truth objects: F1 at an IoU threshold.

An object of one label image matches one of the other when their intersection over
union is at least ``iou``; for ``iou >= 0.5`` an object can match at most one other, so
matches are counted without any assignment step (the usual object-level score of
nucleus segmentation benchmarks such as the Data Science Bowl 2018 and StarDist's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Matching:
    """Objects matched between a ground truth and a prediction."""

    true_objects: int
    predicted_objects: int
    matched: int

    @property
    def precision(self) -> float:
        return self.matched / self.predicted_objects if self.predicted_objects else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.true_objects if self.true_objects else 0.0

    @property
    def f1(self) -> float:
        total = self.true_objects + self.predicted_objects
        return 2 * self.matched / total if total else 1.0


def match_objects(truth: np.ndarray, predicted: np.ndarray, iou: float = 0.5) -> Matching:
    """Objects of ``predicted`` matching objects of ``truth`` with IoU >= ``iou``.

    Parameters
    ----------
    truth, predicted : ndarray of int
        Label images of one shape; 0 is background, every other value one object.
    iou : float
        The least intersection over union of a match, at least 0.5.

    Returns
    -------
    Matching
        Object counts and matches; ``f1`` is ``2 * matched / (true + predicted)``.
    """
    if iou < 0.5:
        raise ValueError(f"iou {iou}: matches are one-to-one only from 0.5")
    if truth.shape != predicted.shape:
        raise ValueError(f"shapes differ: {truth.shape} and {predicted.shape}")
    t = np.unique(truth, return_inverse=True)
    p = np.unique(predicted, return_inverse=True)
    t_ids, t_inv = t[0], t[1].ravel()
    p_ids, p_inv = p[0], p[1].ravel()
    t_size = np.bincount(t_inv, minlength=len(t_ids))
    p_size = np.bincount(p_inv, minlength=len(p_ids))
    codes, overlap = np.unique(t_inv.astype(np.int64) * len(p_ids) + p_inv, return_counts=True)
    ti, pi = np.divmod(codes, len(p_ids))
    both = (t_ids[ti] != 0) & (p_ids[pi] != 0)
    union = t_size[ti] + p_size[pi] - overlap
    matched = int(np.count_nonzero(both & (overlap >= iou * union)))
    t_fg, p_fg = t_ids != 0, p_ids != 0
    return Matching(int(t_fg.sum()), int(p_fg.sum()), matched)
