"""A bioimage.io model package run on tiles of its own input size.

The image's axes map onto the network's spatial axes in order; an image with one axis
more than the network (a 3D stack for a 2D network) is run plane by plane, each plane a
sample of the batch. Tiles are the network's input size (its fixed size, or the smallest
``min + n * step`` covering ``tile``), laid over the image independently of the blocks
(see :mod:`pipeline.engine.tiles`), so the result does not depend on the block size.

Preprocessing whose statistics depend on the data (``zero_mean_unit_variance``,
``scale_range``) takes them over the whole image, or over each plane when the network's
samples are planes, in statistics passes before any tile runs: every tile is normalised
as a run on the whole image would normalise it. A step's statistics are those of the
tensor the earlier steps give, as bioimage.io defines them, for each channel unless the
step's axes take the channels jointly.

The network's input channels are the op's inputs in order (its input, then the steps
``channels`` names), each one channel or, for a colour image, its samples; the engine
gives them stacked on a last axis.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from pipeline.errors import DataError
from pipeline.kernels.histogram import order_statistics, percentile_from, percentile_ranks
from pipeline.kernels.plane_order import order_statistics_per_plane
from pipeline.kernels.reduction import Stats
from pipeline.ops import model_processing as processing
from pipeline.ops.model_package import ModelPackage, read_package
from pipeline.ops.model_sessions import session

DEFAULT_TILE = {1: 1024, 2: 512, 3: 96}  # voxels per axis wanted, by the network's dimension


@functools.lru_cache(maxsize=8)
def package_at(path: str) -> ModelPackage:
    """The package at ``path``, read once per process."""
    return read_package(path)


@dataclass(frozen=True)
class TileSpec:
    """The network's tiles over an image: size and halo per image axis, tiles per call,
    and how a tile passing the image's edge is filled (a ``numpy.pad`` mode, or zeros)."""

    size: tuple[int, ...]
    halo: tuple[int, ...]
    batch: int
    pad: str = "reflect"


@dataclass(frozen=True)
class PackageRun:
    """What each tile's prediction needs: the package, the output channel kept, the
    device, whether samples are planes, and each preprocessing step's statistics (one
    value, or one per plane)."""

    package: ModelPackage
    channel: int
    device: str
    planes: bool
    stats: tuple[tuple[np.ndarray, ...], ...]  # each value (planes or 1, channels or 1)
    weights: str = "auto"


def planes_of(package: ModelPackage, ndim: int) -> bool:
    """Whether an image of ``ndim`` axes runs plane by plane (one axis more than the
    network's); raises ValueError for an image the network cannot take."""
    space = len(package.space)
    if ndim == space:
        return False
    if ndim == space + 1:
        return True
    raise ValueError(
        f"{package.source}: the network has {space} spatial axes "
        f"({''.join(a.id for a in package.space)}), the image {ndim}"
    )


def tile_spec(
    package: ModelPackage,
    shape: tuple[int, ...],
    tile: tuple[int, ...] | None,
    halo: int | None,
    batch: int,
    pad: str = "reflect",
) -> TileSpec:
    """The tiles of ``package`` over an image of ``shape``.

    ``tile``: voxels wanted per network axis, rounded up to a size the network takes;
    by default the largest size it takes within the image's extent (up to
    :data:`DEFAULT_TILE`), so that tiles end at the image's edges unpadded where the
    network allows. ``halo``: voxels not kept at each inner tile edge (default the
    output halo the package gives).
    """
    planes = planes_of(package, len(shape))
    space_shape = shape[1:] if planes else shape
    nspace = len(package.space)
    if tile is not None and len(tile) != nspace:
        raise ValueError(f"tile: {len(tile)} sizes given, the network has {nspace} axes")
    if tile is not None:
        size = package.tile_shape(tile)
    else:
        limits = (min(n, DEFAULT_TILE[nspace]) for n in space_shape)
        size = tuple(a.size_within(n) for a, n in zip(package.space, limits, strict=True))
    halos = tuple(a.halo if halo is None else halo for a in package.space)
    for a, s, h in zip(package.space, size, halos, strict=True):
        if s <= 2 * h:
            raise ValueError(f"a tile of {s} voxels along {a.id} keeps nothing within halo {h}")
    if package.batch is not None:
        batch = min(batch, package.batch)
    if planes:
        return TileSpec((1, *size), (0, *halos), batch, pad)
    return TileSpec(size, halos, batch, pad)


