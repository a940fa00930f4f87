"""The op reference ``docs/ops.md``, generated from :data:`~pipeline.ops.catalogue.CATALOGUE`.

``python -m pipeline.ops.docs`` prints it, ``--write docs/ops.md`` writes it, ``--check
docs/ops.md`` fails when the file is out of date (``tests/ops/test_docs.py`` checks it).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel

from pipeline.ops.catalogue import CATALOGUE
from pipeline.ops.contract import Op

__all__ = ["COMMAND", "KIND_WORDS", "generate", "main", "param_rows", "render_op", "type_text"]

COMMAND = "python -m pipeline.ops.docs --write docs/ops.md"

# Each kind of op in words, in the order the contents list them.
KIND_WORDS = {
    "pointwise": "pointwise",
    "neighbourhood": "neighbourhood",
    "global": "global statistic",
    "labelling": "labelling",
    "object_filter": "object filter",
    "resample": "resample",
    "tiled": "tiled",
}

_JSON_TYPES = {"number": "float", "integer": "int", "string": "str", "boolean": "bool"}
_JSON_TYPES |= {"null": "null", "object": "dict"}


def _json(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except TypeError:
        return str(value)


def _bounded(name: str, schema: Mapping) -> str:
    """``name`` with the schema's bounds: ``float ≥ 0``, ``int ≤ 9``, ``0 < float ≤ 20``."""
    low = [(schema[k], o) for k, o in (("minimum", "≤"), ("exclusiveMinimum", "<")) if k in schema]
    high = [(schema[k], o) for k, o in (("maximum", "≤"), ("exclusiveMaximum", "<")) if k in schema]
    if low and not high:  # one bound reads best after the type
        return f"{name} {'≥' if low[0][1] == '≤' else '>'} {_json(low[0][0])}"
    text = f"{_json(low[0][0])} {low[0][1]} {name}" if low else name
    return text + (f" {high[0][1]} {_json(high[0][0])}" if high else "")


