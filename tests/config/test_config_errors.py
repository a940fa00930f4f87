"""Config errors: one line per problem, ``file:line:col key.path: message``, all at once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config.loader import load_config
from pipeline.config.model import json_schema
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

# Line numbers matter: the expected positions below refer to this text.
BASE = """\
input:
  path: img.tif
  chunks: [8, 16, 16]
steps:
  smooth:
    op: gaussian
    sigma: 1.0
  mask:
    op: threshold
    method: otsu
  objects:
    op: label
    connectivity: 1
output:
  path: out
  labels: objects
"""


def edit(*pairs: tuple[str, str]) -> str:
    text = BASE
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


# (config text, regex for the one problem line after the file name).
# Where either the key's or the value's column is a sensible answer both are accepted.
CASES = {
    "duplicate-top-level-key": (
        BASE + "steps: {}\n",
        r":17:1 steps: duplicate key 'steps' \(first at line 4\)$",
    ),
    "duplicate-key-in-step": (
        edit(("    sigma: 1.0\n", "    sigma: 1.0\n    sigma: 2.0\n")),
        r":8:5 steps\.smooth\.sigma: duplicate key 'sigma' \(first at line 7\)$",
    ),
    "unhashable-key": (
        edit(("    sigma: 1.0\n", "    sigma: 1.0\n    [a, b]: 2\n")),
        r":8:5 steps\.smooth: expected a plain key, got a sequence$",
    ),
    "unknown-top-level-key": (BASE + "extra: 1\n", r":17:1 extra: unknown key$"),
    "unknown-key-in-step": (
        edit(("    sigma: 1.0\n", "    sigma: 1.0\n    sigm: 2\n")),
        r":8:(5|11) steps\.smooth\.sigm: unknown key$",
    ),
    "unknown-op": (
        edit(("op: gaussian", "op: gausian")),
        r":6:(5|9) steps\.smooth\.op: unknown op 'gausian' \(did you mean 'gaussian'\?\)$",
    ),
    "missing-op": (
        edit(("    op: gaussian\n", "")),
        r":(5:3|6:5) steps\.smooth(\.op)?: missing 'op'",
    ),
    "wrong-type": (
        edit(("sigma: 1.0", 'sigma: "abc"')),
        r":7:(5|12) steps\.smooth\.sigma: .*'abc'",
    ),
    "truncate-out-of-range": (
        edit(("    sigma: 1.0\n", "    sigma: 1.0\n    truncate: -1\n")),
        r":8:(5|15) steps\.smooth\.truncate: .*greater than 0.*-1$",
    ),
    "connectivity-out-of-range": (
        edit(("connectivity: 1", "connectivity: 0")),
        r":13:(5|19) steps\.objects\.connectivity: .*greater than or equal to 1.*0$",
    ),
    "threshold-value-and-method": (
        edit(("    method: otsu\n", "    method: otsu\n    value: 3\n")),
        r":(8:3|9:5) steps\.mask: .*exactly one of 'value' or 'method'",
    ),
    "input-names-no-step": (
        edit(("    op: label\n", "    op: label\n    input: nope\n")),
        r":(11:3 steps\.objects|13:(5|12) steps\.objects\.input): .*'nope' names no step",
    ),
    "cycle": (
        edit(
            ("    op: gaussian\n", "    op: gaussian\n    input: mask\n"),
            ("    op: threshold\n", "    op: threshold\n    input: smooth\n"),
        ),
        r":\d+:\d+ steps\.(smooth|mask)(\.input)?: steps form a cycle: "
        r"(smooth -> mask -> smooth|mask -> smooth -> mask)$",
    ),
    "labels-names-no-step": (
        edit(("labels: objects", "labels: nothing")),
        r":16:(3|11) output\.labels: names no step",
    ),
    "labels-names-image-step": (
        edit(("labels: objects", "labels: smooth")),
        r":16:(3|11) output\.labels: step 'smooth' gives an? image, expected labels or a mask",
    ),
    "scratch-budget-not-a-size": (
        BASE + "engine:\n  scratch_budget: lots\n",
        r":18:(3|19) engine\.scratch_budget: .*expected a size such as 8GiB.*'lots'",
    ),
    "invalid-yaml": (
        edit(("  smooth:\n", "  smooth: [\n")),
        r":7:\d+: not valid YAML",
    ),
}


def problems_of(path, overrides=()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    assert str(info.value).splitlines() == info.value.problems
    return info.value.problems


@pytest.mark.parametrize(("text", "regex"), list(CASES.values()), ids=list(CASES))
def test_one_problem_one_line(tmp_path, text, regex):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    problems = problems_of(path)
    assert len(problems) == 1, problems
    line = problems[0]
    assert line.startswith(str(path)), line
    assert re.match(regex, line[len(str(path)) :]), line


def test_base_config_is_valid(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(BASE)
    cfg = load_config(path)
    assert list(cfg.dag.nodes) == ["input", "smooth", "mask", "objects"]


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope.yaml"
    problems = problems_of(path)
    assert problems == [f"{path}: config file not found"]


def test_all_problems_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        edit(
            ("    sigma: 1.0\n", "    sigma: 1.0\n    truncate: -1\n"),
            ("connectivity: 1", "connectivity: 0"),
        )
    )
    problems = problems_of(path)
    assert len(problems) == 2, problems
    assert re.match(rf"{re.escape(str(path))}:8:\d+ steps\.smooth\.truncate: ", problems[0])
    assert re.match(rf"{re.escape(str(path))}:14:\d+ steps\.objects\.connectivity: ", problems[1])


def test_set_override(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(BASE)
    cfg = load_config(path, ["steps.smooth.sigma=2"])
    assert cfg.dag.nodes["smooth"].params.sigma == 2.0
    assert cfg.raw["steps"]["smooth"]["sigma"] == 2
    # The file itself is untouched.
    assert load_config(path).dag.nodes["smooth"].params.sigma == 1.0


def test_set_override_bad_value(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(BASE)
    problems = problems_of(path, ["steps.smooth.sigma=abc"])
    assert problems
    for line in problems:
        assert line.startswith("--set steps.smooth.sigma"), line
        assert "'abc'" in line, line


def test_set_override_without_equals(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(BASE)
    problems = problems_of(path, ["steps.smooth.sigma"])
    assert len(problems) == 1 and "--set" in problems[0]


def test_validate_cli_reports_each_problem(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(edit(("connectivity: 1", "connectivity: 0")) + "extra: 1\n")
    rc = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert all(line.startswith(f"error: {path}:") for line in lines), err
    assert any(re.search(r":17:1 extra: unknown key$", line) for line in lines), err
    assert any(re.search(r":13:\d+ steps\.objects\.connectivity: ", line) for line in lines)
    assert "Traceback" not in err


def test_validate_cli_missing_file(tmp_path, capsys):
    rc = main(["validate", str(tmp_path / "nope.yaml")])
    out, err = capsys.readouterr()
    assert rc == 2
    assert err.splitlines() == [f"error: {tmp_path / 'nope.yaml'}: config file not found"]
    assert "Traceback" not in err


def test_validate_cli_ok_and_set(tmp_path, capsys):
    path = tmp_path / "ok.yaml"
    path.write_text(BASE)
    assert main(["validate", str(path), "--set", "steps.smooth.sigma=2"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{path}: valid (3 steps)"
    assert err == ""
    assert main(["validate", str(path), "--set", "steps.smooth.sigma=abc"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: --set steps.smooth.sigma")
    assert "Traceback" not in err


def test_schema_file_matches_model():
    path = REPO / "configs" / "schema.json"
    if not path.exists():
        pytest.skip(f"{path} does not exist (nothing to compare with json_schema())")
    assert json.loads(path.read_text()) == json.loads(json.dumps(json_schema()))


def test_schema_is_json_and_covers_every_op():
    schema = json.loads(json.dumps(json_schema()))
    text = json.dumps(schema)
    for op in ("gaussian", "threshold", "label", "remove_small_objects", "grayscale"):
        assert f'"{op}"' in text
    assert set(schema["required"]) == {"input", "steps", "output"}
