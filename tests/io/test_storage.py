"""Object-store access on a loopback S3 server: objects, listings, options per location,
paths that are never local, Zarr inputs over S3 and plain HTTP."""

from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest
import zarr

from pipeline.errors import DataError
from pipeline.io import storage, storage_options
from pipeline.io.locations import ObjectPath, location, staged, write_atomic
from pipeline.io.readers import open_source


def test_urls_and_local_paths():
    assert storage.is_url("s3://b/k") and storage.is_url("https://h/x.zarr")
    assert not storage.is_url("file:///tmp/x") and not storage.is_url("/tmp/x")
    assert storage.local_path("file:///tmp/x") == "/tmp/x"
    assert storage.split("s3://bucket/a/b/") == ("s3", "bucket", "a/b")
    assert isinstance(location("s3://b/out"), ObjectPath)
    assert not hasattr(ObjectPath("s3://b/x"), "__fspath__")  # never taken for a local path
    with pytest.raises(DataError, match="got ftp://"):
        storage.check_url("ftp://h/x", "input.path")
    with pytest.raises(DataError, match="a bucket's root"):
        storage.check_output_url("s3://bucket", "output.path")


def test_objects_listings_and_removal(s3):
    root = ObjectPath(f"s3://{s3.bucket()}/run")
    (root / "a.txt").write_text("one")
    (root / "sub" / "b.bin").write_bytes(b"\0\1")
    write_atomic(root / "c.json", b"{}")
    assert (root / "a.txt").read_text() == "one"
    assert root.is_dir() and not root.is_file() and (root / "a.txt").is_file()
    assert [p.name for p in root.iterdir()] == ["a.txt", "c.json", "sub"]
    assert (root / "sub").is_dir() and (root / "sub").exists()
    assert sorted(storage.walk(str(root))) == [("a.txt", 3), ("c.json", 2), ("sub/b.bin", 2)]
    with pytest.raises(FileNotFoundError):
        (root / "none").read_bytes()
    (root / "a.txt").replace(root / "d.txt")
    assert not (root / "a.txt").exists() and (root / "d.txt").read_text() == "one"
    root.rmtree()
    assert not root.exists() and list(root.iterdir()) == []


def test_staged_files_are_uploaded_on_success_only(s3):
    root = ObjectPath(f"s3://{s3.bucket()}/staged")
    with staged(root / "report") as folder:
        (folder / "page.html").write_text("<p>")
        (folder / "img").mkdir()
        (folder / "img" / "a.png").write_bytes(b"png")
    assert {k: v for k, v in s3.objects(root.url.split("/")[2], "staged").items()} == {
        "report/page.html": b"<p>",
        "report/img/a.png": b"png",
    }
    with pytest.raises(RuntimeError), staged(root / "failed") as folder:
        (folder / "x").write_text("x")
        raise RuntimeError
    assert not (root / "failed").exists()
    assert not folder.exists()  # the local copy is removed either way


def test_options_apply_to_their_location_and_below(s3):
    storage.register("s3://b/in", {"region": "eu-west-1"})
    storage.register("s3://b/in/deeper", {"region": "us-west-2"})
    assert storage.options_for("s3://b/in/x.zarr") == {"region": "eu-west-1"}
    assert storage.options_for("s3://b/in/deeper/y") == {"region": "us-west-2"}
    assert storage.options_for("s3://b/input-other") == {}
    snapshot = storage.registered()
    storage_options.forget()
    storage.adopt(snapshot)  # as a worker does (see engine.worker_plugin.StorageOptions)
    assert storage.options_for("s3://b/in/x") == {"region": "eu-west-1"}


def test_hidden_secrets():
    shown = storage.hidden({"secret": "x", "token": "y", "endpoint_url": "http://h", "anon": 1})
    assert shown == {"secret": "<hidden>", "token": "<hidden>", "endpoint_url": "http://h",
                     "anon": 1}  # fmt: skip


def _zarr_image(folder, v2: bool = False) -> np.ndarray:
    image = np.arange(20 * 30 * 40, dtype=np.uint16).reshape(20, 30, 40)
    fmt = {"zarr_format": 2} if v2 else {}
    arr = zarr.create_array(folder, shape=image.shape, chunks=(8, 16, 16), dtype="u2", **fmt)
    arr[:] = image
    return image


@pytest.mark.parametrize("v2", [False, True])
def test_zarr_read_lazily_from_s3(s3, tmp_path, v2):
    image = _zarr_image(tmp_path / "a.zarr", v2)
    bucket = s3.bucket()
    s3.upload_folder(tmp_path / "a.zarr", bucket, "a.zarr")
    src = open_source(f"s3://{bucket}/a.zarr")
    assert src.shape == image.shape and src.path == f"s3://{bucket}/a.zarr"
    np.testing.assert_array_equal(src.read(((3, 17), (0, 30), (5, 39))), image[3:17, :, 5:39])