def type_text(schema: Mapping) -> str:
    """Readable type of a property of a pydantic JSON schema.

    Parameters
    ----------
    schema : mapping
        One entry of ``model_json_schema()["properties"]`` (or a nested item schema).

    Returns
    -------
    str
        E.g. ``float ≥ 0``, ``1 ≤ int ≤ 3 | null``, ``list[float > 0]``, ``"otsu" | "li"``.
    """
    if "anyOf" in schema or "oneOf" in schema:
        parts = [type_text(s) for s in schema.get("anyOf", schema.get("oneOf"))]
        return " | ".join(dict.fromkeys(parts))
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "const" in schema:
        return _json(schema["const"])
    if "enum" in schema:
        return " | ".join(_json(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        text = f"list[{type_text(items)}]" if items else "list"
        sizes = (("≥", schema.get("minItems")), ("≤", schema.get("maxItems")))
        size = ", ".join(f"{o} {n}" for o, n in sizes if n is not None)
        return text + (f" ({size} items)" if size else "")
    if kind in ("number", "integer"):
        return _bounded(_JSON_TYPES[kind], schema)
    return _JSON_TYPES.get(kind, "any") if kind else "any"


def _attribute_docs(cls: type) -> dict[str, str]:
    """Descriptions from a numpydoc ``Attributes`` section of ``cls``'s docstring."""
    doc = inspect.getdoc(cls) or ""
    match = re.search(r"^Attributes\n-+\n(.*?)(?:\n\n\S[^\n]*\n-+\n|\Z)", doc, re.M | re.S)
    out: dict[str, str] = {}
    name = None
    for line in match.group(1).splitlines() if match else []:
        if line and not line[0].isspace():
            name = line.split(":", 1)[0].strip()
            out[name] = ""
        elif name and line.strip():
            out[name] = f"{out[name]} {line.strip()}".strip()
    return out


def _code(text: str) -> str:
    """``text`` as inline code in a table cell."""
    return "`" + text.replace("|", "\\|") + "`"


def _prose(text: str) -> str:
    """One line of markdown (rST double-backquoted code as code; ``|`` and ``<`` escaped)."""
    text = " ".join(text.replace("``", "`").split())
    return re.sub(r"<(?=[A-Za-z/!?])", r"\\<", text.replace("|", "\\|"))  # no HTML tags


def param_rows(params: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    """``(name, type, default, description)`` per field of a parameter model, in order.

    Parameters
    ----------
    params : type of pydantic.BaseModel
        The op's parameter model.

    Returns
    -------
    list of (str, str, str, str)
        Markdown cell texts; the default is ``required`` where there is none.
    """
    props = params.model_json_schema()["properties"] if params.model_fields else {}
    attrs = _attribute_docs(params)
    rows = []
    for field, info in params.model_fields.items():
        key = info.alias or field
        if info.is_required():
            default = "required"
        else:
            default = _code(_json(info.get_default(call_default_factory=True)))
        description = info.description or attrs.get(field, "")
        rows.append((_code(key), _code(type_text(props[key])), default, _prose(description)))
    return rows


def _first_paragraph(func: Callable | None) -> str:
    plain = inspect.isfunction(func) or inspect.ismethod(func)  # not a partial's class doc
    doc = inspect.getdoc(func) if plain and func.__doc__ else None
    return _prose(doc.split("\n\n", 1)[0]) if doc else ""


def _kind_words(kind: str) -> str:
    return KIND_WORDS.get(kind, kind.replace("_", " "))


def render_op(op: Op) -> str:
    """The markdown section of one op.

    Parameters
    ----------
    op : Op
        An op of the catalogue.

    Returns
    -------
    str
        A ``### name`` heading, the summary, a list of facts and the parameter table.
    """
    produces = op.produces
    if op.role is not None:
        why = _first_paragraph(op.role)
        produces += " by default; depends on its parameters and inputs" + (why and f": {why}")
    lines = [
        f"### {op.name}",
        "",
        _prose(op.summary),
        "",
        f"- **Kind:** {_kind_words(op.kind)}",
        f"- **Accepts:** {', '.join(op.accepts)}",
        f"- **Produces:** {produces}",
    ]
    further = [f"`{k}` ({', '.join(roles)})" for k, roles in op.inputs.items()]
    if further:
        lines.append(f"- **Further inputs:** {', '.join(further)}")
    lines.append(f"- **Exact (vs. the whole-array run):** {_prose(op.exact)}")
    halo_of = getattr(op, "halo_of", None)
    if halo_of is not None:
        lines.append(f"- **Halo:** {_first_paragraph(halo_of) or 'halo from its parameters'}")
    lines.append("")
    rows = param_rows(op.params)
    if not rows:
        lines.append("No parameters.")
    else:
        lines += ["| Parameter | Type | Default | Description |", "|---|---|---|---|"]
        lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines) + "\n"


def generate(catalogue: Mapping[str, Op] | None = None) -> str:
    """The text of ``docs/ops.md``.

    Parameters
    ----------
    catalogue : mapping of str to Op, optional
        Ops in stage order (default :data:`~pipeline.ops.catalogue.CATALOGUE`).

    Returns
    -------
    str
        Header, contents by kind, then one section per op in catalogue order.
    """
    ops = CATALOGUE if catalogue is None else catalogue
    order = list(KIND_WORDS) + sorted({op.kind for op in ops.values()} - set(KIND_WORDS))
    out = [
        "# Ops",
        "",
        "Generated from the op catalogue (`pipeline/ops/catalogue.py`) by",
        f"`{COMMAND}`: do not edit this file by hand.",
        "",
        "Ops are listed in the order of a pipeline's stages. *Exact* says how the chunked",
        "result relates to the scikit-image / SciPy function run on the whole array.",
        "",
        "## Contents",
        "",
        "| Kind | Ops |",
        "|---|---|",
    ]
    for kind in order:
        names = [name for name, op in ops.items() if op.kind == kind]
        if names:
            links = ", ".join(f"[{n}](#{n})" for n in names)
            out.append(f"| {_kind_words(kind)} | {links} |")
    out += ["", "## Ops", ""]
    out += [render_op(op) for op in ops.values()]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the op reference, write it (``--write``) or check a file (``--check``).

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0, or 1 when ``--check`` finds the file out of date.
    """
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.ops.docs", description="Generate docs/ops.md from the catalogue."
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="PATH", type=Path, help="write the text to PATH")
    group.add_argument("--check", metavar="PATH", type=Path, help="fail if PATH differs")
    args = parser.parse_args(argv)
    text = generate()
    if args.write is not None:
        args.write.write_text(text, encoding="utf-8", newline="\n")
        return 0
    if args.check is not None:
        current = args.check.read_text(encoding="utf-8") if args.check.exists() else None
        if current != text:
            print(f"{args.check} is out of date: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.buffer.write(text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