def channel_index(package: ModelPackage, channel: int | str) -> int:
    """The index of output channel ``channel`` (its index or its name)."""
    names = package.output_channels
    if isinstance(channel, str):
        if channel not in names:
            raise ValueError(f"channel {channel!r}: the output's channels are {list(names)}")
        return names.index(channel)
    if channel >= len(names):
        raise ValueError(f"channel {channel}: the output has {len(names)} channel(s)")
    return channel


# ---- statistics -------------------------------------------------------------------
def resolve_package(
    package: ModelPackage, channel: int | str, device: str, stats: Stats, weights: str = "auto"
) -> PackageRun:
    """The statistics of every preprocessing step, over the whole image or each plane,
    from passes over the op's input (see the module notes). The network is loaded here
    once first, on the CPU, so that a missing runtime or an unreadable file stops the run
    before any pass; the device is checked where the tiles run (a cluster's workers may
    have a GPU its client lacks)."""
    fed = len(stats.dtypes)
    if fed > 1 and stats.colour:
        raise ValueError("channels: the step's input is a colour image; give its channels one way")
    if not stats.colour and fed != package.input_channels:
        raise ValueError(
            f"{package.source}: the network takes {package.input_channels} input channel(s), "
            f"the step gives {fed} (its input and the steps of channels)"
        )
    stats = _Stacked(stats, fed, package.input_channels) if fed > 1 or stats.colour else stats
    for step in package.postprocessing:
        if processing.statistics(step.id, step.kwargs, "bc"):
            raise ValueError(f"postprocessing {step.id!r} needs statistics of the output")
    planes = planes_of(package, len(stats.shape))
    space = "".join(a.id for a in package.space)
    session(os.path.abspath(package.weights_file(weights)[1]), "cpu")
    run = PackageRun(package, channel_index(package, channel), device, planes, (), weights)
    found: list[tuple[np.ndarray, ...]] = []
    for k, step in enumerate(package.preprocessing):
        needed = processing.statistics(step.id, step.kwargs, "bc" + space)
        if needed:
            earlier = PackageRun(package, run.channel, device, planes, tuple(found), weights)
            found.append(_step_statistics(step, needed, space, earlier, k, stats))
        else:
            found.append(())
    return PackageRun(package, run.channel, device, planes, tuple(found), weights)


class _Stacked:
    """The op's inputs as one image with its channels on a last axis, for the passes."""

    def __init__(self, stats: Stats, inputs: int, channels: int) -> None:
        self._stats, self._inputs, self.channels = stats, inputs, channels
        self.dtype = np.dtype(np.float64)
        self.dtypes = (self.dtype,)
        self.shape = stats.shape
        self.colour = True

    def reduce(self, func, combine=None, halo=None, name="statistics", n_inputs=1, stand_in=None):
        on = functools.partial(_on_stacked, func=func, inputs=self._inputs, channels=self.channels)
        return self._stats.reduce(on, combine, halo, name, n_inputs=self._inputs)


def _on_stacked(*args, func, inputs: int, channels: int):
    blocks, (box, core) = args[:inputs], args[inputs:]
    return func(stacked_channels(blocks, len(box), channels), box, core)


def stacked_channels(blocks, ndim: int, channels: int | None = None) -> np.ndarray:
    """Blocks of ``ndim`` spatial axes (or with a trailing colour axis) as one array
    with their channels on a last axis; checked against the ``channels`` a network takes."""
    parts = [np.asarray(b) for b in blocks]
    parts = [b[..., np.newaxis] if b.ndim == ndim else b for b in parts]
    out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
    if channels is not None and out.shape[-1] != channels:
        raise DataError(
            f"the network takes {channels} input channel(s), the step gives {out.shape[-1]}"
        )
    return out


