"""Runs that read from and write to an object store (a loopback S3 server): the same
bytes as a run on local files, summary.json last, no local folder named after a URL."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tifffile
import zarr

from pipeline.app.run import run
from pipeline.errors import DataError
from pipeline.io.ome_zarr import open_level
from tests.object_store import local_files

# These name the run's locations and times: compared by content; every other output byte
# for byte.
VARYING = ("summary.json", "report/report.html", "nuclei.parquet")


def blobs(shape=(40, 96, 96), seed=0, count=40) -> np.ndarray:
    """Bright balls (radius 3 to 6) on a noisy background, some across block edges."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    image = rng.normal(100, 10, shape)
    for _ in range(count):
        centre = [rng.uniform(0, n) for n in shape]
        r = rng.uniform(3, 6)
        inside = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= r * r
        image[inside] += 300
    return np.clip(image, 0, 65535).astype(np.uint16)


def steps() -> dict:
    return {
        "smooth": {"op": "gaussian", "sigma": 1.0},
        "mask": {"op": "threshold", "method": "otsu"},
        "objects": {"op": "label", "connectivity": 1},
        "nuclei": {"op": "remove_small_objects", "min_size": 20},
    }


def config(input_path: str, out: str, **output) -> dict:
    return {
        "input": {"path": input_path, "chunks": [16, 48, 48]},
        "steps": steps(),
        "output": {"path": out, "labels": "nuclei", **output},
        "engine": {"scheduler": "threads", "workers": 2},
    }


@pytest.fixture
def stack(tmp_path):
    """A TIFF stack, the same as a Zarr store (local), and the local run's outputs."""
    image = blobs()
    tif = tmp_path / "stack.tif"
    tifffile.imwrite(tif, image)
    store = tmp_path / "stack.zarr"
    arr = zarr.create_array(store, shape=image.shape, chunks=(16, 48, 48), dtype=image.dtype)
    arr[:] = image
    return image, tif, store


def _table(data: bytes):
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data)).replace_schema_metadata(None)


def _outputs(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k not in VARYING}


@pytest.mark.parametrize("exchange", ["scratch", "dask"])
def test_zarr_in_object_store_to_object_store_matches_local_run(s3, stack, tmp_path, exchange):
    """Kept blocks and halo slabs in the object store (scratch), or halos as task results
    (dask, the default there): the same bytes as a local run."""
    image, tif, store = stack
    bucket = s3.bucket()
    s3.upload_folder(store, bucket, "in/stack.zarr")
    extra = {"image": "input", "table": {"format": "parquet", "intensity": "input"}}
    extra["report"] = True
    local = run(config(str(store), str(tmp_path / "local"), **extra))
    url = f"s3://{bucket}/runs/one"
    cfg = config(f"s3://{bucket}/in/stack.zarr", url, **extra)
    cfg["engine"]["halo_exchange"] = exchange
    remote = run(cfg)
    assert remote.count == local.count > 5
    got = s3.objects(bucket, "runs/one")
    want = local_files(tmp_path / "local")
    assert sorted(got) == sorted(want)
    assert _outputs(got) == _outputs(want)
    assert _table(got["nuclei.parquet"]) == _table(want["nuclei.parquet"])
    summary = json.loads(got["summary.json"])
    assert summary["labels"].startswith(url)
    assert summary["table"] == f"{url}/nuclei.parquet"
    assert not any(name.startswith("s3:") for name in os.listdir(os.getcwd()))


def test_local_input_to_object_store_then_found_finished(s3, stack, tmp_path):
    image, tif, _ = stack
    bucket = s3.bucket()
    url = f"s3://{bucket}/out"
    first = run(config(str(tif), url))
    again = run(config(str(tif), url))
    assert again.earlier and again.count == first.count
    labels = open_level(f"{url}/nuclei.ome.zarr", 0)
    run(config(str(tif), str(tmp_path / "local")))
    want = zarr.open_array(str(tmp_path / "local" / "nuclei.ome.zarr" / "0"), mode="r")
    np.testing.assert_array_equal(labels[:], want[:])
    assert ".journal" not in {k.split("/")[0] for k in s3.objects(bucket, "out")}


def test_missing_bucket_is_one_line(s3, stack):
    _, tif, _ = stack
    with pytest.raises(DataError, match=r"the bucket 'segpipe-no-such-bucket' does not exist"):
        run(config(str(tif), "s3://segpipe-no-such-bucket/out"))
    with pytest.raises(DataError, match=r"does not exist"):
        run(config("s3://segpipe-no-such-bucket/in.zarr", "out-never"))
    assert not os.path.exists("out-never")


def test_batch_of_object_store_inputs_into_object_store_prefixes(s3, stack, tmp_path):
    from pipeline.app.run import run_batch
    from pipeline.app.status import status

    _, _, store = stack
    bucket = s3.bucket()
    for name in ("a", "b"):
        s3.upload_folder(store, bucket, f"in/{name}.zarr")
    manifest = tmp_path / "inputs.csv"
    manifest.write_text(f"path\ns3://{bucket}/in/a.zarr\ns3://{bucket}/in/b.zarr\n")
    result = run_batch(config(str(manifest), f"s3://{bucket}/runs/{{name}}"))
    assert [r["status"] for r in result.rows] == ["done", "done"]
    objects = s3.objects(bucket, "runs")
    assert {"batch.csv", "a/summary.json", "b/summary.json"} <= set(objects)
    assert objects["a/nuclei.ome.zarr/0/zarr.json"] == objects["b/nuclei.ome.zarr/0/zarr.json"]
    found = status(f"s3://{bucket}/runs")
    assert found.batch and found.finished == 2
    assert not any(name.startswith("s3:") for name in os.listdir(tmp_path))


