"""Bad input, case by case: each gives its exit code and one ``error:`` line, and leaves
every file as it was (inputs, config, folders found there), with no summary.json made.

Each case builds its files in a fresh folder (the working folder of the run) and names
the command line; the table says what must come back.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
import zarr

from pipeline.cli import main
from pipeline.config.yaml_reader import MAX_VALUES

CONFIG = {
    "input": {"path": "data/img.tif"},
    "steps": {
        "smooth": {"op": "gaussian", "sigma": 1.0},
        "mask": {"op": "threshold", "method": "otsu"},
        "objects": {"op": "label"},
    },
    "output": {"path": "out", "labels": "objects"},
}


def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.normal(100, 10, (12, 24, 24))
    img[3:8, 5:12, 5:12] += 400
    return img.astype(np.uint16)


def config(root: Path, name: str = "run.yaml", **changes) -> str:
    """Write the config (with ``changes``: ``section=dict`` merged in) as ``root/name``."""
    cfg = {k: dict(v) for k, v in CONFIG.items()}
    for section, values in changes.items():
        cfg[section].update(values)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path.relative_to(root))


def text(root: Path, body: str | bytes, name: str = "run.yaml") -> str:
    path = root / name
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return name


def good_text() -> str:
    return yaml.safe_dump(CONFIG, sort_keys=False)


def earlier_output(root: Path) -> None:
    """A finished run of another config in ``out``."""
    assert main(["run", config(root, "first.yaml"), "--set", "steps.smooth.sigma=2"]) == 0


def manifest(root: Path, rows: list[tuple[str, str]], output: str = "out/{name}") -> str:
    lines = ["path,name", *(f"{p},{n}" for p, n in rows)]
    (root / "data" / "list.csv").write_text("\n".join(lines) + "\n")
    return config(root, input={"path": "data/list.csv"}, output={"path": output})


@dataclass(frozen=True)
class Case:
    make: Callable[[Path], list[str]]  # builds its files in the folder; the argv
    code: int
    message: str  # regex the one error line matches
    # A folder the run may write in: the output of a run that failed on its data (kept,
    # to resume once the data is mended) or that it resumes.
    may_change: str | None = None


def bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def _symlink_loop(root: Path) -> list[str]:
    os.symlink("loop_b", root / "loop_a")
    os.symlink("loop_a", root / "loop_b")
    return ["run", config(root), "--set", "output.path=loop_a/out"]


def _link_into_input(root: Path) -> list[str]:
    img = image()
    arr = zarr.create_array(str(root / "data" / "stack.zarr"), shape=img.shape,
                            chunks=(6, 12, 12), dtype=img.dtype)  # fmt: skip
    arr[...] = img
    os.symlink("data/stack.zarr", root / "linked")
    return ["run", config(root), "--set", "output.path=linked/out", "--overwrite"]


def _user_folder(root: Path) -> list[str]:
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("keep me\n")
    return ["run", config(root), "--set", "output.path=mine", "--overwrite"]


def _config_folder(root: Path) -> list[str]:
    return ["run", config(root, "data/run.yaml", input={"path": "data/img.tif"}),
            "--set", "output.path=data", "--overwrite"]  # fmt: skip


def _holds_only_config(root: Path) -> list[str]:
    return ["run", config(root, "cfgs/run.yaml"), "--set", "output.path=cfgs", "--overwrite"]


def _below_file(root: Path) -> list[str]:
    (root / "afile").write_text("x\n")
    return ["run", config(root), "--set", "output.path=afile/out"]


def _is_file(root: Path) -> list[str]:
    (root / "afile").write_text("x\n")
    return ["run", config(root), "--set", "output.path=afile", "--overwrite"]


def _deep(root: Path) -> list[str]:
    return ["validate", text(root, good_text() + "extra: " + "[" * 5000 + "]" * 5000 + "\n")]


def _run_on(root: Path, name: str, content: bytes) -> list[str]:
    """Run the config on the input ``name``, written with ``content``."""
    (root / name).write_bytes(content)
    return ["run", config(root), "--set", f"input.path={name}"]


def _float_input(root: Path, value: float, kind: str = "tiff") -> list[str]:
    img = image().astype(np.float32)
    img[4, 7, 9] = value
    if kind == "tiff":
        tifffile.imwrite(root / "data" / "float.tif", img)
        return ["run", config(root), "--set", "input.path=data/float.tif"]
    _zarr(root / "data" / "float.zarr", img)
    return ["run", config(root), "--set", "input.path=data/float.zarr"]


def _zarr(path: Path, img: np.ndarray, zarr_format: int = 3, chunks=(6, 12, 12)) -> None:
    arr = zarr.create_array(str(path), shape=img.shape, chunks=chunks, dtype=img.dtype,
                            zarr_format=zarr_format)  # fmt: skip
    arr[...] = img


def _hole(root: Path, zarr_format: int) -> list[str]:
    _zarr(root / "data" / "holes.zarr", image(), zarr_format)
    chunk = "c/1/0/1" if zarr_format == 3 else "1.0.1"
    os.remove(root / "data" / "holes.zarr" / chunk)
    return ["run", config(root), "--set", "input.path=data/holes.zarr"]


class _Payload:
    """A pickle that, loaded, would make the file ``pwned``."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def _planted_record(root: Path) -> list[str]:
    """An interrupted run (a damaged chunk), one of its records replaced by a pickle."""
    _zarr(root / "data" / "img.zarr", image(), chunks=(6, 6, 6))
    cfg = {**CONFIG, "input": {"path": "data/img.zarr", "chunks": [6, 6, 6]}}
    cfg["engine"] = {"scheduler": "sync"}  # blocks in order: those before it are recorded
    cfg["steps"] = {k: v for k, v in CONFIG["steps"].items() if k != "smooth"}  # no halo
    (root / "run.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    argv = ["run", "run.yaml"]
    chunk = root / "data" / "img.zarr" / "c" / "1" / "3" / "3"  # the last of 32 blocks
    good = chunk.read_bytes()
    chunk.write_bytes(b"not a chunk")
    assert main(argv) == 3
    chunk.write_bytes(good)
    record = sorted((root / "out" / ".journal").rglob("*.rec"))[0]
    record.write_bytes(pickle.dumps(_Payload()))
    return argv


def _foreign_entry(root: Path) -> list[str]:
    """A folder put by hand in an output, under a name a later config writes."""
    assert main(["run", config(root)]) == 0
    (root / "out" / "report").mkdir()
    (root / "out" / "report" / "notes.txt").write_text("mine\n")
    return ["run", config(root), "--set", "output.report=true", "--overwrite"]


def _foreign_batch_table(root: Path) -> list[str]:
    (root / "res").mkdir()
    (root / "res" / "batch.csv").write_text("mine\n")
    return ["run", manifest(root, [("img.tif", "a")], output="res/{name}")]


def _broken_journal(root: Path) -> list[str]:
    (root / "o" / ".journal" / "001-x").mkdir(parents=True)
    (root / "o" / ".journal" / "run.json").write_text('{"config_sha256": "abc"}')
    (root / "o" / ".journal" / "001-x" / "pass.json").write_text("{}")
    return ["status", "o"]


def _empty_axis(root: Path) -> list[str]:
    zarr.create_array(str(root / "data" / "empty.zarr"), shape=(0, 8, 8), dtype="u2")
    return ["run", config(root), "--set", "input.path=data/empty.zarr"]


def _fifo_config(root: Path) -> list[str]:
    os.mkfifo(root / "fifo.yaml")
    return ["validate", "fifo.yaml"]


def _fifo_input(root: Path, name: str) -> list[str]:
    os.mkfifo(root / "data" / name)
    return ["run", config(root), "--set", f"input.path=data/{name}"]


def _wide_uint16(root: Path) -> list[str]:
    wide = np.random.default_rng(0).integers(0, 65536, (6, 64, 64)).astype(np.uint16)
    tifffile.imwrite(root / "data" / "wide.tif", wide)
    return ["run", config(root), "--set", "input.path=data/wide.tif", "--set",
            "steps.mask={op: threshold, method: multi_otsu, classes: 3, input: input}"]  # fmt: skip


def _jobqueue(**settings) -> list[str]:
    given = ", ".join(f"{k}: {v}" for k, v in {"system": "slurm", **settings}.items())
    return ["--set", f"cluster.jobqueue={{{given}}}"]


CASES: dict[str, Case] = {
    # The config: exit 2, file:line:col key.path.
    "not-utf8": Case(
        lambda r: ["validate", text(r, good_text().replace("img", "im\xff").encode("latin-1"))],
        2,
        r"run\.yaml:2:\d+: not UTF-8 text \(byte 0xff\)",
    ),
    "nul-byte": Case(
        lambda r: ["validate", text(r, good_text().replace("img", "im\0g"))],
        2,
        r"run\.yaml:2:\d+: a NUL byte",
    ),
    "control-character": Case(
        lambda r: ["validate", text(r, good_text().replace("img", "im\x07g"))],
        2,
        r"run\.yaml:2:\d+: not valid YAML: character U\+0007 is not allowed",
    ),
    "null-step-body": Case(
        lambda r: ["validate", text(r, good_text().replace("op: label", ""))],
        2,
        r"run\.yaml:\d+:\d+ steps\.objects: expected a mapping with 'op', got null",
    ),
    "deep-nesting": Case(_deep, 2, r"run\.yaml:\d+:\d+: nested more than 64 levels deep"),
    "alias-bomb": Case(
        lambda r: ["validate", text(r, bomb())],
        2,
        rf"run\.yaml:\d+:\d+: more than {MAX_VALUES} values once its aliases are expanded",
    ),
    "python-tag": Case(
        lambda r: [
            "validate",
            text(
                r,
                good_text().replace(
                    "output:", "extra: !!python/object/apply:os.system ['touch pwned']\noutput:"
                ),
            ),
        ],
        2,
        r"run\.yaml:\d+:\d+ extra: the YAML tag '.*python/object/apply:os\.system' is not allowed",
    ),
    "unknown-tag": Case(
        lambda r: ["validate", text(r, good_text().replace("output:", "output: !custom"))],
        2,
        r"run\.yaml:\d+:\d+ output: the YAML tag '!custom' is not allowed",
    ),
    "tag-on-a-key": Case(
        lambda r: [
            "validate",
            text(r, good_text().replace("output:", "!!python/name:os.system output:")),
        ],
        2,
        r"run\.yaml:\d+:\d+ .*(tag|plain key)",
    ),
    "duplicate-key": Case(
        lambda r: ["validate", text(r, good_text() + "steps: {}\n")],
        2,
        r"run\.yaml:\d+:1 steps: duplicate key 'steps' \(first at line 3\)",
    ),
    "unhashable-key": Case(
        lambda r: ["validate", text(r, good_text() + "[a, b]: 1\n")],
        2,
        r"run\.yaml:\d+:1 the top level: expected a plain key, got a sequence",
    ),
    "huge-file": Case(
        lambda r: ["validate", text(r, good_text() + "# " + "x" * (2 << 20) + "\n")],
        2,
        r"run\.yaml: 2\.0 MiB, larger than a config can be",
    ),
    "huge-value-echo-capped": Case(
        lambda r: [
            "validate",
            text(r, good_text().replace("sigma: 1.0", f"sigma: {'9x' * 200000}")),
        ],
        2,
        r"steps\.smooth\.sigma: .*\.\.\. \(\d+ more characters\)$",
    ),
    "set-not-yaml": Case(
        lambda r: ["validate", config(r), "--set", "steps.smooth.sigma=[1,"],
        2,
        r"--set:1:\d+: not valid YAML",
    ),
    "set-tag": Case(
        lambda r: ["validate", config(r), "--set", "steps.smooth.sigma=!!python/name:os.system"],
        2,
        r"--set:1:1 steps\.smooth\.sigma: the YAML tag .* is not allowed",
    ),
    "set-no-equals": Case(
        lambda r: ["validate", config(r), "--set", "steps.smooth.sigma"],
        2,
        r"--set 'steps\.smooth\.sigma': expected KEY\.PATH=VALUE",
    ),
    "set-empty-key-part": Case(
        lambda r: ["validate", config(r), "--set", "steps..sigma=2"],
        2,
        r"expected KEY\.PATH=VALUE",
    ),
    "set-through-a-value": Case(
        lambda r: ["validate", config(r), "--set", "input.path.x=2"],
        2,
        r"--set input\.path\.x: input\.path holds a str, not keys",
    ),
    "config-is-a-folder": Case(
        lambda r: ["validate", "data"], 2, r"data: expected a config file, got a folder"
    ),
    "config-missing": Case(lambda r: ["run", "nope.yaml"], 2, r"nope\.yaml: config file not found"),
    "usage-error": Case(
        lambda r: ["run", config(r), "--no-such-flag"], 2, r"segpipe: unrecognized arguments"
    ),
    "step-name-leaving-the-folder": Case(
        lambda r: ["validate", text(r, good_text().replace("objects", '"../img"'))],
        2,
        r"run\.yaml:\d+:\d+ steps\.'\.\./img': a step name is letters, digits",
    ),
    "step-name-too-long": Case(
        lambda r: ["validate", text(r, good_text().replace("objects", "b" * 250))],
        2,
        r"steps\.'b+\.\.\. \(\d+ more characters\): a step name",
    ),
    "parameter-not-finite": Case(
        lambda r: ["validate", config(r), "--set", "steps.smooth.sigma=.inf"],
        2,
        r"steps\.smooth\.sigma: Input should be a finite number, got inf",
    ),
    "input-empty-list": Case(
        lambda r: ["run", config(r), "--set", "input.path=[]"], 2, r"input\.path: .*at least 1 item"
    ),
    "fifo-config": Case(_fifo_config, 2, r"fifo\.yaml: expected a config file, got a special"),
    "fifo-input": Case(
        lambda r: _fifo_input(r, "fifo.tif"), 3, r"data/fifo\.tif: expected an image file or folder"
    ),
    "fifo-manifest": Case(
        lambda r: _fifo_input(r, "list.csv"), 3, r"data/list\.csv: expected a CSV manifest file"
    ),
    "manifest-without-path-column": Case(
        lambda r: _run_on(r, "data/list.csv", b"file\nimg.tif\n"),
        3,
        r"data/list\.csv:1: expected a CSV header with a 'path' column, got columns \['file'\]",
    ),
    "manifest-without-rows": Case(
        lambda r: _run_on(r, "data/list.csv", b"\xef\xbb\xbfpath,name\n"),
        3,
        r"data/list\.csv: the manifest lists no inputs",
    ),
    "true-as-a-number": Case(
        lambda r: ["validate", config(r), "--set", "steps.smooth.sigma=[1, true, 1]"],
        2,
        r"steps\.smooth\.sigma: item 2: input should be a valid number, got true$",
    ),
    "step-named-input": Case(
        lambda r: ["validate", text(r, good_text().replace("  smooth:", "  input:"))],
        2,
        r"run\.yaml:\d+:\d+ steps\.input: 'input' names the input image",
    ),
    "intensity-column-without-image": Case(
        lambda r: ["validate", config(r), "--set", "output.table={properties: [intensity_mean]}"],
        2,
        r"output\.table: intensity_mean need an image to measure",
    ),
    "kernel-beyond-memory": Case(
        lambda r: ["run", config(r), "--set", "steps.smooth.sigma=1.0e12"],
        3,
        r"step 'smooth': its parameters need more memory than there is, .*Unable to allocate",
    ),
    "resize-beyond-any-run": Case(
        lambda r: ["run", config(r, steps={"smooth": {"op": "resize", "scale": 1.0e9}})],
        3,
        r"gives [\d.e+]+ blocks; a run takes at most 100,000,000",
    ),
    "multi-otsu-search-too-long": Case(
        lambda r: [
            "validate",
            config(r),
            "--set",
            "steps.mask={op: threshold, method: multi_otsu, classes: 32}",
        ],  # fmt: skip
        2,
        r"steps\.mask: multi_otsu with 32 classes over 256 histogram bins tries 7\.28e\+39",
    ),
    "multi-otsu-over-every-uint16-value": Case(
        _wide_uint16,
        3,
        r"step 'mask': multi_otsu with 3 classes over \d+ histogram bins .*an integer image",
        may_change="out",
    ),
    "jobqueue-more-processes-than-cores": Case(
        lambda r: ["jobscript", config(r), *_jobqueue(cores=2, processes=4, memory="4GiB")],
        2,
        r"cluster\.jobqueue: processes \(4\) more than cores \(2\)",
    ),
    "jobqueue-line-break": Case(
        lambda r: [
            "jobscript",
            config(r),
            *_jobqueue(cores=2, memory="4GiB"),
            "--set",
            'cluster.jobqueue.job_extra_directives=["--gres=gpu:1\\ntouch pwned"]',
        ],
        2,
        r"cluster\.jobqueue\.job_extra_directives: expected one line, got '--gres=gpu:1\\ntouch",
    ),  # fmt: skip
    "jobqueue-walltime": Case(
        lambda r: ["jobscript", config(r), *_jobqueue(cores=2, memory="4GiB", walltime="forever")],
        2,
        r"cluster\.jobqueue\.walltime: expected a time limit such as 02:00:00",
    ),
    "jobqueue-memory": Case(
        lambda r: ["jobscript", config(r), *_jobqueue(cores=2, memory="lots")],
        2,
        r"cluster\.jobqueue\.memory: expected a size such as 32GiB, got 'lots'",
    ),
    "jobqueue-without-cores": Case(
        lambda r: ["jobscript", config(r), "--cluster", "slurm"],
        2,
        r"cluster\.jobqueue: You must specify how much cores and memory",
    ),
    "scheduler-address-without-port": Case(
        lambda r: ["run", config(r), "--scheduler", "tcp://"], 3, r"cluster: cannot connect to"
    ),
    "output-foreign-entry-overwrite": Case(
        _foreign_entry, 3, r"output\.path out: holds report, which a run of this config writes"
    ),
    "batch-table-not-ours": Case(
        _foreign_batch_table, 3, r"res/batch\.csv exists and segpipe did not write it"
    ),
    "output-nul": Case(
        lambda r: ["run", config(r), "--set", 'output.path="o\\0ut"'],
        3,
        r"output\.path 'o\\x00ut': a path cannot hold a NUL character",
    ),
    "output-name-too-long": Case(
        lambda r: ["run", config(r), "--set", f"output.path={'a' * 300}"],
        3,
        r"output\.path a+\.\.\. \(\d+ more characters\)|File name too long",
    ),
    "scratch-is-a-file": Case(
        lambda r: [*_is_file(r)[:2], "--set", "engine.scratch=afile"],
        3,
        r"engine\.scratch afile/segpipe-[0-9a-f]+: .*afile is a file",
    ),
    "scratch-inside-an-input": Case(
        lambda r: [
            *_link_into_input(r)[:2],
            "--set",
            "input.path=data/stack.zarr",
            "--set",
            "engine.scratch=data/stack.zarr",
        ],  # fmt: skip
        3,
        r"engine\.scratch data/stack\.zarr/segpipe-[0-9a-f]+: is inside the input",
    ),
    "zarr-empty-axis": Case(_empty_axis, 3, r"empty\.zarr: the image has an axis of length 0"),
    "status-of-a-broken-journal": Case(_broken_journal, 3, r"o/\.journal: not a segpipe journal"),
    # The output location: exit 3, nothing written, nothing removed.
    "output-empty": Case(
        lambda r: ["run", config(r), "--set", 'output.path=""', "--overwrite"],
        3,
        r"output\.path: expected a folder for the outputs, got an empty path",
    ),
    "output-dot": Case(
        lambda r: ["run", config(r), "--set", "output.path=.", "--overwrite"],
        3,
        r"output\.path \.: is the working folder",
    ),
    "output-root": Case(
        lambda r: ["run", config(r), "--set", "output.path=/", "--overwrite"], 3, r"is /;"
    ),
    "output-is-the-input": Case(
        lambda r: ["run", config(r), "--set", "output.path=data/img.tif", "--overwrite"],
        3,
        r"output\.path data/img\.tif: is the input .*data/img\.tif$",
    ),
    "output-holds-the-input": Case(
        lambda r: ["run", config(r), "--set", "output.path=data", "--overwrite"],
        3,
        r"output\.path data: holds the input .*data/img\.tif$",
    ),
    "output-above-the-input": Case(
        lambda r: ["run", config(r), "--set", f"output.path={r.parent}", "--overwrite"],
        3,
        r"holds the input .*data/img\.tif$",
    ),
    "output-inside-the-input": Case(
        lambda r: ["run", config(r), "--set", "output.path=data/img.tif/out"],
        3,
        r"output\.path data/img\.tif/out: is inside the input",
    ),
    "output-through-a-symlink-into-an-input": Case(
        lambda r: [*_link_into_input(r), "--set", "input.path=data/stack.zarr"],
        3,
        r"output\.path linked/out: is inside the input .*data/stack\.zarr$",
    ),
    "output-is-the-config-folder": Case(
        _config_folder, 3, r"output\.path data: holds the input .*data/img\.tif$"
    ),
    "output-holds-the-config": Case(
        _holds_only_config, 3, r"output\.path cfgs: holds the config file .*cfgs/run\.yaml$"
    ),
    "output-user-folder-overwrite": Case(
        _user_folder, 3, r"output\.path mine: holds files segpipe did not write \(no \.segpipe"
    ),
    "output-other-run-no-overwrite": Case(
        lambda r: [earlier_output(r), "run", config(r)][1:],
        3,
        r"output\.path out holds another run's outputs \(use --overwrite",
    ),
    "output-is-a-file": Case(_is_file, 3, r"output\.path afile: is a file, expected a folder"),
    "output-below-a-file": Case(_below_file, 3, r"output\.path afile/out: .*afile is a file"),
    "output-symlink-loop": Case(
        _symlink_loop, 3, r"output\.path loop_a/out: cannot be resolved: .*[Ss]ymlink loop"
    ),
    "output-impossible": Case(
        lambda r: ["run", config(r), "--set", "output.path=/proc/segpipe/out"],
        3,
        r"output\.path /proc/segpipe/out: cannot create the folder",
    ),
    # The image: exit 3, naming the file.
    "nan-in-the-image": Case(
        lambda r: _float_input(r, np.nan),
        3,
        r"data/float\.tif: the image holds NaN at voxel \(z,y,x\) = 4,7,9 .*replace NaN",
        may_change="out",
    ),
    "infinity-in-the-image": Case(
        lambda r: _float_input(r, -np.inf, "zarr"),
        3,
        r"data/float\.zarr: the image holds infinity at voxel \(z,y,x\) = 4,7,9",
        may_change="out",
    ),
    "missing-zarr-chunk": Case(
        lambda r: _hole(r, 3),
        3,
        r"data/holes\.zarr: chunk c/1/0/1 is missing.*input\.allow_missing_chunks: true",
        may_change="out",
    ),
    "missing-zarr-v2-chunk": Case(
        lambda r: _hole(r, 2), 3, r"data/holes\.zarr: chunk 1\.0\.1 is missing", may_change="out"
    ),
    "input-not-a-tiff": Case(
        lambda r: _run_on(r, "data/text.tif", b"hello\n"), 3, r"data/text\.tif: not a readable TIFF"
    ),
    "truncated-tiff": Case(
        lambda r: _run_on(r, "data/cut.tif", (r / "data" / "img.tif").read_bytes()[:3000]),
        3,
        r"data/cut\.tif: cannot read block",
        may_change="out",
    ),
    "manifest-not-utf8": Case(
        lambda r: _run_on(r, "data/list.csv", b"path\n\xff.tif\n"), 3, r"data/list\.csv: not UTF-8"
    ),
    "status-of-a-file": Case(
        lambda r: ["status", "data/img.tif"], 3, r"data/img\.tif: a file, expected an output"
    ),
    "status-of-a-broken-summary": Case(
        lambda r: ["status", text(r, "[1", "data/summary.json") and "data"],
        3,
        r"data/summary\.json: not a segpipe summary",
    ),
    # Resume data is data: a pickle in the journal is refused, never loaded.
    "planted-pickle-record": Case(
        _planted_record,
        3,
        r"out/\.journal/.*\.rec: not a segpipe journal record \(no segpipe record header\)",
        may_change="out",
    ),
    # Batch names: {name} never leaves output.path.
    "manifest-name-dotdot": Case(
        lambda r: ["run", manifest(r, [("img.tif", "..")])],
        3,
        r"list\.csv:2: name '\.\.': expected a plain name",
    ),
    "manifest-name-separator": Case(
        lambda r: ["run", manifest(r, [("img.tif", "../../escaped")])],
        3,
        r"list\.csv:2: name '\.\./\.\./escaped': expected a plain name",
    ),
    "manifest-name-absolute": Case(
        lambda r: ["run", manifest(r, [("img.tif", "/tmp/escaped")])],
        3,
        r"list\.csv:2: name '/tmp/escaped': expected a plain name",
    ),
    "batch-item-folder-holds-inputs": Case(
        lambda r: ["run", manifest(r, [("img.tif", "data")], output="{name}")],
        3,
        r"output\.path \(input 'data'\) data: holds the (input|manifest)",
    ),
}


def snapshot(root: Path) -> dict[str, str]:
    """Every entry below ``root``: a file's sha256, a link's target, a folder."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            elif not p.is_file():  # a FIFO: reading it would wait for a writer
                out[rel] = "special"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "work"
    (root / "data").mkdir(parents=True)
    tifffile.imwrite(root / "data" / "img.tif", image())
    monkeypatch.chdir(root)
    return root


# dask-jobqueue's cluster, refused half made, warns as it is collected.
UNRAISABLE = {"jobqueue-without-cores"}
quiet = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[quiet] if n in UNRAISABLE else []) for n in CASES]
)
def test_bad_input(name, workspace, capsys):
    case = CASES[name]
    argv = case.make(workspace)
    capsys.readouterr()
    before = snapshot(workspace.parent)
    t0 = time.perf_counter()
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    seconds = time.perf_counter() - t0
    out, err = capsys.readouterr()
    assert rc == case.code, (out, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert re.search(case.message, lines[0]), lines[0]
    assert len(lines[0]) < 1200
    after = snapshot(workspace.parent)
    if case.may_change:  # ... but the output folder it may write in
        inside = f"work/{case.may_change}"
        before, after = ({k: v for k, v in d.items() if not k.startswith(inside)}
                         for d in (before, after))  # fmt: skip
        assert not (workspace / case.may_change / "summary.json").exists()
    assert after == before  # nothing made, changed or removed
    assert not (workspace / "pwned").exists()
    print(f"{name}: refused in {seconds:.3f} s")
