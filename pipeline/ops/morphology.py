"""Morphology with disk/ball or box footprints, exact across blocks through the halo."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field
from skimage import morphology

from pipeline.ops.contract import NeighbourhoodOp, OpParams


class MorphologyParams(OpParams):
    """Parameters of ``erosion``, ``dilation``, ``opening`` and ``closing``."""

    radius: int = Field(1, ge=1, le=64, description="Footprint radius in voxels.")
    footprint: Literal["ball", "box"] = Field(
        "ball", description="ball: skimage disk (2D) / ball (3D); box: a (2r+1)-wide cube."
    )
    mode: Literal["reflect", "ignore", "min", "max"] = Field(
        "reflect", description="How values beyond the volume edge count (skimage mode)."
    )


def footprint(params: MorphologyParams, ndim: int) -> np.ndarray:
    """The footprint array: ``skimage.morphology.disk``/``ball``, or a box."""
    r = params.radius
    if params.footprint == "box":
        return np.ones((2 * r + 1,) * ndim, dtype=bool)
    if ndim == 2:
        return morphology.disk(r, dtype=bool)
    if ndim == 3:
        return morphology.ball(r, dtype=bool)
    raise ValueError(f"footprint ball needs a 2D or 3D image, got {ndim} axes")


def _apply(name: str, image: np.ndarray, params: MorphologyParams) -> np.ndarray:
    func = getattr(morphology, name)
    return func(image, footprint(params, image.ndim), mode=params.mode)


def erosion(image: np.ndarray, params: MorphologyParams) -> np.ndarray:
    """``skimage.morphology.erosion(image, footprint, mode=mode)``; masks stay masks.

    Parameters
    ----------
    image : ndarray of bool or numbers
        Mask or grayscale image.
    params : MorphologyParams
        ``radius``, ``footprint`` and edge ``mode``.

    Returns
    -------
    ndarray
        Same dtype; equal to the whole-image result with a halo of ``radius``.
    """
    return _apply("erosion", image, params)


def dilation(image: np.ndarray, params: MorphologyParams) -> np.ndarray:
    """``skimage.morphology.dilation(image, footprint, mode=mode)`` (see :func:`erosion`)."""
    return _apply("dilation", image, params)


def opening(image: np.ndarray, params: MorphologyParams) -> np.ndarray:
    """``skimage.morphology.opening(image, footprint, mode=mode)``: erosion, then dilation.

    Equal to the whole-image result with a halo of twice the radius.
    """
    return _apply("opening", image, params)


def closing(image: np.ndarray, params: MorphologyParams) -> np.ndarray:
    """``skimage.morphology.closing(image, footprint, mode=mode)``: dilation, then erosion.

    Equal to the whole-image result with a halo of twice the radius.
    """
    return _apply("closing", image, params)


def _halo(times: int):
    def halo(params: MorphologyParams, ndim: int) -> tuple[int, ...]:
        footprint(params, ndim)  # a ball needs 2 or 3 axes
        return (times * params.radius,) * ndim

    return halo


def _op(func, times: int) -> NeighbourhoodOp:
    name = func.__name__
    return NeighbourhoodOp(
        name=name,
        params=MorphologyParams,
        func=func,
        halo_of=_halo(times),
        accepts=("mask", "image"),
        produces="mask",
        role=lambda params, roles: roles[0],
        summary=f"Morphological {name} (skimage.morphology.{name}).",
        exact=f"exact: halo {'2 × ' if times == 2 else ''}radius",
    )


EROSION = _op(erosion, 1)
DILATION = _op(dilation, 1)
OPENING = _op(opening, 2)
CLOSING = _op(closing, 2)