def _step_statistics(step, needed, space: str, earlier: PackageRun, k: int, stats: Stats):
    joint = "c" in needed[0].over  # of all channels together, or of each
    over = needed[0].over.replace("c", "")
    whole = "b" in over
    if not set(space) <= set(over):
        raise ValueError(
            f"preprocessing {step.id!r}: statistics over axes {needed[0].over!r}; segpipe "
            f"takes them over all of the network's spatial axes ({space})"
        )
    per_plane = earlier.planes and not whole
    count = stats.shape[0] if per_plane else 1
    values = functools.partial(_prepared, run=earlier, upto=k)
    if step.id == "zero_mean_unit_variance":
        sums = stats.reduce(
            functools.partial(_plane_sums, values=values, count=count, joint=joint, centre=None),
            name=f"statistics ({step.id} mean)",
        )
        mean = sums[0] / sums[1]
        squares = stats.reduce(
            functools.partial(_plane_sums, values=values, count=count, joint=joint, centre=mean),
            name=f"statistics ({step.id} std)",
        )
        return (mean, np.sqrt(squares[0] / squares[1]))
    channels = getattr(stats, "channels", 1)
    if joint and channels > 1:
        raise ValueError(
            f"preprocessing {step.id!r}: percentiles of all channels together are not "
            "supported; take them per channel (axes without channel)"
        )
    if per_plane:
        return _plane_percentiles(stats, needed, values, count, channels)
    n = int(np.prod(stats.shape))
    ranks = sorted({r for s in needed for r in percentile_ranks(n, s.q)})
    out = []
    for c in range(channels):
        if k == 0 and channels == 1:
            found = order_statistics(stats, ranks)
        else:  # of the tensor the earlier steps give
            one = functools.partial(_one_channel, values=values, channel=c)
            found = order_statistics(stats, ranks, values=one, dtype=np.float64)
        out.append([float(percentile_from(found.__getitem__, n, s.q)) for s in needed])
    return tuple(np.asarray([[row[i] for row in out]]) for i in range(len(needed)))


def _plane_percentiles(stats: Stats, needed, values, planes: int, channels: int) -> tuple:
    """Each step statistic per plane and channel, shaped (planes, channels)."""
    n = int(np.prod(stats.shape[1:]))
    ranks = sorted({r for s in needed for r in percentile_ranks(n, s.q)})
    out = np.zeros((len(needed), planes, channels))
    for c in range(channels):
        one = functools.partial(_one_channel, values=values, channel=c)
        for z, found in enumerate(order_statistics_per_plane(stats, ranks, one, planes)):
            for i, s in enumerate(needed):
                out[i, z, c] = percentile_from(found.__getitem__, n, s.q)
    return tuple(out)


def _one_channel(block, box, core, *, values, channel: int) -> np.ndarray:
    return values(block, box, core)[:, channel]


def _plane_sums(block, box, core, *, values, count: int, joint: bool, centre):
    """Per plane (or for the whole block) and per channel (or for all): the sum of the
    values (or of their squared distances from ``centre``) and their number, as one
    array of shape (2, count, channels or 1) (partials add)."""
    x = values(block, box, core)  # (samples, channels, ...) in float64
    lo = core[0][0] if count > 1 else 0
    if centre is not None:
        c = np.asarray(centre)[lo : lo + x.shape[0]] if count > 1 else np.asarray(centre)
        x = (x - c.reshape(c.shape + (1,) * (x.ndim - 2))) ** 2
    flat = x.reshape(x.shape[0], 1 if joint else x.shape[1], -1)
    sums, number = flat.sum(axis=2), np.full(flat.shape[:2], flat.shape[2], float)
    out = np.zeros((2, count, flat.shape[1]))
    if count > 1:
        out[0, lo : lo + flat.shape[0]], out[1, lo : lo + flat.shape[0]] = sums, number
    else:
        out[0, 0], out[1, 0] = sums.sum(axis=0), number.sum(axis=0)
    return out


def _prepared(block: np.ndarray, box, core=None, *, run: PackageRun, upto: int) -> np.ndarray:
    """The block as the network's input tensor after preprocessing steps ``[:upto]``:
    shape (samples, channels, ...) in float64 (samples: its planes, or one; a block
    without a channel axis is one channel)."""
    planes = np.arange(box[0][0], box[0][1]) if run.planes else np.zeros(1, int)
    x = block if block.ndim > len(box) else block[..., np.newaxis]
    x = np.moveaxis(x, -1, 1) if run.planes else np.moveaxis(x, -1, 0)[np.newaxis]
    x = _steps(x, run, planes, upto)
    return np.asarray(x, dtype=np.float64)


