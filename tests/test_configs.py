"""Every example config in configs/ validates, and runs on small demo data."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipeline
from pipeline.config import load_config
from pipeline.demo import write_demo_slices, write_demo_tiff

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_example_config_runs(config, tmp_path):
    cfg = load_config(config)
    src = Path(cfg.spec.input.path)
    if src.suffix == ".tif":
        data = write_demo_tiff(
            tmp_path / "in.tif",
            shape=(32, 96, 96) if "demo" in src.name and "2d" not in src.name else (160, 160),
        )
    else:
        data = write_demo_slices(tmp_path / "slices", shape=(12, 64, 64))
    ndim = 2 if "2d" in src.name else 3
    chunks = "[8,32,32]" if ndim == 3 else "[40,40]"
    result = pipeline.run(
        config,
        [f"input.path={data}", f"output.path={tmp_path / 'out'}", f"input.chunks={chunks}"],
    )
    assert result.summary_path.exists()
    assert result.count > 0
    assert result.summary["count"] == result.count
