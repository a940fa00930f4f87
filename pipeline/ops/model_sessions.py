"""Loaded networks: ONNX files with onnxruntime, TorchScript files with torch.

A network is loaded once per process (each Dask worker holds its own session) and
runs one thread per call, since Dask runs blocks in parallel. ``device: cuda`` asks
onnxruntime's CUDA provider or torch's CUDA device; where neither is there, the run
stops with one line saying so before any tile is predicted.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable

import numpy as np

from pipeline.errors import DataError

TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")

Network = Callable[[np.ndarray], np.ndarray]


def is_torchscript(path: str) -> bool:
    """Whether ``path`` names a TorchScript file (by its suffix)."""
    return path.endswith(TORCH_SUFFIXES)


def check_device(path: str, device: str) -> None:
    """Raise DataError when ``device`` is not there for the runtime of ``path``."""
    if device != "cuda":
        return
    if is_torchscript(path):
        torch = _torch(path)
        if not torch.cuda.is_available():
            raise DataError(
                f"model {path}: device cuda asked, but torch here sees no CUDA device "
                "(set device: cpu)"
            )
        return
    ort = _onnxruntime(path)
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise DataError(
            f"model {path}: device cuda asked, but onnxruntime here has no CUDA provider "
            f"(it has {', '.join(available)}; install onnxruntime-gpu or set device: cpu)"
        )


def _torch(path: str):
    try:
        import torch
    except ImportError:
        raise DataError(
            f"model {path}: TorchScript models need torch (pip install segpipe[torch])"
        ) from None
    return torch


def _onnxruntime(path: str):
    try:
        import onnxruntime as ort
    except ImportError:
        raise DataError(
            f"model {path}: ONNX models need onnxruntime (pip install segpipe[onnx])"
        ) from None
    return ort


@functools.lru_cache(maxsize=4)
def session(path: str, device: str) -> Network:
    """The network in ``path`` on ``device``: a callable from an array to an array."""
    if not os.path.isfile(path):
        raise DataError(f"model file {path} not found")
    check_device(path, device)
    if is_torchscript(path):
        torch = _torch(path)
        torch.set_num_threads(1)
        try:
            with warnings.catch_warnings():  # (torch >= 2.9 calls TorchScript deprecated)
                warnings.filterwarnings(
                    "ignore", message=".*torch.jit", category=DeprecationWarning
                )
                net = torch.jit.load(path, map_location=device).eval()
        except Exception as exc:  # torch raises its own exception types
            raise DataError(f"model {path}: cannot be loaded: {str(exc).splitlines()[0]}") from None

        def run_torch(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return net(torch.from_numpy(x).to(device)).cpu().numpy()

        return run_torch
    ort = _onnxruntime(path)
    providers = ["CUDAExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    try:
        sess = ort.InferenceSession(path, options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise DataError(f"model {path}: cannot be loaded: {str(exc).splitlines()[0]}") from None
    name = sess.get_inputs()[0].name

    def run_onnx(x: np.ndarray) -> np.ndarray:
        try:
            return sess.run(None, {name: x})[0]
        except Exception as exc:  # an input the network does not take
            raise DataError(f"model {path}: {str(exc).splitlines()[0]}") from None

    return run_onnx
