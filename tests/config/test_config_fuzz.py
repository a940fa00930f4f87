"""Fuzzed configs: whatever a config holds, loading it gives a config or a ConfigError,
never another exception."""

from __future__ import annotations

import copy
import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config.loader import load_config
from pipeline.config.model import PipelineSpec
from pipeline.config.yaml_reader import parse_yaml
from pipeline.errors import ConfigError
from pipeline.ops.catalogue import CATALOGUE

SECTIONS = list(PipelineSpec.model_fields)
KEYS = sorted(
    {
        *SECTIONS,
        "path", "labels", "op", "input", "sigma", "method", "chunks", "connectivity",
        "min_size", "value", "table", "image", "format", "workers", "scheduler", "batch",
        "timepoint", "channel", "region", "z", "y", "x", "spacing", "overwrite", "report",
    }
)  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from([*CATALOGUE, "otsu", "auto", "out", "img.tif", "{name}", "../x", ""]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
step = st.fixed_dictionaries(
    {"op": st.sampled_from(list(CATALOGUE))}, optional={k: values for k in KEYS[:12]}
)
configs = st.fixed_dictionaries(
    {},
    optional={
        "input": st.one_of(values, st.fixed_dictionaries({"path": values})),
        "steps": st.one_of(values, st.dictionaries(st.text(max_size=6), step, max_size=4)),
        "output": st.one_of(
            values,
            st.fixed_dictionaries(
                {"path": values, "labels": st.one_of(st.text(max_size=6), values)}
            ),
        ),
        "engine": values,
        "cluster": values,
        "extra": values,
    },
)

VALID = {
    "input": {"path": "img.tif", "chunks": [8, 16, 16], "channel": 0},
    "steps": {
        "smooth": {"op": "gaussian", "sigma": 1.0},
        "mask": {"op": "threshold", "method": "otsu"},
        "objects": {"op": "label", "connectivity": 1},
        "big": {"op": "remove_small_objects", "min_size": 10},
    },
    "output": {"path": "out/{name}", "labels": "big", "table": {"format": "csv"}},
    "engine": {"workers": 2},
}


def _paths(value, at=()):
    yield at
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*at, i))


def _with(path: tuple, new) -> dict:
    """A copy of :data:`VALID` with the value at ``path`` replaced by ``new``."""
    out = copy.deepcopy(VALID)
    if not path:
        return new
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = new
    return out


# A valid config with one value (or mapping, or list) anywhere replaced.
mutated = st.builds(_with, st.sampled_from(list(_paths(VALID))), values)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(configs, mutated))
def test_a_fuzzed_config_dict_loads_or_is_a_config_error(raw):
    try:
        load_config(raw)
    except ConfigError as exc:  # a config error names what is wrong
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        assert all(len(p) < 2000 for p in exc.problems)


def _plain(value):
    """``value`` with the floats YAML writes differently (nan != nan) left out."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@settings(max_examples=500, deadline=None)
@given(values)
def test_yaml_written_by_a_yaml_library_reads_back_equal(value):
    value = _plain(value)
    text = yaml.safe_dump(value)
    assert parse_yaml(text, "fuzz.yaml", {}) == yaml.safe_load(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_any_text_reads_or_is_a_config_error(text):
    try:
        parse_yaml(text, "fuzz.yaml", {})
    except ConfigError as exc:
        assert len(exc.problems) == 1 and exc.problems[0].startswith("fuzz.yaml")
