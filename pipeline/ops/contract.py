"""The op contract: what each kind of op tells the engine, one class per kind.

An op is plain data: its name, its parameter model, the roles of what it reads and
gives, and the functions of its kind. The engine dispatches on :attr:`Op.kind`; each
kind's class lists exactly the functions that kind needs, so an op cannot declare a
function its kind never calls.

======================  ==========================================================
kind                    what the engine does with it
======================  ==========================================================
``pointwise``           ``func(block, params)`` on each block
``neighbourhood``       ``func`` on each block grown by ``halo(params, ndim)``
``global``              ``resolve(params, stats)`` over the whole input first (see
                        :class:`~pipeline.kernels.reduction.Stats`), then
                        ``func(block, resolved)`` on each block
``labelling``           connected components, stitched across blocks
``object_filter``       objects stitched across blocks, then ``decide`` per object
``resample``            a new grid (the resized input, or the resized result)
``tiled``               ``func(tile, params)`` once per tile of a block plus a halo
======================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.kernels.reduction import StandIn, Stats

__all__ = [
    "Box",
    "ConnectedParams",
    "GlobalOp",
    "LabellingOp",
    "NeighbourhoodOp",
    "NoBoolNumbers",
    "NonNegative",
    "ObjectFilterOp",
    "ObjectParams",
    "ObjectTable",
    "Op",
    "OpParams",
    "PointwiseOp",
    "Positive",
    "PositiveInt",
    "Preflight",
    "ResampleOp",
    "Role",
    "StandIn",
    "Stats",
    "TiledOp",
    "TiledParams",
    "core_slices",
    "one_voxel",
]

Role = Literal["image", "mask", "labels", "color"]
Box = tuple[tuple[int, int], ...]

# Bounded values shared by the parameter models: a config outside them is refused.
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]


def _takes_bool(annotation: object) -> bool:
    """Whether a field of this annotation takes ``true``/``false`` as a value."""
    if annotation is bool or annotation is Any or annotation is object:
        return True
    return any(_takes_bool(a) for a in get_args(annotation))


class TrueFalse:
    """A YAML ``true`` or ``false`` given where a setting takes no boolean: no validator
    accepts it, and an error shows it as it was written."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "true" if self.value else "false"


def _marked(value: object) -> object:
    """``value`` with each boolean in it, or in its list (one value per axis), marked;
    the settings of a nested model mark their own."""
    if isinstance(value, bool):
        return TrueFalse(value)
    if isinstance(value, list | tuple):
        return [_marked(v) for v in value]
    return value


