"""k-means classes with centres fitted once on a sample of the whole volume; class selection."""

from __future__ import annotations

from functools import partial

import numpy as np
from pydantic import Field
from scipy.cluster.vq import kmeans2

from pipeline.kernels.reduction import Stats
from pipeline.ops.contract import GlobalOp, OpParams, PointwiseOp


class KMeansParams(OpParams):
    """Parameters of the ``kmeans`` op."""

    k: int = Field(..., ge=2, le=255, description="Number of classes.")
    sample: int = Field(
        100_000, ge=10, le=50_000_000, description="Voxels drawn uniformly from the volume."
    )
    seed: int = Field(0, ge=0, description="Seed of the sample and of the centre start.")
    iterations: int = Field(30, ge=1, le=1000, description="k-means iterations.")
    features: list[str] | None = Field(
        None, description="Further image steps whose values join the input's as features."
    )


def sample_coordinates(shape: tuple[int, ...], params: KMeansParams) -> np.ndarray:
    """Coordinates (m, ndim) of the seeded uniform sample, in raster order."""
    n = int(np.prod(shape))
    rng = np.random.default_rng(params.seed)
    flat = np.sort(rng.choice(n, size=min(params.sample, n), replace=False))
    return np.stack(np.unravel_index(flat, shape), axis=1)


def fit_centres(samples: np.ndarray, params: KMeansParams) -> np.ndarray:
    """k-means centres (k, f) of the sample, sorted by their mean feature value.

    ``scipy.cluster.vq.kmeans2`` with k-means++ starts, seeded; sorting makes class 0
    the darkest, whatever order the fit found the centres in.
    """
    centres, _ = kmeans2(samples, params.k, iter=params.iterations, minit="++", seed=params.seed)
    return centres[np.argsort(centres.mean(axis=1), kind="stable")]


def _gather(*args, coords: np.ndarray, colour: bool):
    *blocks, box, core = args
    lo = np.array([a for a, _ in core])
    hi = np.array([b for _, b in core])
    z0, z1 = np.searchsorted(coords[:, 0], [lo[0], hi[0]])
    rows = np.arange(z0, z1)
    c = coords[z0:z1]
    inside = np.all((c >= lo) & (c < hi), axis=1)
    rows, local = rows[inside], tuple((c[inside] - lo).T)
    if colour:
        values = blocks[0][local].astype(np.float64)
    else:
        values = np.stack([b[local].astype(np.float64) for b in blocks], axis=1)
    return rows, values


def _concat(a, b):
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])


def resolve_kmeans(params: KMeansParams, stats: Stats) -> np.ndarray:
    """Centres fitted on a uniform sample drawn across all blocks (one pass)."""
    coords = sample_coordinates(stats.shape, params)
    colour = len(stats.dtypes) == 1 and stats.colour
    func = partial(_gather, coords=coords, colour=colour)
    rows, values = stats.reduce(func, _concat, name="sample", n_inputs=len(stats.dtypes))
    samples = values[np.argsort(rows)]
    if len(np.unique(samples, axis=0)) < params.k:
        raise ValueError(f"the sample has fewer than k={params.k} distinct values")
    return fit_centres(samples, params)


def kmeans(*args) -> np.ndarray:
    """Class of each voxel: the index of the nearest centre (0 = darkest).

    Parameters
    ----------
    *args : ndarray..., centres
        The input block (grayscale, or colour with channels last), further feature
        blocks, then the (k, f) centres fitted on the whole volume's sample.

    Returns
    -------
    ndarray of uint8
        Equal to the same assignment on the whole image with the same centres: the
        centres come from one seeded sample of the whole volume, so class ids mean the
        same in every block.
    """
    *blocks, centres = args
    if len(blocks) == 1 and centres.shape[1] > 1:
        feats = blocks[0].astype(np.float64)  # colour: the channels are the features
    else:
        feats = np.stack([b.astype(np.float64) for b in blocks], axis=-1)
    best = np.zeros(feats.shape[:-1], dtype=np.uint8)
    best_d = np.full(feats.shape[:-1], np.inf)
    for i, c in enumerate(centres):
        d = np.sum((feats - c) ** 2, axis=-1)
        closer = d < best_d
        best[closer] = i
        best_d[closer] = d[closer]
    return best


class SelectParams(OpParams):
    """Parameters of the ``select`` op."""

    classes: list[int] = Field(..., min_length=1, description="Class ids that form the mask.")


def select(classes: np.ndarray, params: SelectParams) -> np.ndarray:
    """Mask of the voxels whose class is one of ``params.classes`` (``np.isin``)."""
    return np.isin(classes, params.classes)


KMEANS = GlobalOp(
    name="kmeans",
    params=KMeansParams,
    func=kmeans,
    resolve=resolve_kmeans,
    placeholder=lambda params: np.zeros((params.k, 1 + len(params.features or []))),
    accepts=("image", "color"),
    produces="labels",
    inputs={"features": ("image",)},
    summary="k-means classes 0..k-1 (darkest first); centres fitted on a seeded sample of "
    "the whole volume.",
    exact="exact given the sample: every block uses the same centres",
)
SELECT = PointwiseOp(
    name="select",
    params=SelectParams,
    func=select,
    accepts=("labels",),
    produces="mask",
    summary="Mask of chosen class ids (e.g. of kmeans or multi_otsu).",
)
