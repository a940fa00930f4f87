"""Batches: many inputs, each with its own outputs and a row in batch.csv; finished inputs
skipped on rerun; a failing input does not stop the others."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
import zarr

import pipeline
from pipeline.cli import main
from tests.conftest import smooth_field


def _config(path, out, **extra):
    return {
        "input": {"path": path, "chunks": [8, 16, 16], **extra},
        "steps": {
            "smooth": {"op": "gaussian", "sigma": 1.0},
            "mask": {"op": "threshold", "method": "otsu"},
            "cells": {"op": "label", "connectivity": 1},
        },
        "output": {"path": str(out), "labels": "cells", "table": {"format": "csv"}},
    }


def _rows(path):
    with open(path, newline="") as fh:
        return {r["name"]: r for r in csv.DictReader(fh)}


def _labels(folder):
    return zarr.open_array(str(folder / "cells.ome.zarr" / "0"), mode="r")[:]


@pytest.fixture
def volumes(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / "in" / f"vol{i}.npy"
        p.parent.mkdir(exist_ok=True)
        np.save(p, smooth_field((16, 32, 32), i))
        paths.append(str(p))
    return paths


def test_list_batch_with_a_failing_input(tmp_path, volumes, capsys):
    bad = str(tmp_path / "in" / "missing.npy")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(_config([*volumes, bad], tmp_path / "out")))
    assert main(["run", str(cfg)]) == 3
    out, err = capsys.readouterr()
    assert "error: 1 of 4 inputs failed: missing" in err
    rows = _rows(tmp_path / "out" / "batch.csv")
    assert [rows[f"vol{i}"]["status"] for i in range(3)] == ["done"] * 3
    assert (
        rows["missing"]["status"] == "failed" and "input file not found" in rows["missing"]["error"]
    )
    assert not (tmp_path / "out" / "missing" / "summary.json").exists()
    for i, p in enumerate(volumes):  # each output equals the input's own run
        single = pipeline.run(_config(p, tmp_path / f"single{i}"))
        np.testing.assert_array_equal(
            _labels(tmp_path / "out" / f"vol{i}"), _labels(tmp_path / f"single{i}")
        )
        assert int(rows[f"vol{i}"]["count"]) == single.count

    # Rerun: finished inputs are skipped (their files untouched), the failed one is retried.
    stamp = (tmp_path / "out" / "vol0" / "summary.json").stat().st_mtime_ns
    assert main(["run", str(cfg)]) == 3
    rows = _rows(tmp_path / "out" / "batch.csv")
    assert [rows[f"vol{i}"]["status"] for i in range(3)] == ["skipped"] * 3
    assert rows["missing"]["status"] == "failed"
    assert (tmp_path / "out" / "vol0" / "summary.json").stat().st_mtime_ns == stamp

    # A changed config does not reuse nor silently replace the old outputs.
    assert main(["run", str(cfg), "--set", "steps.smooth.sigma=2"]) == 3
    rows = _rows(tmp_path / "out" / "batch.csv")
    assert rows["vol0"]["status"] == "failed" and "--overwrite" in rows["vol0"]["error"]
    assert main(["run", str(cfg), "--set", "steps.smooth.sigma=2", "--overwrite"]) == 3
    assert _rows(tmp_path / "out" / "batch.csv")["vol0"]["status"] == "done"


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["plain", "byte-order-mark"])
def test_manifest_names_and_pattern(tmp_path, volumes, bom):
    manifest = tmp_path / "in" / "manifest.csv"  # spreadsheets save a byte order mark
    manifest.write_bytes(bom + b"path,name\nvol2.npy,second\nvol0.npy,\n")
    res = pipeline.run_batch(_config(str(manifest), tmp_path / "out" / "{name}-seg"))
    assert [r["name"] for r in res.rows] == ["second", "vol0"]
    assert (tmp_path / "out" / "second-seg" / "summary.json").exists()
    assert (tmp_path / "out" / "vol0-seg" / "cells.csv").exists()
    assert res.table_path == tmp_path / "out" / "batch.csv"


def test_concurrent_inputs_give_the_same_results(tmp_path, volumes):
    a = pipeline.run_batch(_config(volumes, tmp_path / "a"))
    cfg = _config(volumes, tmp_path / "b")
    cfg["engine"] = {"concurrent_inputs": 3}
    b = pipeline.run_batch(cfg)
    assert [r["count"] for r in a.rows] == [r["count"] for r in b.rows]
    for i in range(3):
        np.testing.assert_array_equal(
            _labels(tmp_path / "a" / f"vol{i}"), _labels(tmp_path / "b" / f"vol{i}")
        )


def test_globs(tmp_path):
    vols, slices = tmp_path / "vols", tmp_path / "slices"
    vols.mkdir()
    slices.mkdir()
    for i in range(2):
        tifffile.imwrite(vols / f"v{i}.tif", smooth_field((16, 32, 32), i))
    stack = smooth_field((16, 32, 32), 5)
    for z in range(16):
        tifffile.imwrite(slices / f"s{z}.tif", stack[z])
    # A glob of 3D volumes is a batch.
    res = pipeline.run_batch(_config(str(vols / "*.tif"), tmp_path / "o1"))
    assert [r["status"] for r in res.rows] == ["done", "done"]
    # A glob of 2D slices is one stack...
    one = pipeline.run(_config(str(slices / "*.tif"), tmp_path / "o2"))
    assert one.summary["shape"] == [16, 32, 32]
    # ...unless the config says it is a batch of 2D images.
    cfg = _config(str(slices / "s1*.tif"), tmp_path / "o3", batch=True)
    cfg["input"]["chunks"] = [16, 16]
    res = pipeline.run_batch(cfg)
    assert sorted(r["name"] for r in res.rows) == ["s1", "s10", "s11", "s12", "s13", "s14", "s15"]
    assert all(r["status"] == "done" for r in res.rows)


def test_name_in_a_single_output_path(tmp_path, volumes):
    res = pipeline.run(_config(volumes[1], tmp_path / "out" / "{name}"))
    assert res.summary_path == tmp_path / "out" / "vol1" / "summary.json"


def test_plan_of_a_batch(tmp_path, volumes, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(_config(volumes, tmp_path / "out")))
    assert main(["plan", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("batch:   3 inputs; the plan of the first, 'vol0'")
    assert "vol0.npy" in out


def test_one_input_of_a_batch_and_dry_run(tmp_path, volumes, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(_config(volumes, tmp_path / "out")))
    assert main(["run", str(cfg), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[1].startswith("would run vol1:") and "16×32×32" in out[1]
    assert not (tmp_path / "out").exists()  # nothing written
    assert main(["run", str(cfg), "--input", "2"]) == 0
    assert main(["run", str(cfg), "--input", "vol0"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["vol0", "vol2"]
    assert not (tmp_path / "out" / "batch.csv").exists()  # job-array tasks write no table
    assert main(["run", str(cfg), "--input", "7"]) == 3
    assert "--input 7: expected a name or an index below 3" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["out/{name}-seg", "out"])
def test_item_configs_equal_the_configs_written_for_each_input(tmp_path, volumes, out):
    from pipeline.app.prepared import input_items, item_config
    from pipeline.app.summary import config_sha256
    from pipeline.config import load_config

    given = _config(volumes, tmp_path / out)
    cfg = load_config(given)
    items = input_items(cfg)
    assert items
    for item in items:
        made = item_config(cfg, item)
        written = json.loads(json.dumps(given))
        written["input"]["path"] = item.path
        if item.timepoint is not None:
            written["input"]["timepoint"] = item.timepoint
        written["output"]["path"] = made.spec.output.path
        assert item.name in made.spec.output.path
        assert made.spec == load_config(written).spec
        assert config_sha256(made) == config_sha256(load_config(written))
