"""Object stores that say no: a bucket that does not exist, no credentials, a 403, options
the store does not know. Each is one ``error:`` line and exit code 3, no local folder
named after the URL, and no secret in what segpipe writes or prints."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from pipeline.cli import main
from tests.object_store import S3Server

SECRET = "not-a-real-secret-8f3e2a"


def write_config(root: Path, out: str, input_path: str = "img.tif", **sections) -> str:
    cfg = {
        "input": {"path": input_path},
        "steps": {"mask": {"op": "threshold", "method": "otsu"}, "objects": {"op": "label"}},
        "output": {"path": out, "labels": "objects"},
    }
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values}
    (root / "run.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(root / "run.yaml")


@pytest.fixture
def work(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    img = rng.normal(100, 10, (8, 32, 32))
    img[2:6, 8:20, 8:20] += 400
    tifffile.imwrite(tmp_path / "img.tif", img.astype(np.uint16))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_error_line(argv: list[str], capsys, pattern: str, code: int = 3) -> str:
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == code, (out, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and re.search(pattern, lines[0]), lines[0]
    assert SECRET not in out + err
    return lines[0]


def no_url_folder(root: Path) -> None:
    for _, folders, files in os.walk(root):
        assert not any(n.startswith(("s3:", "gs:", "az:", "https:")) for n in folders + files)


def test_bucket_that_does_not_exist(s3, work, capsys):
    cfg = write_config(work, "s3://segpipe-missing-bucket/out")
    one_error_line(["run", cfg], capsys, r"bucket 'segpipe-missing-bucket' does not exist")
    cfg = write_config(work, "out", input_path="s3://segpipe-missing-bucket/in.zarr")
    one_error_line(["run", cfg], capsys, r"bucket 'segpipe-missing-bucket' does not exist")
    no_url_folder(work)
    assert not (work / "out").exists()


def test_no_credentials(s3, work, capsys, monkeypatch):
    bucket = s3.bucket()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to find
    cfg = write_config(work, f"s3://{bucket}/out")
    one_error_line(["run", cfg], capsys, r"no credentials for the object store: set AWS_")
    assert s3.objects(bucket) == {}
    no_url_folder(work)


def test_profile_from_the_aws_files_is_used(s3, work, capsys, monkeypatch, tmp_path):
    bucket = s3.bucket()
    keys = {n: os.environ[n] for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    for name in keys:
        monkeypatch.delenv(name)
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[lab]\naws_access_key_id = {keys['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {keys['AWS_SECRET_ACCESS_KEY']}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_PROFILE", "lab")
    assert main(["run", write_config(work, f"s3://{bucket}/out")]) == 0
    monkeypatch.delenv("AWS_PROFILE")  # (the test's own client has its keys)
    assert "summary.json" in s3.objects(bucket, "out")


@pytest.fixture(scope="module")
def guarded_server():
    """A second server that checks credentials: a user with keys and no permissions."""
    server = S3Server(auth=True, open_actions=3)
    server.client().create_bucket(Bucket="segpipe-guarded")
    iam = server.client("iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    yield server, key
    server.stop()


def test_forbidden_is_one_line_without_the_secret(guarded_server, s3, work, capsys, monkeypatch):
    server, key = guarded_server
    for name, value in server.env(key["AccessKeyId"], key["SecretAccessKey"]).items():
        monkeypatch.setenv(name, value)
    cfg = write_config(work, "s3://segpipe-guarded/out")
    line = one_error_line(["run", cfg], capsys, r"refused access \(403 AccessDenied")
    assert key["SecretAccessKey"] not in line
    # wrong secret given in the config: refused, and never shown
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    options = {"secret_access_key": SECRET}
    cfg = write_config(work, "s3://segpipe-guarded/out", output={"storage_options": options})
    one_error_line(["run", cfg], capsys, r"refused access \(403 SignatureDoesNotMatch")
    no_url_folder(work)


def test_unknown_storage_option(s3, work, capsys):
    bucket = s3.bucket()
    options = {"endpoint_ur": "http://localhost"}
    cfg = write_config(work, f"s3://{bucket}/out", output={"storage_options": options})
    one_error_line(["run", cfg], capsys, r"storage_options: unknown option 'endpoint_ur'")


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("ftp://host/out", r"expected a local path or an s3://, gs://, az:// or https:// URL"),
        ("https://example.org/out", r"HTTP\(S\) servers are read from only"),
        ("s3://{bucket}", r"is a bucket's root"),
        ("s3://{bucket}/in.zarr/labels", r"is inside the input s3://"),
    ],
)
def test_output_places_refused(s3, work, capsys, out, message):
    import zarr

    bucket = s3.bucket()
    zarr.create_array(work / "in.zarr", shape=(8, 32, 32), chunks=(8, 32, 32), dtype="u2")
    s3.upload_folder(work / "in.zarr", bucket, "in.zarr")
    cfg = write_config(work, out.format(bucket=bucket), input_path=f"s3://{bucket}/in.zarr")
    one_error_line(["run", cfg], capsys, message)
    no_url_folder(work)


def test_secrets_are_hidden_in_the_summary(s3, work, capsys):
    bucket = s3.bucket()
    options = {
        "access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
        "secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
        "region": "us-east-1",
    }
    cfg = write_config(work, f"s3://{bucket}/out", output={"storage_options": options})
    assert main(["run", cfg]) == 0
    text = s3.objects(bucket, "out")["summary.json"].decode()
    shown = json.loads(text)["config"]["output"]["storage_options"]
    assert shown == {"access_key_id": "<hidden>", "secret_access_key": "<hidden>",
                     "region": "us-east-1"}  # fmt: skip
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in text
