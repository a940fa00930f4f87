"""A user's trained network: a bioimage.io package, or a bare ONNX or TorchScript file.

A bioimage.io package (its folder or its ``bioimageio.yaml``) says what the network
takes: its tiles run at the network's own input size over a grid independent of the
blocks, with the package's pre- and postprocessing and its statistics taken over the
whole image (see :mod:`pipeline.ops.packaged_model`). The result is the same for every
block size, byte for byte.

A bare file gets each tile (a block grown by ``halo``) as a (1, 1, *spatial) float32
tensor and must return (1, C, *spatial) of the same spatial size (a fully convolutional
network). With ``blend: crop`` a block keeps its own tile's centre: when the network's
receptive field reaches no further than ``halo``, every kept voxel saw all the context
it would see in a whole-image run, so the result equals whole-image inference within
float tolerance (convolution algorithms may sum in a different order for another tile
size). ``linear`` and ``gaussian`` average the overlapping tiles with weights that fall
towards each tile's inner edges, which hides seams of networks whose receptive field
is larger than the halo.

ONNX files run with onnxruntime (``pip install segpipe[onnx]``), TorchScript files with
torch (``segpipe[torch]``); see :mod:`pipeline.ops.model_sessions`.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
from pydantic import Field

from pipeline.errors import DataError
from pipeline.kernels.reduction import Stats
from pipeline.ops.contract import TiledOp, TiledParams
from pipeline.ops.model_package import is_package
from pipeline.ops.model_sessions import session
from pipeline.ops.packaged_model import (
    PackageRun,
    TileSpec,
    channel_index,
    package_at,
    planes_of,
    predict_package,
    resolve_package,
    tile_spec,
)


class ModelParams(TiledParams):
    """Parameters of the ``model`` op."""

    path: str = Field(
        ...,
        description="A bioimage.io package (its folder or bioimageio.yaml), or an ONNX "
        "(.onnx) or TorchScript (.pt, .ts) file.",
    )
    halo: int | None = Field(
        None,
        ge=0,
        le=512,
        description="Context in voxels: at least the receptive field radius (a package: "
        "default the output halo it gives; a bare file: needed).",
    )
    channel: int | str = Field(
        0, description="Output channel kept: its index, or (a package) its name."
    )
    channels: list[str] = Field(
        [],
        description="A package: further image steps, the network's input channels after "
        "the step's input (a colour input gives its samples as channels).",
    )
    device: Literal["cpu", "cuda"] = Field("cpu", description="Where the network runs.")
    weights: Literal["auto", "onnx", "torchscript"] = Field(
        "auto",
        description="A package: the weights run (auto: ONNX where the package has them, "
        "else TorchScript).",
    )
    tile: list[int] | None = Field(
        None,
        min_length=1,
        max_length=3,
        description="A package: input voxels per network axis, rounded up to a size the "
        "network takes (default the image's extent, up to 512 for 2D networks, 96 for 3D).",
    )
    batch: int = Field(
        4, ge=1, le=256, description="A package: tiles per network call, where it takes several."
    )
    pad: Literal["reflect", "symmetric", "edge", "zeros"] = Field(
        "reflect",
        description="A package: how a tile passing the image's edge (an image smaller than "
        "the network's input) is filled.",
    )


def run_model(image: np.ndarray, params: ModelParams) -> np.ndarray:
    """Run the network on a block (grown by the halo).

    Parameters
    ----------
    image : ndarray
        Grayscale block; converted to float32 (normalise it in an earlier step).
    params : ModelParams
        Model file, halo, output channel and device.

    Returns
    -------
    ndarray of float32
        Channel ``channel`` of the network's output on the block.
    """
    net = session(os.path.abspath(params.path), params.device)
    x = np.ascontiguousarray(image, dtype=np.float32)[np.newaxis, np.newaxis]
    y = np.asarray(net(x))
    if y.ndim != image.ndim + 2 or y.shape[2:] != image.shape:
        want = ", ".join(map(str, image.shape))
        raise DataError(
            f"model {params.path}: expected an output of shape (1, C, {want}), "
            f"got {tuple(y.shape)} (the network must keep the spatial size)"
        )
    if not isinstance(params.channel, int) or params.channel >= y.shape[1]:
        raise DataError(
            f"model {params.path}: channel {params.channel} asked, the output has {y.shape[1]}"
        )
    return y[0, params.channel].astype(np.float32, copy=False)


def _package(params: ModelParams):
    """The package ``params`` names, or None for a bare file."""
    return package_at(os.path.abspath(params.path)) if is_package(params.path) else None


def model_halo(params: ModelParams, ndim: int) -> tuple[int, ...]:
    """The context the op reads: the configured halo, or the package's output halo
    (and a check, before any pass, of the file)."""
    package = _package(params)
    if package is not None:
        halo = tuple(a.halo if params.halo is None else params.halo for a in package.space)
        return (0,) * (ndim - len(halo)) + halo if planes_of(package, ndim) else halo
    if not os.path.isfile(params.path):
        raise ValueError(f"model file {params.path} not found")
    if params.halo is None:
        raise ValueError("halo: needed for a bare model file (the receptive field radius)")
    package_only = ("tile", "batch", "pad", "weights", "channels")
    unused = [k for k in package_only if k in params.model_fields_set]
    if unused:
        raise ValueError(f"{unused[0]}: for bioimage.io packages only, not a bare model file")
    if not isinstance(params.channel, int):
        raise ValueError(f"channel {params.channel!r}: a bare model file's channels have no names")
    return (params.halo,) * ndim


def model_tiles(params: ModelParams, shape: tuple[int, ...]) -> TileSpec | None:
    """The tile grid of a package over an image of ``shape`` (None: block tiles)."""
    package = _package(params)
    if package is None:
        return None
    if params.instances:
        raise ValueError("instances: not for bioimage.io packages (their output is a map)")
    channel_index(package, params.channel)
    tile = tuple(params.tile) if params.tile is not None else None
    return tile_spec(package, shape, tile, params.halo, params.batch, params.pad)


def resolve_model(params: ModelParams, stats: Stats) -> PackageRun:
    """A package's preprocessing statistics over the whole image (or each plane)."""
    package = _package(params)
    return resolve_package(package, params.channel, params.device, stats, params.weights)


def instances_or_image(params: ModelParams, roles: list[str]) -> str:
    """An instance label map gives labels; a prediction an image."""
    return "labels" if params.instances else "image"


MODEL = TiledOp(
    name="model",
    role=instances_or_image,
    params=ModelParams,
    func=run_model,
    halo_of=model_halo,
    tiles_of=model_tiles,
    resolve=resolve_model,
    predict=predict_package,
    accepts=("image", "color"),
    inputs={"channels": ("image",)},
    produces="image",
    summary="A trained network: a bioimage.io package on tiles of its own size with its "
    "pre- and postprocessing, or an ONNX / TorchScript file on each block plus a halo; "
    "one output channel.",
    exact="package: the same bytes for every block size (tiles independent of blocks, "
    "statistics of the whole image); bare file, crop: within float tolerance when the "
    "receptive field fits the halo; blending: measured",
)