class NoBoolNumbers(BaseModel):
    """A model whose numbers are numbers: ``true`` is refused where a number is expected
    (pydantic would read it as 1), by the field's own validation."""

    @model_validator(mode="before")
    @classmethod
    def _no_bool(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, value in data.items():
            field_ = cls.model_fields.get(key) if isinstance(key, str) else None
            if field_ is not None and not _takes_bool(field_.annotation):
                out[key] = _marked(value)
        return out


class OpParams(NoBoolNumbers):
    """Base of every op's parameters: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def with_input_spacing(self, spacing: tuple[float, ...]) -> Self:
        """These parameters with ``spacing: input`` replaced by the image's voxel size
        (parameters without such a setting are returned as they are)."""
        return self


class ObjectParams(OpParams):
    """Parameters of ops that find objects (labelling, object filters)."""

    def object_connectivity(self, ndim: int) -> int:
        """Maximum orthogonal hops between voxels of one object (1..ndim)."""
        return ndim

    def in_planes(self) -> bool:
        """Whether objects connect only within planes of constant first index."""
        return False

    def renumbered(self) -> bool:
        """Whether the kept objects are numbered 1..N again (labels outputs)."""
        return False


class ConnectedParams(ObjectParams):
    """Parameters of ops whose objects connect as the ``connectivity`` setting says."""

    connectivity: int | None = Field(
        None,
        ge=1,
        le=3,
        description="Maximum number of orthogonal hops between neighbours (1..ndim); "
        "default ndim, as skimage.",
    )

    def object_connectivity(self, ndim: int) -> int:
        return self.connectivity or ndim


class TiledParams(OpParams):
    """Parameters of tiled ops: how tiles are put together."""

    instances: bool = Field(
        False,
        description="The channel is an instance label map per tile: ids of neighbouring "
        "tiles that overlap with IoU >= min_iou become one object.",
    )
    min_iou: float = Field(0.5, gt=0, le=1, description="Overlap needed to join instances.")
    blend: Literal["crop", "linear", "gaussian"] = Field(
        "crop",
        description="crop: each block keeps its own tile's centre (exact when the receptive "
        "field fits the halo); linear / gaussian: overlapping tiles are averaged with weights "
        "falling towards tile edges.",
    )


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
    bbox: np.ndarray | None = None


@dataclass(frozen=True)
class Preflight:
    """A check run before an op, on the stitched objects of a mask step it reads.

    ``mask(params)`` names that step (None: no check); ``check(params, objects)``
    returns a warning or None.
    """

    mask: Callable[[OpParams], str | None]
    check: Callable[[OpParams, ObjectTable], str | None]


@dataclass(frozen=True, kw_only=True)
class Op:
    """What every op declares.

    Attributes
    ----------
    name : str
        Name used in configs.
    params : type[OpParams]
        Parameter model, validated in the config.
    accepts : tuple of str
        Roles of the main input accepted (``image``, ``mask``, ``labels``, ``color``).
    produces : str
        Role of the output (unless ``role`` says otherwise).
    summary : str
        One line for ``segpipe ops``.
    exact : str
        How the chunked result relates to the whole-image result.
    role : callable, optional
        ``role(params, input_roles) -> role`` when the output role depends on them.
    inputs : dict
        Further inputs named by parameters (parameter name -> accepted roles); their
        blocks follow the main input in the arguments of the op's block function.
    """

    kind: ClassVar[str]
    name: str
    params: type[OpParams]
    accepts: tuple[Role, ...]
    produces: Role
    summary: str
    exact: str = "exact"
    role: Callable[[OpParams, list[str]], Role] | None = None
    inputs: dict[str, tuple[Role, ...]] = field(default_factory=dict)

    def output_role(self, params: OpParams, input_roles: list[str]) -> str:
        """Role of the output given the parameters and the roles of the inputs."""
        return self.role(params, input_roles) if self.role else self.produces

    def halo(self, params: OpParams, ndim: int) -> tuple[int, ...]:
        """Voxels of input the op needs beyond each side of its output block."""
        return (0,) * ndim

    def input_steps(self, params: OpParams) -> list[tuple[str, str]]:
        """``(parameter, step)`` for each further input ``params`` names, in order."""
        out = []
        for key in self.inputs:
            value = getattr(params, key)
            for step in value if isinstance(value, list | tuple) else [value]:
                if step is not None:
                    out.append((key, step))
        return out


@dataclass(frozen=True, kw_only=True)
class PointwiseOp(Op):
    """``func(block, params) -> block``, voxel by voxel."""

    kind: ClassVar[str] = "pointwise"
    func: Callable


@dataclass(frozen=True, kw_only=True)
class NeighbourhoodOp(Op):
    """``func(block, params)`` on a block grown by ``halo_of(params, ndim)`` voxels.

    With ``trims``, ``func(block, params, trim)`` returns its result on the block less
    ``trim[a] = (before, after)`` voxels along each axis ``a``; where a trim is smaller
    than the halo the block ends at the volume's edge (``trim=None``: the whole block).
    ``preflight``: a check of the objects of a mask it reads, before it runs.
    """

    kind: ClassVar[str] = "neighbourhood"
    func: Callable
    halo_of: Callable[[OpParams, int], tuple[int, ...]]
    trims: bool = False
    preflight: Preflight | None = None

    def halo(self, params: OpParams, ndim: int) -> tuple[int, ...]:
        return self.halo_of(params, ndim)


@dataclass(frozen=True, kw_only=True)
class GlobalOp(Op):
    """An op whose block function needs the whole input first.

    ``resolve(params, stats) -> arg`` computes, with reduction passes over the input,
    the argument ``func(block, arg)`` then gets; ``placeholder(params) -> arg`` is an
    argument of the resolved kind for planning and dtype probes. With ``needs_box``,
    ``func`` also gets the box its block covers (global coordinates).
    """

    kind: ClassVar[str] = "global"
    func: Callable
    resolve: Callable[[OpParams, Stats], object]
    placeholder: Callable[[OpParams], object]
    needs_box: bool = False


@dataclass(frozen=True, kw_only=True)
class LabellingOp(Op):
    """Connected components of a mask or integer image, stitched across blocks."""

    kind: ClassVar[str] = "labelling"
    params: type[ObjectParams]


@dataclass(frozen=True, kw_only=True)
class ObjectFilterOp(Op):
    """Objects stitched across blocks, kept or dropped (or renumbered) per object.

    Attributes
    ----------
    decide : callable
        ``decide(params, objects) -> keep`` per stitched object (see
        :class:`ObjectTable`), or the new id of each object (integers).
    prepare : callable, optional
        Turns the input block into the mask whose components are the objects (or a
        tuple: that mask and the values to take peaks of); None: the objects are the
        input's (its labels, or its mask's components).
    halo_of : callable, optional
        Context ``prepare`` needs beyond the block.
    resolve : callable, optional
        A global statistic ``prepare`` needs, as :attr:`GlobalOp.resolve`; ``prepare``
        then gets its result instead of the parameters.
    negate : bool
        For mask outputs: the output is everything but the kept objects (filling holes:
        keep the background that reaches the border).
    peaks : bool
        Whether ``decide`` needs each object's largest input value.
    finish : callable, optional
        For labels outputs: ``finish(input, objects, params)`` makes the output block from
        the input block and the relabelled objects.
    """

    kind: ClassVar[str] = "object_filter"
    params: type[ObjectParams]
    decide: Callable[[OpParams, ObjectTable], np.ndarray]
    prepare: Callable | None = None
    halo_of: Callable[[OpParams, int], tuple[int, ...]] | None = None
    resolve: Callable[[OpParams, Stats], object] | None = None
    negate: bool = False
    peaks: bool = False
    finish: Callable | None = None

    def halo(self, params: OpParams, ndim: int) -> tuple[int, ...]:
        return self.halo_of(params, ndim) if self.halo_of else (0,) * ndim


@dataclass(frozen=True, kw_only=True)
class ResampleOp(Op):
    """A resize: of the input (the steps after it run on the new grid) or of the result."""

    kind: ClassVar[str] = "resample"


@dataclass(frozen=True, kw_only=True)
class TiledOp(Op):
    """``func(tile, params)`` once per tile (a block grown by ``halo_of``); blocks are
    blended from the tiles that cover them, or (``instances``) matched by overlap.

    Where ``tiles_of(params, shape)`` gives tiles of the op's own (``size``, ``halo``,
    ``batch``: per axis, and tiles per call) instead of None, the tiles follow a grid of
    that size over the volume whatever the blocks: ``resolve(params, stats)`` runs first
    (as :attr:`GlobalOp.resolve`), then ``predict(tiles, boxes, arg)`` gets ``batch``
    tiles stacked, their input boxes and the resolved argument, and gives one prediction
    per tile, of which each keeps its part less the halo.
    """

    kind: ClassVar[str] = "tiled"
    params: type[TiledParams]
    func: Callable
    halo_of: Callable[[OpParams, int], tuple[int, ...]]
    tiles_of: Callable[[OpParams, tuple[int, ...]], object | None] | None = None
    resolve: Callable[[OpParams, Stats], object] | None = None
    predict: Callable | None = None

    def halo(self, params: OpParams, ndim: int) -> tuple[int, ...]:
        return self.halo_of(params, ndim)


def one_voxel(params: OpParams, ndim: int) -> tuple[int, ...]:
    """A halo of one voxel on every axis (3-wide kernels, direct neighbours)."""
    return (1,) * ndim


def core_slices(box: Box, core: Box) -> tuple[slice, ...]:
    """Where a block's own box ``core`` lies in an array covering ``box``."""
    return tuple(slice(c0 - b0, c1 - b0) for (b0, _), (c0, c1) in zip(box, core, strict=True))
