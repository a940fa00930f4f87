"""Overwriting removes what segpipe wrote and nothing else: the marker's entries, never
a file put there by hand, never what a symlink points to, never a shared scratch folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import tifffile

from pipeline import run
from pipeline.app.output_folder import MARKER
from tests.cli.test_bad_inputs import image, snapshot


def config(root: Path, sigma: float = 1.0, **output) -> dict:
    return {
        "input": {"path": str(root / "data" / "img.tif")},
        "steps": {
            "smooth": {"op": "gaussian", "sigma": sigma},
            "mask": {"op": "threshold", "method": "otsu"},
            "objects": {"op": "label"},
        },
        "output": {"path": str(root / "out"), "labels": "objects", **output},
    }


@pytest.fixture
def root(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    tifffile.imwrite(tmp_path / "data" / "img.tif", image())
    return tmp_path


def test_marker_names_every_entry_a_run_writes(root):
    full = {"image": "smooth", "table": {"format": "csv"}, "report": True, "nifti": True}
    run(config(root, **full))
    out = root / "out"
    made = json.loads((out / MARKER).read_text())["made"]
    assert sorted(p.name for p in out.iterdir()) == sorted(n for n in made if (out / n).exists())
    assert {"summary.json", "image.ome.zarr", "objects.csv", "report", "labels.nii.gz"} <= set(
        p.name for p in out.iterdir()
    )


def test_overwrite_keeps_what_segpipe_did_not_write(root):
    first = run(config(root))
    notes = root / "out" / "notes.txt"
    notes.write_text("mine\n")
    second = run(config(root, sigma=2.0), overwrite=True)
    written = json.loads((root / "out" / "summary.json").read_text())
    assert not second.earlier
    assert written["config_sha256"] == second.summary["config_sha256"]
    assert written["config_sha256"] != first.summary["config_sha256"]
    assert notes.read_text() == "mine\n"


def test_overwrite_removes_a_symlink_not_its_target(root):
    run(config(root))
    out = root / "out"
    labels = out / "objects.ome.zarr"
    keep = root / "elsewhere"
    keep.mkdir()
    (keep / "precious.txt").write_text("keep\n")
    shutil.rmtree(labels)
    os.symlink(keep, labels)  # an entry segpipe wrote, now a link out of the folder
    before = snapshot(keep)
    run(config(root, sigma=2.0), overwrite=True)
    assert snapshot(keep) == before
    assert labels.is_dir() and not labels.is_symlink()


def test_a_shared_scratch_folder_is_never_removed(root):
    shared = root / "data"  # even a folder holding the input
    before = snapshot(shared)
    run(config(root) | {"engine": {"scratch": str(shared)}})
    assert snapshot(shared) == before


def test_a_resumed_run_keeps_its_marker(root):
    cfg = config(root)
    run(cfg)
    first = json.loads((root / "out" / MARKER).read_text())
    assert run(cfg).earlier
    assert json.loads((root / "out" / MARKER).read_text()) == first
    assert {"summary.json", "objects.ome.zarr", ".journal"} <= set(first["made"])
