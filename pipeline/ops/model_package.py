"""bioimage.io model packages: what segpipe needs to run one, read offline.

A package is a folder with a ``bioimageio.yaml`` (format 0.5, or 0.4, which bioimageio.spec
converts) naming the network's input and output tensors (their axes, sizes and halos),
the pre- and postprocessing, and weights in several formats. :func:`read_package` reads
the description with bioimageio.spec without touching the network (files the description
names but that are not in the folder, such as covers or weights given as URLs, are not
fetched) and checks the sha256 of every file it hands on against the description.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import DataError, first_line

PACKAGE_FILE = "bioimageio.yaml"
WEIGHT_FORMATS = ("onnx", "torchscript")  # the ones segpipe runs, in this order of choice
SPACE = "zyx"


@dataclass(frozen=True)
class SpaceAxis:
    """One spatial axis of the input: its valid sizes (``min + n * step``; ``step`` 0:
    ``min`` only) and the output's halo along it (voxels at each edge not to be trusted)."""

    id: str
    min: int
    step: int
    halo: int = 0

    def size_for(self, wanted: int) -> int:
        """The smallest valid size at least ``wanted`` (the fixed size when there is one)."""
        if self.step == 0 or wanted <= self.min:
            return self.min
        return self.min + -(-(wanted - self.min) // self.step) * self.step

    def size_within(self, limit: int) -> int:
        """The largest valid size at most ``limit`` (``min`` when none is)."""
        if self.step == 0 or limit <= self.min:
            return self.min
        return self.min + (limit - self.min) // self.step * self.step


@dataclass(frozen=True)
class Processing:
    """One pre- or postprocessing step: its bioimage.io id and its arguments."""

    id: str
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelPackage:
    """What segpipe runs of a bioimage.io model: one input and one output tensor."""

    source: str  # the package's yaml
    name: str
    input_axes: str  # bioimage.io axis ids, one letter each: b(atch), c(hannel), z, y, x
    input_channels: int
    batch: int | None  # 1: one sample per call (bioimage.io fixes no other size); None: any
    space: tuple[SpaceAxis, ...]  # the input's spatial axes, in its order
    output_axes: str
    output_channels: tuple[str, ...]  # the output channels' names
    preprocessing: tuple[Processing, ...]
    postprocessing: tuple[Processing, ...]
    weights: dict[str, str]  # format -> its file, checked against its sha256
    unavailable: dict[str, str]  # format -> why segpipe cannot use it
    test_input: str | None = None  # checked files of the package's test tensors
    test_output: str | None = None

    @property
    def halo(self) -> tuple[int, ...]:
        """The output's halo along each spatial axis."""
        return tuple(a.halo for a in self.space)

    def tile_shape(self, wanted: tuple[int, ...]) -> tuple[int, ...]:
        """The smallest input the network takes that covers ``wanted`` voxels per axis."""
        return tuple(a.size_for(n) for a, n in zip(self.space, wanted, strict=True))

    def weights_file(self, wanted: str = "auto") -> tuple[str, str]:
        """``(format, file)`` of the weights segpipe runs: ``wanted`` (``onnx`` or
        ``torchscript``), or with ``auto`` ONNX first, then TorchScript."""
        for fmt in WEIGHT_FORMATS if wanted == "auto" else (wanted,):
            if fmt in self.weights:
                return fmt, self.weights[fmt]
        why = "; ".join(f"{k}: {v}" for k, v in self.unavailable.items()) or "none given"
        if wanted != "auto":
            raise DataError(f"{self.source}: no {wanted} weights to run ({why})")
        raise DataError(f"{self.source}: no ONNX or TorchScript weights to run ({why})")


def is_package(path: str) -> bool:
    """Whether ``path`` is a bioimage.io package folder or its yaml."""
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, PACKAGE_FILE))
    return path.endswith((".yaml", ".yml")) and os.path.isfile(path)


