"""The op registry: one :class:`OpInfo` per op, filled by the op modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel

Kind = Literal[
    "pointwise", "neighbourhood", "global", "labelling", "object_filter", "resample", "tiled"
]
Role = Literal["image", "mask", "labels", "color"]
Box = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class OpInfo:
    """What the engine needs to know about an op.

    Attributes
    ----------
    name : str
        Name used in configs.
    kind : str
        ``pointwise`` and ``neighbourhood`` ops run per block (the latter on a block
        extended by ``halo``); ``global`` ops need a statistics pass over the whole
        input first; ``labelling`` ops are stitched across blocks; ``object_filter``
        ops decide per stitched object.
    params : type[BaseModel]
        Parameter model, validated in the config.
    func : callable or None
        Block function ``func(block, params) -> block`` for per-block kinds.
    accepts : tuple of str
        Roles of input accepted (``image``, ``mask``, ``labels``, ``color``).
    produces : str
        Role of the output.
    halo : callable or None
        ``halo(params, ndim) -> tuple[int, ...]`` for neighbourhood ops.
    exact : str
        How the chunked result relates to the whole-image result.
    summary : str
        One line for ``segpipe ops``.
    inputs : dict
        Further inputs named by parameters (parameter name -> accepted roles); their
        blocks follow the main input in the arguments of ``func``.
    resolve : callable or None
        For ``global`` ops: ``resolve(params, stats) -> arg`` computes, with reduction
        passes over the input (see :class:`Stats`), the argument ``func`` then gets
        instead of ``params``. None when the op needs no pass for these params.
    placeholder : callable or None
        ``placeholder(params) -> arg``: an argument of the resolved kind, for planning
        and dtype probes before the passes ran.
    role : callable or None
        ``role(params, input_roles) -> role`` when the output role depends on them.
    decide : callable or None
        For ``object_filter`` ops: ``decide(params, objects) -> keep`` per stitched
        object (see :class:`ObjectTable`), or the new id of each object (integers).
        Their ``func``, when set, turns the input block into the mask whose components
        are the objects (or a tuple: that mask and the values to take peaks of).
    negate : bool
        For mask outputs of ``object_filter`` ops: the output is everything but the
        kept objects (filling holes: keep the background that reaches the border).
    peaks : bool
        For ``object_filter`` ops: whether ``decide`` needs each object's largest input value.
    needs_box : bool
        ``func`` takes the box its block covers as a last argument (global coordinates).
    trims : bool
        For ``neighbourhood`` ops: ``func(block, params, trim)`` returns its result on the
        block less ``trim[a] = (before, after)`` voxels along each axis ``a``; where a
        trim is smaller than the halo the block ends at the volume's edge. Such an op
        skips the voxels the engine would cut away (``trim=None``: the whole block).
    finish : callable or None
        For ``object_filter`` ops with a labels output: ``finish(input, objects, params)``
        makes the output block from the input block and the relabelled objects.
    preflight : tuple or None
        ``(parameter, check)``: before the op runs, the mask step named by ``parameter``
        is labelled across blocks and ``check(params, objects)`` may return a warning.
    """

    name: str
    kind: Kind
    params: type[BaseModel]
    produces: Role
    accepts: tuple[Role, ...]
    summary: str
    exact: str = "exact"
    func: Callable | None = None
    halo: Callable[[BaseModel, int], tuple[int, ...]] | None = None
    inputs: dict[str, tuple[Role, ...]] = field(default_factory=dict)
    resolve: Callable | None = None
    placeholder: Callable | None = None
    role: Callable | None = None
    decide: Callable | None = None
    negate: bool = False
    peaks: bool = False
    needs_box: bool = False
    trims: bool = False
    preflight: tuple[str, Callable] | None = None
    finish: Callable | None = None

    def output_role(self, params: BaseModel, input_roles: list[str]) -> str:
        """Role of the output given the parameters and the roles of the inputs."""
        return self.role(params, input_roles) if self.role else self.produces


@dataclass(frozen=True)
class ObjectTable:
    """Per stitched object, what an ``object_filter`` op decides on.

    Attributes
    ----------
    sizes : (N,) ndarray of int64
        Voxels of objects 1..N.
    border : (N,) ndarray of bool
        Whether the object touches the border of the volume.
    peaks : (N,) ndarray or None
        The object's largest input value (when the op asks for it).
    bbox : (N, 2·ndim) ndarray or None
        Bounding box: start per axis, then stop per axis (half-open).
    """

    sizes: np.ndarray
    border: np.ndarray
    peaks: np.ndarray | None = None
    bbox: np.ndarray | None = None  # (N, 2·ndim): start per axis, then stop per axis


def core_slices(box: Box, core: Box) -> tuple[slice, ...]:
    """Where a block's own box ``core`` lies in an array covering ``box``."""
    return tuple(slice(c0 - b0, c1 - b0) for (b0, _), (c0, c1) in zip(box, core, strict=True))


OPS: dict[str, OpInfo] = {}


def register(info: OpInfo) -> OpInfo:
    """Add ``info`` to the registry (each name once)."""
    if info.name in OPS:
        raise RuntimeError(f"op {info.name!r} registered twice")
    OPS[info.name] = info
    return info


def get_op(name: str) -> OpInfo:
    """Return the registered op called ``name``."""
    _load_all()
    return OPS[name]


def all_ops() -> dict[str, OpInfo]:
    """Return every registered op, by name."""
    _load_all()
    return OPS


def _load_all() -> None:
    # Importing the op modules registers their ops.
    from pipeline.ops import (  # noqa: F401
        classify,
        cleanup,
        distance,
        edges,
        filters,
        labelling,
        masks,
        model,
        morphology,
        normalize,
        resample,
        threshold,
        watershed,
    )