def test_missing_chunk_of_a_remote_zarr_is_named(s3, tmp_path):
    _zarr_image(tmp_path / "a.zarr")
    bucket = s3.bucket()
    s3.upload_folder(tmp_path / "a.zarr", bucket, "a.zarr")
    s3.client().delete_object(Bucket=bucket, Key="a.zarr/c/1/0/0")
    src = open_source(f"s3://{bucket}/a.zarr")
    with pytest.raises(DataError, match=r"chunk c/1/0/0 is missing"):
        src.read(((0, 20), (0, 16), (0, 16)))


@pytest.fixture
def http_folder(tmp_path):
    """A plain HTTP server on loopback serving ``tmp_path``."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):  # a client that went away
            pass

    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = Quiet(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_zarr_read_over_http(tmp_path, http_folder):
    image = _zarr_image(tmp_path / "a.zarr")
    src = open_source(f"{http_folder}/a.zarr")
    np.testing.assert_array_equal(src.read(((0, 20), (10, 30), (0, 40))), image[:, 10:30])
    with pytest.raises(DataError, match="expected a Zarr or OME-Zarr store there"):
        open_source(f"{http_folder}/missing.zarr")


def test_bioformats2raw_series_and_levels_from_s3(s3, tmp_path):
    from tests.input_files import write_ome_zarr_image

    a = np.random.default_rng(0).integers(0, 255, (4, 32, 48)).astype(np.uint8)
    b = np.random.default_rng(1).integers(0, 4000, (3, 16, 16)).astype(np.uint16)
    root = zarr.open_group(tmp_path / "b2r.ome.zarr", mode="w")
    root.attrs["ome"] = {"version": "0.5", "bioformats2raw.layout": 3}
    write_ome_zarr_image(root.create_group("0"), [a, a[:, ::2, ::2]], (3.0, 0.5, 0.5))
    write_ome_zarr_image(root.create_group("1"), [b], (1.0, 0.2, 0.2))
    bucket = s3.bucket()
    s3.upload_folder(tmp_path / "b2r.ome.zarr", bucket, "b2r.ome.zarr")
    url = f"s3://{bucket}/b2r.ome.zarr"
    low = open_source(url, level=1)
    assert low.spacing == (3.0, 1.0, 1.0) and low.unit == "micrometer"
    np.testing.assert_array_equal(low.read(((0, 4), (0, 16), (0, 24))), a[:, ::2, ::2])
    second = open_source(url, series=1)
    np.testing.assert_array_equal(second.read(((0, 3), (0, 16), (0, 16))), b)
    with pytest.raises(DataError, match=r"input\.series: expected 0\.\.1, got 5"):
        open_source(url, series=5)


def _test_ca(folder) -> tuple[str, str, str]:
    """A certificate authority and a server certificate for 127.0.0.1 it signed (openssl)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (it makes the test's certificates)")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=segpipe test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return str(folder / "ca.pem"), str(folder / "srv.pem"), str(folder / "srv.key")


def test_zarr_read_over_https_with_a_private_ca(tmp_path):
    """An HTTPS server whose certificate a lab's own CA signed: trusted through
    storage_options.root_certificate (a PEM file), refused without it."""
    import ssl

    from pipeline.app.prepared import open_input
    from pipeline.config import load_config

    certs = tmp_path / "certs"
    certs.mkdir()
    ca, cert, key = _test_ca(certs)
    data = tmp_path / "data"
    image = _zarr_image(data / "a.zarr")

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass

    server = Quiet(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(data)))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/a.zarr"
    try:
        cfg = load_config({
            "input": {"path": url, "storage_options": {"root_certificate": ca,
                                                        "timeout": "5s"}},
            "steps": {"mask": {"op": "threshold", "method": "otsu"}},
            "output": {"path": str(tmp_path / "out"), "labels": "mask"},
        })  # fmt: skip
        src = open_input(cfg)
        np.testing.assert_array_equal(src.read(((0, 20), (0, 30), (0, 40))), image)
        storage_options.forget()
        storage.forget_clients()
        storage.register(url, {"timeout": "5s", "connect_timeout": "2s"})
        with pytest.raises(DataError, match="TLS certificate is not trusted"):
            open_source(url)  # the CA is not trusted
    finally:
        server.shutdown()
        server.server_close()
        storage_options.forget()
        storage.forget_clients()
