"""Azure Blob Storage (``az://container/prefix``) through Azurite, Microsoft's emulator on
loopback: the same outputs as a local run, Zarr inputs read from a container, and a
container that does not exist named in one line."""

from __future__ import annotations

import os

import pytest
import tifffile
import zarr

from pipeline.app.run import run
from pipeline.errors import DataError
from pipeline.io import storage, storage_options
from tests.app.test_object_storage import VARYING, _table, blobs, config
from tests.object_store import AzuriteServer, local_files


@pytest.fixture(scope="module")
def azurite_server(tmp_path_factory):
    server = AzuriteServer(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture
def azurite(azurite_server, monkeypatch):
    for name in [n for n in os.environ if n.startswith(("AZURE_", "AZURITE_"))]:
        monkeypatch.delenv(name)
    for name, value in azurite_server.env().items():
        monkeypatch.setenv(name, value)
    storage.forget_clients()
    storage_options.forget()
    yield azurite_server
    storage.forget_clients()
    storage_options.forget()


def test_azure_in_and_out_match_a_local_run(azurite, tmp_path):
    image = blobs()
    store = tmp_path / "stack.zarr"
    arr = zarr.create_array(store, shape=image.shape, chunks=(16, 48, 48), dtype=image.dtype)
    arr[:] = image
    container = azurite.container()
    azurite.upload_folder(store, container, "in/stack.zarr")
    extra = {"image": "input", "table": {"format": "parquet", "intensity": "input"}}
    local = run(config(str(store), str(tmp_path / "local"), **extra))
    remote = run(config(f"az://{container}/in/stack.zarr", f"az://{container}/out", **extra))
    assert remote.count == local.count > 5
    got, want = azurite.objects(container, "out"), local_files(tmp_path / "local")
    assert sorted(got) == sorted(want)
    assert {k: v for k, v in got.items() if k not in VARYING} == {
        k: v for k, v in want.items() if k not in VARYING
    }
    assert _table(got["nuclei.parquet"]) == _table(want["nuclei.parquet"])


def test_missing_container_is_one_line(azurite, tmp_path):
    tif = tmp_path / "a.tif"
    tifffile.imwrite(tif, blobs())
    with pytest.raises(DataError, match=r"the container 'segpipe-absent' does not exist"):
        run(config(str(tif), "az://segpipe-absent/out"))