def sha256_of(path: str) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for piece in iter(lambda: fh.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def read_package(path: str) -> ModelPackage:
    """The model a bioimage.io package describes (see the module notes).

    Raises
    ------
    DataError
        Not a readable model description, several input or output tensors, axes segpipe
        cannot map, or a file whose sha256 is not the one the description gives.
    """
    source = os.path.join(path, PACKAGE_FILE) if os.path.isdir(path) else path
    descr = _load(source)
    folder = os.path.dirname(os.path.abspath(source))
    if len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise DataError(
            f"{source}: segpipe runs models with one input and one output tensor, this one "
            f"has {len(descr.inputs)} and {len(descr.outputs)}"
        )
    inp, out = descr.inputs[0], descr.outputs[0]
    in_axes, channels, space, batch = _input_axes(source, inp)
    out_axes, names, halos = _output_axes(source, out)
    missing = [a.id for a in space if a.id not in halos]
    if missing:
        raise DataError(f"{source}: the output has no spatial axis {missing[0]!r} of the input")
    space = tuple(SpaceAxis(a.id, a.min, a.step, halos[a.id]) for a in space)
    weights, unavailable = {}, {}
    for fmt in ("onnx", "torchscript", "pytorch_state_dict", "tensorflow_saved_model_bundle",
                "keras_hdf5", "tensorflow_js"):  # fmt: skip
        entry = getattr(descr.weights, fmt, None)
        if entry is None:
            continue
        if fmt not in WEIGHT_FORMATS:
            unavailable[fmt] = "a format segpipe does not run"
            continue
        file = _local_file(source, folder, entry.source, entry.sha256, f"weights.{fmt}")
        if file is None:
            unavailable[fmt] = f"{entry.source} is not a file in the package"
        else:
            weights[fmt] = file
    tests = [_test_file(source, folder, t, f"{kind}s[0].test_tensor")
             for t, kind in ((inp, "input"), (out, "output"))]  # fmt: skip
    return ModelPackage(
        source=source,
        name=str(descr.name),
        input_axes=in_axes,
        input_channels=channels,
        batch=batch,
        space=space,
        output_axes=out_axes,
        output_channels=names,
        preprocessing=_steps(inp.preprocessing),
        postprocessing=_steps(out.postprocessing),
        weights=weights,
        unavailable=unavailable,
        test_input=tests[0],
        test_output=tests[1],
    )


def _load(source: str):
    """The model description in ``source``, converted to format 0.5 (read here, so no file
    is left open: bioimageio.spec's own loader leaves one to the garbage collector)."""
    try:
        import ruyaml
        from bioimageio.spec import ValidationContext, build_description
        from bioimageio.spec.model.v0_5 import ModelDescr
    except ImportError:
        raise DataError(
            f"{source}: bioimage.io packages need bioimageio.spec (pip install 'segpipe[onnx]')"
        ) from None
    if not os.path.isfile(source):
        raise DataError(f"{source}: no bioimage.io package there (no {PACKAGE_FILE})")
    try:
        with open(source, encoding="utf-8") as fh:
            content = ruyaml.YAML(typ="safe").load(fh)
    except (OSError, UnicodeDecodeError, ruyaml.YAMLError) as exc:
        raise DataError(f"{source}: not a readable YAML file ({first_line(exc)})") from None
    if not isinstance(content, dict):
        raise DataError(f"{source}: not a bioimage.io model description (not a mapping)")
    context = ValidationContext(
        root=Path(source).parent,
        file_name=os.path.basename(source),
        perform_io_checks=False,  # (what segpipe uses is checked here)
        disable_cache=True,
        log_warnings=False,
    )
    descr = build_description(content, context=context, format_version="latest")
    if not isinstance(descr, ModelDescr):
        reason = descr.get_reason() if hasattr(descr, "get_reason") else type(descr).__name__
        text = str(reason).replace("Value error, ", "")
        lines = [ln.strip(" -") for ln in text.splitlines() if ln.strip(" -")]
        said = "; ".join(lines[:2]) or "not a model"
        raise DataError(f"{source}: not a valid bioimage.io model description ({said})")
    return descr


def _letter(source: str, where: str, axis) -> str:
    """segpipe's letter of a tensor axis (b, c, z, y, x); one line for any other axis."""
    kind, name = axis.type, str(axis.id)
    if kind in ("batch", "channel"):
        return kind[0]
    if kind == "space" and name in SPACE:
        return name
    raise DataError(
        f"{source}: {where} axis {name!r} ({kind}): segpipe maps batch, channel and z, y, x "
        "space axes"
    )


def _input_axes(source: str, tensor) -> tuple[str, int, list[SpaceAxis], int | None]:
    from bioimageio.spec.model.v0_5 import ParameterizedSize

    letters, channels, space, batch = "", 1, [], 1
    for axis in tensor.axes:
        letter = _letter(source, "inputs[0]", axis)
        letters += letter
        if letter == "b":
            batch = getattr(axis, "size", None)
        elif letter == "c":
            channels = len(axis.channel_names)
        elif letter in SPACE:
            size = axis.size
            if isinstance(size, int):
                space.append(SpaceAxis(letter, size, 0))
            elif isinstance(size, ParameterizedSize):
                space.append(SpaceAxis(letter, int(size.min), int(size.step)))
            else:
                raise DataError(
                    f"{source}: inputs[0] axis {letter!r}: a size given by another tensor "
                    "(segpipe needs a fixed or min + n * step size)"
                )
    return letters, channels, space, (batch if "b" in letters else 1)


def _output_axes(source: str, tensor) -> tuple[str, tuple[str, ...], dict[str, int]]:
    letters, names, halos = "", ("0",), {}
    for axis in tensor.axes:
        letter = _letter(source, "outputs[0]", axis)
        letters += letter
        if letter == "c":
            names = tuple(str(n) for n in axis.channel_names)
        elif letter in SPACE:
            halos[letter] = int(getattr(axis, "halo", 0) or 0)
    return letters, names, halos


def _steps(steps) -> tuple[Processing, ...]:
    out = []
    for step in steps or ():
        kwargs = step.kwargs.model_dump(mode="json") if getattr(step, "kwargs", None) else {}
        out.append(Processing(str(step.id), kwargs))
    return tuple(out)


def _local_file(source: str, folder: str, given, sha256, what: str) -> str | None:
    """The package's file ``given`` (None: a URL or not in the folder), its sha256 checked."""
    text = str(given)
    if "://" in text:
        return None
    path = os.path.normpath(os.path.join(folder, text))
    if not os.path.isfile(path):
        return None
    if sha256 is not None:
        got = sha256_of(path)
        if got != str(sha256):
            raise DataError(
                f"{source}: {what} {text}: sha256 {got[:16]}... is not the {str(sha256)[:16]}... "
                "the description gives (a changed or damaged file)"
            )
    return path


def _test_file(source: str, folder: str, tensor, what: str) -> str | None:
    test = getattr(tensor, "test_tensor", None)
    if test is None:
        return None
    return _local_file(source, folder, test.source, test.sha256, what)
