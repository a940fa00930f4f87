"""docs/ops.md is the text generated from the op catalogue (``pipeline.ops.docs``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ops.catalogue import CATALOGUE
from pipeline.ops.docs import COMMAND, generate, main, type_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ops.md"


@pytest.fixture(scope="module")
def text() -> str:
    return generate()


def test_committed_docs_are_generated(text):
    assert DOCS.exists(), f"docs/ops.md is missing: run {COMMAND}"
    assert DOCS.read_text(encoding="utf-8") == text, f"docs/ops.md is out of date: run {COMMAND}"


def test_every_op_has_a_heading(text):
    headings = {line[4:] for line in text.splitlines() if line.startswith("### ")}
    assert headings == set(CATALOGUE)


def test_parameter_bounds_show(text):
    section = text.split("### gaussian\n", 1)[1].split("\n### ", 1)[0]
    (sigma,) = [line for line in section.splitlines() if line.startswith("| `sigma` |")]
    assert "float ≥ 0" in sigma and "list[float ≥ 0]" in sigma
    assert "| `0 < float ≤ 20` |" in section  # truncate: both bounds


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "number", "exclusiveMinimum": 0}, "float > 0"),
        ({"type": "integer", "maximum": 9}, "int ≤ 9"),
        ({"anyOf": [{"type": "integer", "minimum": 1, "maximum": 3}, {"type": "null"}]},
         "1 ≤ int ≤ 3 | null"),
        ({"type": "string", "enum": ["otsu", "li"]}, '"otsu" | "li"'),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 1}, "list[int] (≥ 1 items)"),
    ],
)  # fmt: skip
def test_type_text(schema, expected):
    assert type_text(schema) == expected


def test_check_flags_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "ops.md"
    stale.write_text("# Ops\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert COMMAND in capsys.readouterr().err
    assert main(["--write", str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0
