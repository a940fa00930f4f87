"""Bad parameters of every toolbox op: one line with file:line:col and the key path."""

from __future__ import annotations

import re

import pytest

from pipeline.config.loader import load_config
from pipeline.errors import ConfigError

TEMPLATE = """\
input:
  path: img.tif
steps:
  prep:
    op: {op}
{params}  mask:
    op: threshold
    value: 0
    input: {mask_input}
  objects:
    op: label
    input: mask
output:
  path: out
  labels: objects
"""

# op -> (parameters, regex of the problem after the file name); the step starts at line 4.
CASES = {
    "gaussian-negative-sigma": (
        "gaussian",
        "    sigma: -1\n",
        r":6:(5|12) steps\.prep\.sigma: .*greater than or equal to 0",
    ),
    "gaussian-negative-sigma-axis": (
        "gaussian",
        "    sigma: [1, -0.5, 1]\n",
        r":6:(5|12) steps\.prep\.sigma: .*(greater than or equal to 0|-0\.5)",
    ),
    "distance-negative-spacing": (
        "distance_transform",
        "    max_distance: 3\n    spacing: [1, 0, 1]\n",
        r":7:(5|14) steps\.prep\.spacing: ",
    ),
    "median-size": ("median", "    size: 0\n", r":4:3 steps\.prep: .*size must be at least 1"),
    "threshold-local-even": (
        "threshold_local",
        "    block_size: 8\n",
        r":4:3 steps\.prep: .*block_size must be odd and at least 3, got 8",
    ),
    "normalize-order": (
        "normalize",
        "    low: 90\n    high: 10\n",
        r":4:3 steps\.prep: .*low \(90\.0\) must be below high \(10\.0\)",
    ),
    "normalize-range": (
        "normalize",
        "    high: 120\n",
        r":6:(5|11) steps\.prep\.high: .*less than or equal to 100",
    ),
    "morphology-footprint": (
        "opening",
        "    footprint: star\n",
        r":6:(5|16) steps\.prep\.footprint: .*'ball' or 'box', got 'star'",
    ),
    "distance-required": (
        "distance_transform",
        "",
        r":(4:3|5:5) steps\.prep\.max_distance: required key is missing",
    ),
    "kmeans-k": ("kmeans", "    k: 1\n", r":6:(5|8) steps\.prep\.k: .*greater than or equal to 2"),
    "canny-order": (
        "canny",
        "    low: 9\n    high: 3\n",
        r":4:3 steps\.prep: .*low \(9\.0\) must not exceed high \(3\.0\)",
    ),
    "canny-quantiles": (
        "canny",
        "    low: 5\n    high: 9\n    use_quantiles: true\n",
        r":4:3 steps\.prep: .*quantile thresholds must be between 0 and 1",
    ),
    "peaks-distance": (
        "peak_local_max",
        "    min_distance: 0\n",
        r":6:(5|19) steps\.prep\.min_distance: .*greater than or equal to 1",
    ),
    "resize-two-ways": (
        "resize",
        "    scale: 0.5\n    shape: [4, 4]\n",
        r":4:3 steps\.prep: .*exactly one of 'scale', 'shape' or 'spacing'",
    ),
    "model-unknown-blend": (
        "model",
        "    path: m.onnx\n    halo: 2\n    blend: max\n",
        r":8:(5|12) steps\.prep\.blend: .*'crop', 'linear' or 'gaussian', got 'max'",
    ),
    "holes-negative": (
        "remove_small_holes",
        "    max_size: -1\n",
        r":6:(5|15) steps\.prep\.max_size: .*greater than or equal to 0",
    ),
}


@pytest.mark.parametrize(("op", "params", "regex"), list(CASES.values()), ids=list(CASES))
def test_bad_op_parameters(tmp_path, op, params, regex):
    path = tmp_path / "bad.yaml"
    path.write_text(TEMPLATE.format(op=op, params=params, mask_input="input"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = [p for p in info.value.problems if "steps.prep" in p]
    assert len(lines) == 1, info.value.problems
    assert re.match(regex, lines[0][len(str(path)) :]), lines[0]
