"""Read a YAML config, apply ``--set`` overrides, validate, and report every problem once.

Each problem is one line: ``file:line:col key.path: message``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass

from pydantic import ValidationError

from pipeline.config.model import PipelineSpec, step_model, step_params
from pipeline.config.yaml_reader import parse_yaml, read_yaml, short
from pipeline.errors import ConfigError
from pipeline.graph.dag import SOURCE, Dag, build_dag
from pipeline.ops.catalogue import CATALOGUE


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config: the spec, its DAG, and where it came from."""

    spec: PipelineSpec
    dag: Dag
    raw: dict
    source: str


def _where(marks: dict, filename: str, loc: tuple) -> str:
    key = ".".join(str(p) for p in loc)
    for n in range(len(loc), -1, -1):
        m = marks.get((*loc[:n], "__key__")) if n == len(loc) else marks.get(loc[:n])
        if m is None and n == len(loc):
            m = marks.get(loc)
        if m:
            return f"{m} {key}" if key else m
    return f"{filename} {key}"


def _set_override(raw: dict, item: str, marks: dict) -> None:
    key, eq, value = item.partition("=")
    parts = key.split(".")
    if not eq or not all(p.strip() for p in parts):
        raise ConfigError(f"--set {short(item)}: expected KEY.PATH=VALUE, e.g. steps.s.sigma=2")
    cur = raw
    for i, p in enumerate(parts[:-1]):
        if p not in cur or cur[p] is None:
            cur[p] = {}
        elif not isinstance(cur[p], dict):
            held = type(cur[p]).__name__
            raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])} holds a {held}, not keys")
        cur = cur[p]
    cur[parts[-1]] = parse_yaml(value, "--set", {}, tuple(parts))
    marks[tuple(parts)] = f"--set {key}"
    marks[(*parts, "__key__")] = f"--set {key}"


