"""The op registry: one :class:`OpInfo` per op, filled by the op modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

Kind = Literal["pointwise", "neighbourhood", "global", "labelling", "object_filter"]
Role = Literal["image", "mask", "labels", "color"]


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
    from pipeline.ops import filters, labelling, threshold  # noqa: F401
