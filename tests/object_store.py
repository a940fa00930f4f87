"""An S3-compatible server on loopback (moto's server mode, in its own process) for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(process: subprocess.Popen, port: int, what: str, seconds: float = 60) -> None:
    """Wait until ``process`` listens on loopback ``port`` (RuntimeError: it ended, or did
    not within ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


class S3Server:
    """``python -m moto.server`` on a free loopback port; ``auth``: requests are checked
    against the server's IAM users (the first ``open_actions`` requests are not)."""

    def __init__(self, auth: bool = False, open_actions: int = 0) -> None:
        pytest.importorskip("moto.server", reason="moto[server] is not installed")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        if auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(open_actions)
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.process, self.port, "the moto server")

    def env(self, key: str = "testing", secret: str = "testing-secret") -> dict[str, str]:
        """The environment a client of this server runs with."""
        return {
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self, service: str = "s3", **env):
        import boto3

        settings = self.env(**env)
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
        )

    def bucket(self, prefix: str = "segpipe") -> str:
        """A new, empty bucket's name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object below ``prefix`` (key relative to it) and its bytes."""
        s3 = self.client()
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                out[obj["Key"][len(prefix) :].lstrip("/")] = body
        return out

    def upload_folder(self, folder, bucket: str, prefix: str) -> None:
        """Copy a local folder's files to ``s3://bucket/prefix/``."""
        s3 = self.client()
        for root, _, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                key = f"{prefix}/{os.path.relpath(path, folder)}"
                with open(path, "rb") as fh:
                    s3.put_object(Bucket=bucket, Key=key, Body=fh.read())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def local_files(folder) -> dict[str, bytes]:
    """Every file below ``folder`` (path relative to it, with ``/``) and its bytes."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder).replace(os.sep, "/")] = fh.read()
    return out


AZURITE = Path(__file__).resolve().parents[1] / ".cache" / "npm" / "node_modules" / ".bin"
# Azurite's one account, with the key it publishes for everyone
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class AzuriteServer:
    """Azurite's blob service (Microsoft's Azure Storage emulator, from npm, installed by
    the Makefile into .cache/npm) on a free loopback port."""

    def __init__(self, folder: Path) -> None:
        exe = AZURITE / "azurite-blob"
        if not exe.exists():
            pytest.skip(f"Azurite is not installed ({exe}; `make test` installs it with npm)")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        cmd = [str(exe), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
               "--location", str(folder), "--silent", "--skipApiVersionCheck"]  # fmt: skip
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.process, self.port, "Azurite")

    def env(self) -> dict[str, str]:
        return {
            "AZURE_STORAGE_USE_EMULATOR": "true",
            "AZURITE_BLOB_STORAGE_URL": self.endpoint,
        }

    def _service(self):
        from azure.storage.blob import BlobServiceClient

        url = f"{self.endpoint}/{AZURITE_ACCOUNT}"
        return BlobServiceClient(url, credential={"account_name": AZURITE_ACCOUNT,
                                                  "account_key": AZURITE_KEY})  # fmt: skip

    def container(self) -> str:
        """A new, empty container's name."""
        name = f"segpipe-{uuid.uuid4().hex[:12]}"
        self._service().create_container(name)
        return name

    def upload_folder(self, folder, container: str, prefix: str) -> None:
        client = self._service().get_container_client(container)
        for root, _, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as fh:
                    client.upload_blob(f"{prefix}/{os.path.relpath(path, folder)}", fh)

    def objects(self, container: str, prefix: str = "") -> dict[str, bytes]:
        client = self._service().get_container_client(container)
        out = {}
        for blob in client.list_blobs(name_starts_with=prefix):
            data = client.download_blob(blob.name).readall()
            out[blob.name[len(prefix) :].lstrip("/")] = data
        return out

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