def test_ome_zarr_levels_read_from_the_object_store(s3, tmp_path):
    """A written image pyramid, read back from the store at level 1: the local level."""
    from pipeline.io.readers import open_source

    tif = tmp_path / "big.tif"
    tifffile.imwrite(tif, blobs((64, 128, 128), count=80))
    bucket = s3.bucket()
    for out in (f"s3://{bucket}/out", str(tmp_path / "local")):
        cfg = config(str(tif), out, image="input")
        cfg["input"]["chunks"] = [32, 64, 64]  # two pyramid levels
        run(cfg)

    remote = open_source(f"s3://{bucket}/out/image.ome.zarr", level=1)
    local = open_source(str(tmp_path / "local" / "image.ome.zarr"), level=1)
    assert remote.shape == local.shape and remote.spacing == local.spacing == (2.0, 2.0, 2.0)
    box = tuple((0, n) for n in local.shape)
    np.testing.assert_array_equal(remote.read(box), local.read(box))


def test_endpoint_and_keys_from_storage_options_only(s3, stack, monkeypatch):
    """No AWS_* variable at all: the config's storage options say where and who."""
    _, tif, _ = stack
    bucket = s3.bucket()
    settings = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    options = {"endpoint_url": s3.endpoint, "key": settings["AWS_ACCESS_KEY_ID"],
               "secret": settings["AWS_SECRET_ACCESS_KEY"], "region": "us-east-1"}  # fmt: skip
    cfg = config(str(tif), f"s3://{bucket}/out")
    cfg["output"]["storage_options"] = options
    result = run(cfg)
    assert result.count > 5
    summary = json.loads(s3.objects(bucket, "out")["summary.json"])
    assert summary["config"]["output"]["storage_options"]["secret"] == "<hidden>"


def test_worker_processes_get_the_config_storage_options(s3, stack, tmp_path, monkeypatch):
    """No AWS_* setting anywhere: the processes scheduler's worker processes write to the
    store with the config's options, which the run hands them: the same bytes."""
    _, tif, _ = stack
    bucket = s3.bucket()
    keys = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    cfg = config(str(tif), f"s3://{bucket}/out")
    cfg["output"]["storage_options"] = {
        "endpoint": s3.endpoint, "access_key_id": keys["AWS_ACCESS_KEY_ID"],
        "secret_access_key": keys["AWS_SECRET_ACCESS_KEY"], "region": "us-east-1",
    }  # fmt: skip
    cfg["engine"] = {"scheduler": "processes", "workers": 2, "halo_exchange": "scratch"}
    run(cfg)
    local = run(config(str(tif), str(tmp_path / "local")))
    got = s3.objects(bucket, "out")
    want = local_files(tmp_path / "local")
    assert _outputs(got) == _outputs(want) and local.count > 5


def test_glob_of_stores_in_a_bucket_is_a_batch(s3, stack, tmp_path):
    from pipeline.app.run import run_batch
    from pipeline.io.inputs import batch_inputs

    _, _, store = stack
    bucket = s3.bucket()
    for name in ("p2", "p10", "other"):
        s3.upload_folder(store, bucket, f"plates/{name}.zarr")
    found = batch_inputs(f"s3://{bucket}/plates/p*.zarr")
    assert [(i.name, i.path) for i in found] == [
        ("p2", f"s3://{bucket}/plates/p2.zarr"), ("p10", f"s3://{bucket}/plates/p10.zarr")
    ]  # fmt: skip
    result = run_batch(config(f"s3://{bucket}/plates/p*.zarr", f"s3://{bucket}/out/{{name}}"))
    assert [r["name"] for r in result.rows] == ["p2", "p10"]
    with pytest.raises(DataError, match="is inside the input"):
        run_batch(config(f"s3://{bucket}/plates/p*.zarr", f"s3://{bucket}/plates/p2.zarr/x"))
    with pytest.raises(DataError, match="only the last part of a URL"):
        batch_inputs(f"s3://{bucket}/pl*/p2.zarr")


def test_the_object_store_example_config_runs(s3, tmp_path):
    """configs/object_store.yaml, its buckets replaced by the test server's."""
    from pathlib import Path

    from tests.input_files import write_ome_zarr_image

    config_file = Path(__file__).resolve().parents[2] / "configs" / "object_store.yaml"
    root = zarr.open_group(tmp_path / "embryo.ome.zarr", mode="w")
    write_ome_zarr_image(root, [blobs((48, 96, 96), count=50)], (1.0, 0.5, 0.5))
    bucket = s3.bucket()
    s3.upload_folder(tmp_path / "embryo.ome.zarr", bucket, "embryo.ome.zarr")
    sets = [f"input.path=s3://{bucket}/embryo.ome.zarr", f"output.path=s3://{bucket}/out",
            "input.chunks=[16,48,48]"]  # fmt: skip
    result = run(str(config_file), sets)
    assert result.count > 5
    assert {"summary.json", "nuclei.parquet", "image.ome.zarr/zarr.json"} <= set(
        s3.objects(bucket, "out")
    )
