"""A block that fails is named (pass, block, error) with a command that reruns just it;
that command shows the traceback; once the cause is gone the run resumes and finishes."""

from __future__ import annotations

import json

import numpy as np
import zarr
from scipy import ndimage as ndi

from pipeline.cli import main


def _setup(tmp_path):
    rng = np.random.default_rng(2)
    img = ndi.gaussian_filter(rng.random((24, 48, 48)), 2.0)
    img = (60000 * (img - img.min())).astype(np.uint16)
    arr = zarr.create_array(
        str(tmp_path / "in.zarr"), shape=img.shape, chunks=(8, 16, 16), dtype=img.dtype
    )
    arr[:] = img
    cfg = {
        "input": {"path": str(tmp_path / "in.zarr"), "chunks": [8, 16, 16]},
        "steps": {
            "mask": {"op": "threshold", "method": "otsu"},
            "cells": {"op": "label", "connectivity": 1},
        },
        "output": {"path": str(tmp_path / "out"), "labels": "cells"},
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    chunk = tmp_path / "in.zarr" / "c" / "1" / "0" / "2"
    return path, chunk


def test_failed_block_is_named_and_rerun_alone(tmp_path, capsys):
    cfg, chunk = _setup(tmp_path)
    assert main(["run", str(cfg), "--set", f"output.path={tmp_path / 'clean'}"]) == 0
    clean = zarr.open_array(str(tmp_path / "clean" / "cells.ome.zarr" / "0"))[:]
    good = chunk.read_bytes()
    chunk.write_bytes(b"not a chunk" * 10)  # damaged storage under one block
    capsys.readouterr()

    assert main(["run", str(cfg)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "failed on block 1,0,2" in err[0]
    assert f"rerun just this block: segpipe run {cfg} --block 1,0,2 --debug" in err[0]
    assert not (tmp_path / "out" / "summary.json").exists()

    assert main(["run", str(cfg), "--block", "1,0,2", "--debug"]) == 3
    assert "Traceback" in capsys.readouterr().err

    chunk.write_bytes(good)  # the cause is gone
    assert main(["run", str(cfg), "--block", "1,0,2"]) == 0
    assert "block 1,0,2 [8:16, 0:16, 32:48]: computed without error" in capsys.readouterr().out
    assert main(["run", str(cfg)]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["resumed_blocks"]  # the blocks done before the failure were not redone
    got = zarr.open_array(str(tmp_path / "out" / "cells.ome.zarr" / "0"))[:]
    np.testing.assert_array_equal(got, clean)


def test_block_outside_the_grid(tmp_path, capsys):
    cfg, _ = _setup(tmp_path)
    assert main(["run", str(cfg), "--block", "3,0,0"]) == 3
    assert "expected indices within the block grid (3, 3, 3)" in capsys.readouterr().err
    assert main(["run", str(cfg), "--block", "a,b"]) == 2
