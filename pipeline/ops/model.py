"""A user's trained network, run per block with a halo of context.

The network gets each tile (a block grown by ``halo``) as a (1, 1, *spatial) float32
tensor and must return (1, C, *spatial) of the same spatial size (a fully convolutional
network). With ``blend: crop`` a block keeps its own tile's centre: when the network's
receptive field reaches no further than ``halo``, every kept voxel saw all the context
it would see in a whole-image run, so the result equals whole-image inference within
float tolerance (convolution algorithms may sum in a different order for another tile
size). ``linear`` and ``gaussian`` average the overlapping tiles with weights that fall
towards each tile's inner edges, which hides seams of networks whose receptive field
is larger than the halo.

ONNX files run with onnxruntime (``pip install segpipe[onnx]``), TorchScript files with
torch (``segpipe[torch]``). Sessions are cached per process, so each worker loads the
file once.
"""

from __future__ import annotations

import functools
import os
from typing import Literal

import numpy as np
from pydantic import Field

from pipeline.errors import DataError
from pipeline.ops.contract import TiledOp, TiledParams

TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")


class ModelParams(TiledParams):
    """Parameters of the ``model`` op."""

    path: str = Field(..., description="ONNX (.onnx) or TorchScript (.pt, .ts) file.")
    halo: int = Field(
        ..., ge=0, le=512, description="Context in voxels: at least the receptive field radius."
    )
    channel: int = Field(0, ge=0, description="Output channel kept.")
    device: Literal["cpu", "cuda"] = Field("cpu", description="Where the network runs.")


@functools.lru_cache(maxsize=4)
def _session(path: str, device: str):
    """A loaded network: a callable from a float32 array to an array."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file {path} not found")
    if path.endswith(TORCH_SUFFIXES):
        try:
            import torch
        except ImportError:
            raise ImportError(
                f"{path}: TorchScript models need torch (pip install segpipe[torch])"
            ) from None
        net = torch.jit.load(path, map_location=device).eval()

        def run_torch(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return net(torch.from_numpy(x).to(device)).cpu().numpy()

        return run_torch
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError(
            f"{path}: ONNX models need onnxruntime (pip install segpipe[onnx])"
        ) from None
    providers = ["CUDAExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # Dask runs blocks in parallel
    try:
        sess = ort.InferenceSession(path, options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise DataError(f"model {path}: cannot be loaded: {exc}") from None
    name = sess.get_inputs()[0].name

    def run_onnx(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: x})[0]

    return run_onnx


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
    net = _session(os.path.abspath(params.path), params.device)
    x = np.ascontiguousarray(image, dtype=np.float32)[np.newaxis, np.newaxis]
    y = np.asarray(net(x))
    if y.ndim != image.ndim + 2 or y.shape[2:] != image.shape:
        want = ", ".join(map(str, image.shape))
        raise DataError(
            f"model {params.path}: expected an output of shape (1, C, {want}), "
            f"got {tuple(y.shape)} (the network must keep the spatial size)"
        )
    if params.channel >= y.shape[1]:
        raise DataError(
            f"model {params.path}: channel {params.channel} asked, the output has {y.shape[1]}"
        )
    return y[0, params.channel].astype(np.float32, copy=False)


def model_halo(params: ModelParams, ndim: int) -> tuple[int, ...]:
    """The configured context on every axis (and a check, before any pass, of the file)."""
    if not os.path.isfile(params.path):
        raise ValueError(f"model file {params.path} not found")
    return (params.halo,) * ndim


def instances_or_image(params: ModelParams, roles: list[str]) -> str:
    """An instance label map gives labels; a prediction an image."""
    return "labels" if params.instances else "image"


MODEL = TiledOp(
    name="model",
    role=instances_or_image,
    params=ModelParams,
    func=run_model,
    halo_of=model_halo,
    accepts=("image",),
    produces="image",
    summary="A trained fully convolutional network (ONNX or TorchScript) on tiles of each "
    "block plus a halo; one output channel; tiles cropped or blended.",
    exact="crop: yes within float tolerance when the receptive field fits the halo; "
    "linear/gaussian blending: measured",
)