def _steps(x: np.ndarray, run: PackageRun, planes: np.ndarray, upto: int | None = None):
    """Preprocessing steps ``[:upto]`` on ``x`` (axes ``b``, ``c``, then space), each with
    its statistics for the samples' ``planes``."""
    letters = "bc" + "".join(a.id for a in run.package.space)
    for step, stat in zip(run.package.preprocessing[:upto], run.stats, strict=False):
        shaped = [_for_samples(s, planes, x.ndim) for s in stat] if stat else None
        x = processing.apply(step.id, step.kwargs, x, letters, shaped)
    return x


def _for_samples(values: np.ndarray, planes: np.ndarray, ndim: int) -> np.ndarray:
    """A statistic (planes or 1, channels or 1) for the samples of ``planes``, shaped to
    broadcast over a tensor (b, c, *space)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[planes] if v.shape[0] > 1 else np.repeat(v, len(planes), axis=0)
    return v.reshape(v.shape + (1,) * (ndim - 2))


# ---- prediction -------------------------------------------------------------------
def predict_package(tiles: list, boxes: list, run: PackageRun) -> np.ndarray:
    """Predict tiles with the package's network.

    Parameters
    ----------
    tiles : list of ndarray
        Per input of the op, the tiles stacked on a first axis, each of the network's
        input size (with a leading axis of one voxel when the samples are planes; a
        colour input with its samples on a last axis).
    boxes : list
        Each tile's input box in the image (its plane, for per-plane statistics).
    run : PackageRun
        Package, kept channel, device and statistics (see :func:`resolve_package`).

    Returns
    -------
    ndarray of float32
        The kept output channel per tile, in the tiles' shape, after the package's
        preprocessing, network and postprocessing.
    """
    package = run.package
    planes = np.asarray([b[0][0] for b in boxes]) if run.planes else np.zeros(len(boxes), int)
    x = np.moveaxis(stacked_channels(tiles, len(boxes[0]) + 1, package.input_channels), -1, 1)
    x = _steps(x[:, :, 0] if run.planes else x, run, planes)
    letters = "bc" + "".join(a.id for a in package.space)
    _, weights = package.weights_file(run.weights)
    net = session(os.path.abspath(weights), run.device)
    step = package.batch or len(x)  # bioimage.io fixes a batch at 1, or leaves it free
    out = []
    for start in range(0, len(x), step):
        part = _to_axes(x[start : start + step].astype(np.float32), letters, package.input_axes)
        out.append(_from_axes(np.asarray(net(part)), package.output_axes, letters))
    y = np.concatenate(out)
    if y.shape[2:] != x.shape[2:]:
        raise DataError(
            f"{package.source}: the network gave tiles of {y.shape[2:]} for inputs of "
            f"{x.shape[2:]} (segpipe runs networks whose output keeps the input's size)"
        )
    post = [(s.id, s.kwargs) for s in package.postprocessing]
    for sid, kwargs in post:
        y = processing.apply(sid, kwargs, y, letters)
    kept = np.asarray(y[:, run.channel], dtype=np.float32)
    return kept[:, np.newaxis] if run.planes else kept


def _to_axes(x: np.ndarray, have: str, want: str) -> np.ndarray:
    """``x`` with axes ``have`` as axes ``want`` (axes not in ``want`` are of size 1)."""
    for letter in [a for a in have if a not in want]:
        x = x.squeeze(have.index(letter))
        have = have.replace(letter, "")
    return np.ascontiguousarray(np.transpose(x, [have.index(a) for a in want]))


def _from_axes(y: np.ndarray, have: str, want: str) -> np.ndarray:
    """The network's output (axes ``have``) with axes ``want`` (missing ones added)."""
    for letter in [a for a in want if a not in have]:
        y = y[np.newaxis]
        have = letter + have
    return np.transpose(y, [have.index(a) for a in want])