def _plain(value: object) -> object:
    """JSON form of the non-JSON values a Python caller may put in a config dict."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise ConfigError(
        f"<config>: {type(value).__name__} value {short(value)} is not a config value"
    )


STEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

CLUSTER_KINDS = ("threads", "local", "slurm", "pbs", "lsf")


def apply_cluster_flags(raw: dict, scheduler: str | None, cluster: str | None) -> None:
    """Replace ``raw``'s cluster section as ``--scheduler`` / ``--cluster`` ask.

    ``scheduler``: an address (``tcp://host:8786``) or a scheduler file. ``cluster``: one
    of :data:`CLUSTER_KINDS`; a batch system keeps the config's jobqueue settings.
    """
    if scheduler and cluster:
        raise ConfigError("--scheduler and --cluster: give one of them")
    old = raw.get("cluster") if isinstance(raw.get("cluster"), dict) else {}
    if scheduler:
        raw["cluster"] = {"address" if "://" in scheduler else "scheduler_file": scheduler}
    elif cluster == "threads":
        raw.pop("cluster", None)
    elif cluster == "local":
        raw["cluster"] = {"local": old.get("local") or {}}
    elif cluster:
        if cluster not in CLUSTER_KINDS:
            raise ConfigError(
                f"--cluster: expected one of {', '.join(CLUSTER_KINDS)}, got {short(cluster)}"
            )
        raw["cluster"] = {"jobqueue": {**(old.get("jobqueue") or {}), "system": cluster}}


def load_config(
    source: str | os.PathLike | dict,
    overrides: list[str] | tuple[str, ...] = (),
    scheduler: str | None = None,
    cluster: str | None = None,
) -> LoadedConfig:
    """Load and validate a config file (or dict); ``scheduler`` and ``cluster`` are the
    command line's ``--scheduler`` and ``--cluster`` (see :func:`apply_cluster_flags`).

    Raises
    ------
    ConfigError
        With one line per problem, all problems at once.
    """
    marks: dict = {}
    if isinstance(source, dict):
        filename = "<config>"
        raw = json.loads(json.dumps(source, default=_plain))
    else:
        filename = str(source)
        raw = read_yaml(filename, marks)
    if not isinstance(raw, dict):
        raise ConfigError(f"{filename}: expected a mapping with input, steps and output")
    for item in overrides:
        _set_override(raw, item, marks)
    apply_cluster_flags(raw, scheduler, cluster)

    problems: list[str] = []
    try:
        spec = PipelineSpec.model_validate(raw)
    except ValidationError as exc:
        spec = None
        problems.extend(_problems(exc, (), marks, filename, raw))
    steps_raw = raw.get("steps") if isinstance(raw.get("steps"), dict) else {}
    ops = CATALOGUE
    parsed = {}
    previous = SOURCE
    for name, body in steps_raw.items():
        loc = ("steps", name)
        if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
            at = marks.get((*loc, "__key__")) or filename
            problems.append(
                f"{at} steps.{short(name, 40)}: a step name is letters, digits, '_', '-' and '.', "
                "starting with a letter or digit, at most 64 characters (it names files)"
            )
            continue
        if name == SOURCE:
            at = marks.get((*loc, "__key__")) or filename
            problems.append(
                f"{at} steps.{name}: {SOURCE!r} names the input image (what a step with no "
                "'input' reads); give this step another name"
            )
            continue
        if not isinstance(body, dict):
            at = _where(marks, filename, loc)
            problems = [p for p in problems if not p.startswith(f"{at}: ")]  # said here
            problems.append(f"{at}: expected a mapping with 'op', got {short(body)}")
            continue
        op = body.get("op")
        if not isinstance(op, str) or op not in ops:
            close = difflib.get_close_matches(str(op), list(ops), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (ops: {', '.join(ops)})"
            what = "missing 'op'" if op is None else f"unknown op {short(op)}"
            problems.append(f"{_where(marks, filename, (*loc, 'op'))}: {what}{hint}")
            continue
        try:
            step = step_model(op).model_validate(body)
        except ValidationError as exc:
            problems.extend(_problems(exc, loc, marks, filename, raw))
            continue
        params = step_params(op, step)
        inputs = (step.input or previous, *(s for _, s in ops[op].input_steps(params)))
        parsed[name] = (op, params, inputs)
        previous = name
    if spec is not None and spec.output.labels not in steps_raw:
        problems.append(
            f"{_where(marks, filename, ('output', 'labels'))}: names no step "
            f"(steps: {', '.join(steps_raw) or 'none'})"
        )
    if problems:
        raise ConfigError(problems)
    where = {n: _where(marks, filename, ("steps", n)) for n in parsed}
    dag = build_dag(parsed, where=where)
    table = spec.output.table
    images = {("output", "image"): spec.output.image}
    if table is not None:
        images["output", "table", "intensity"] = table.intensity
    for key, name in images.items():
        if name is None:
            continue
        loc = _where(marks, filename, key)
        if name not in dag.nodes:
            raise ConfigError(f"{loc}: names no step (steps: {', '.join(dag.nodes)})")
        role = dag.nodes[name].role
        if role != "image":
            raise ConfigError(f"{loc}: step {name!r} gives {role}, expected an image")
    for node in dag.nodes.values():
        if node.kind == "resample" and node.inputs != (SOURCE,) and node.name != spec.output.labels:
            raise ConfigError(
                f"{where[node.name]}: a resize of step {node.inputs[0]!r} must be the output "
                f"step (output.labels: {node.name}); resize the input with input: {SOURCE}"
            )
    if dag.nodes[spec.output.labels].role not in ("labels", "mask"):
        raise ConfigError(
            f"{_where(marks, filename, ('output', 'labels'))}: step {spec.output.labels!r} "
            f"gives an {dag.nodes[spec.output.labels].role}, expected labels or a mask"
        )
    return LoadedConfig(spec, dag, raw, filename)


def _problems(
    exc: ValidationError, prefix: tuple, marks: dict, filename: str, raw: dict
) -> list[str]:
    """One line per config location: errors of union alternatives are merged."""
    grouped: dict[tuple, list[dict]] = {}
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        # pydantic appends the name of a union alternative; keep the config's own keys.
        while (
            err["type"] != "missing"
            and len(loc) > len(prefix)
            and loc not in marks
            and not _is_key(loc, marks)
            and not _in_config(raw, loc)
        ):
            loc = loc[:-1]
        items = [p for p in (*prefix, *err["loc"])[len(loc) :] if isinstance(p, int)]
        grouped.setdefault(loc, []).append({**err, "items": items})
    lines = []
    for loc, errs in grouped.items():
        # An error inside the value (an item of a list) comes from the alternative whose
        # type the value has; of the others, those of the wrong type say least.
        inside = [e for e in errs if e["items"]]
        fitting = inside or [e for e in errs if not e["type"].endswith("_type")]
        if len(fitting) == 1:
            errs = fitting
        if len(errs) == 1:
            msg = _message(errs[0])
            if errs[0]["items"]:
                msg = f"item {errs[0]['items'][-1] + 1}: {_lower(msg)}"
        else:
            said = dict.fromkeys(_lower(e["msg"]) for e in errs)  # each alternative once
            got = _value_at(raw, loc, errs[0].get("input"))
            msg = f"{' or '.join(said)}; got {short(got)}"
        lines.append(f"{_where(marks, filename, loc)}: {msg}")
    return lines


def _lower(msg: str) -> str:
    return msg[:1].lower() + msg[1:]


def _value_at(raw, loc: tuple, default):
    """The config's value at ``loc`` (``default`` where there is none)."""
    node = raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return default
    return node


_ABSENT = object()


def _in_config(raw, loc: tuple) -> bool:
    """Whether ``loc`` names a value of the config itself."""
    return _value_at(raw, loc, _ABSENT) is not _ABSENT


def _is_key(loc: tuple, marks: dict) -> bool:
    return (*loc, "__key__") in marks or loc[-1] == "__root__"


def _message(err: dict) -> str:
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    got = err.get("input")
    if err["type"] == "value_error":  # a validator's own words
        return msg.removeprefix("Value error, ")
    if not isinstance(got, dict):
        return f"{msg}, got {short(got)}"
    return msg
