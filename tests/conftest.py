"""Shared test helpers: an in-memory source and a one-step engine runner."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pipeline.engine.blocks import BlockPlan
from pipeline.engine.engine import Engine
from pipeline.graph.dag import build_dag
from pipeline.ops.catalogue import CATALOGUE

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class ArraySource:
    """A source over an in-memory array (the engine reads it block by block)."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.dtype = array.dtype
        self.shape = array.shape

    def read(self, box):
        return self.array[tuple(slice(lo, hi) for lo, hi in box)]


def run_steps(array, steps, target, chunks, role="image", ops=CATALOGUE):
    """Run ``steps`` (name -> (op, params, inputs)) on ``array`` and return ``target``
    (``ops``: the ops step names refer to)."""
    dag = build_dag(steps, source_role=role, ops=ops)
    if isinstance(chunks[0], int):
        plan = BlockPlan.regular(array.shape, chunks)
    else:
        plan = BlockPlan(array.shape, tuple(tuple(c) for c in chunks))
    engine = closed_after_test(Engine(dag, ArraySource(array), plan, scheduler="sync"))
    return engine.to_numpy(target), engine


_engines: list[Engine] = []


def closed_after_test(engine: Engine) -> Engine:
    """``engine``, closed (its scratch folder removed) when the test ends."""
    _engines.append(engine)
    return engine


@pytest.fixture(autouse=True)
def _close_engines():
    yield
    # Tests import this file as tests.conftest, pytest as conftest: two lists.
    import tests.conftest as imported

    for engines in {id(_engines): _engines, id(imported._engines): imported._engines}.values():
        while engines:
            engines.pop().close()


@pytest.fixture
def shared_data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real test data folder {DATA} is not present")
    return DATA


def smooth_field(shape, seed: int = 0, noise: bool = False, sigma: float = 2.0) -> np.ndarray:
    """A random field smoothed by ``sigma`` as uint16 (0..~20000), with positive noise
    when asked."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    smooth = ndi.gaussian_filter(rng.random(shape), sigma)
    field = 20000 * (smooth - smooth.min())
    if noise:
        field = field + rng.normal(0, 50, shape).clip(0)
    return field.astype(np.uint16)


def folder_bytes(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative path -> bytes)."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def image_and_table_bytes(out: Path, table: str) -> dict[str, bytes]:
    """A run's image.ome.zarr (with its labels) and its objects table, as bytes."""
    files = folder_bytes(out / "image.ome.zarr")
    files[table] = (out / table).read_bytes()
    return files


def otsu_objects_config(source: Path, out: Path, chunks, engine: dict | None = None) -> dict:
    """The config of Gaussian σ 1, global Otsu and labelling (connectivity 1) on ``source``."""
    cfg = {
        "input": {"path": str(source), "chunks": list(chunks)},
        "steps": {
            "smooth": {"op": "gaussian", "sigma": 1.0},
            "mask": {"op": "threshold", "method": "otsu"},
            "objects": {"op": "label", "connectivity": 1},
        },
        "output": {"path": str(out), "labels": "objects"},
    }
    if engine is not None:
        cfg["engine"] = engine
    return cfg


def kept_objects_config(source, out, chunks, sigma: float, min_size: int) -> dict:
    """The config of Gaussian ``sigma``, global Otsu, labelling (connectivity 3) and
    objects of at least ``min_size`` voxels kept, writing the image with its labels and a
    CSV table of the objects with their intensities (``kept.csv``)."""
    return {
        "input": {"path": str(source), "chunks": list(chunks)},
        "steps": {
            "smooth": {"op": "gaussian", "sigma": sigma},
            "mask": {"op": "threshold", "method": "otsu"},
            "objects": {"op": "label", "connectivity": 3},
            "kept": {"op": "remove_small_objects", "min_size": min_size},
        },
        "output": {
            "path": str(out),
            "labels": "kept",
            "image": "input",
            "table": {"format": "csv", "intensity": "input"},
        },
    }


def otsu_objects(image: np.ndarray) -> np.ndarray:
    """scikit-image's labels for :func:`otsu_objects_config` on the whole image."""
    from skimage import filters, measure

    smooth = filters.gaussian(image, sigma=1.0)
    return measure.label(smooth > filters.threshold_otsu(smooth), connectivity=1)


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server on loopback for the whole session (see tests/object_store.py)."""
    from tests.object_store import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A one-node SLURM cluster on this machine for the whole session (see
    tests/slurm_cluster.py); skips, with the reason, where none can run."""
    from tests.slurm_cluster import SlurmCluster, missing

    reason = missing()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except RuntimeError as exc:
        cluster.stop()
        pytest.fail(f"SLURM is installed but does not start: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The loopback S3 server, with this process's AWS settings pointing at it."""
    from pipeline.io import storage, storage_options

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    storage.forget_clients()
    storage_options.forget()
    yield s3_server
    storage.forget_clients()
    storage_options.forget()
