"""The same pipeline on threads and on worker processes (Dask clusters: test_cluster.py).

The graph holds no open file or other unpicklable state: every task opens what it reads,
so the worker processes produce the same labels as threads.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile
import zarr
from scipy import ndimage as ndi

import pipeline


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    rng = np.random.default_rng(21)
    # Sparse points blurred into blobs, many of them across block borders.
    image = ndi.gaussian_filter((rng.random((24, 48, 40)) < 0.004).astype(float), 1.5)
    path = root / "stack.tif"
    tifffile.imwrite(path, (image / image.max() * 60000).astype(np.uint16))
    return path


def _run(stack, out, scheduler="threads"):
    config = {
        "input": {"path": str(stack), "chunks": [8, 20, 16]},
        "steps": {
            "smooth": {"op": "gaussian", "sigma": 1.0},
            "mask": {"op": "threshold", "method": "otsu"},
            "objects": {"op": "label", "connectivity": 3},
        },
        "output": {"path": str(out), "labels": "objects"},
        "engine": {"scheduler": scheduler, "workers": 2},
    }
    result = pipeline.run(config)
    return result.count, zarr.open_array(str(result.labels_path / "0"), mode="r")[...]


def test_processes_match_threads(stack, tmp_path):
    count, labels = _run(stack, tmp_path / "threads")
    assert count > 10
    count_p, labels_p = _run(stack, tmp_path / "processes", "processes")
    assert count_p == count
    np.testing.assert_array_equal(labels_p, labels)


def test_a_run_on_threads_does_not_import_distributed(stack, tmp_path):
    """Named local schedulers are looked up without importing distributed (0.3 s)."""
    code = (
        "import sys, pipeline\n"
        f"r = pipeline.run({{'input': {{'path': {str(stack)!r}}},"
        " 'steps': {'smooth': {'op': 'gaussian'}, 'mask': {'op': 'threshold', 'method': 'otsu'},"
        " 'objects': {'op': 'label'}},"
        f" 'output': {{'path': {str(tmp_path / 'out')!r}, 'labels': 'objects'}}}})\n"
        "print(r.count, 'distributed' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    count, imported = done.stdout.split()
    assert int(count) > 10
    assert imported == "False"
