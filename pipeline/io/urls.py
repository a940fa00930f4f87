"""Object-store URLs (``s3://bucket/key``, ``gs://``, ``az://``, ``https://``): telling them
from local paths, their parts, the ones segpipe reads and writes, and options shown
without their secrets."""

from __future__ import annotations

import re

from pipeline.errors import DataError

SCHEMES = ("s3", "gs", "az", "https", "http")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
SECRET_PARTS = ("secret", "token", "password", "key", "sas", "credential", "signature")
HIDDEN = "<hidden>"


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path (``file://``
    URLs are local paths)."""
    if not isinstance(path, str):
        return False
    m = _URL.match(path)
    return m is not None and m.group(1).lower() != "file"


def local_path(path: str) -> str:
    """``path`` without a ``file://`` prefix."""
    return path[len("file://") :] if path.lower().startswith("file://") else path


def split(url: str) -> tuple[str, str, str]:
    """``(scheme, bucket or host, key)`` of ``url``."""
    scheme, rest = url.split("://", 1)
    bucket, _, key = rest.partition("/")
    return scheme.lower(), bucket, key.strip("/")


def check_url(url: str, key: str) -> None:
    """Refuse a URL segpipe cannot read or write: an unknown scheme, no bucket."""
    scheme, bucket, _ = split(url)
    if scheme not in SCHEMES:
        raise DataError(
            f"{key} {url}: expected a local path or an s3://, gs://, az:// or https:// URL, "
            f"got {scheme}://"
        )
    if not bucket:
        raise DataError(f"{key} {url}: expected a bucket (or host) after {scheme}://")


def check_output_url(url: str, key: str) -> None:
    """Refuse a URL outputs cannot be written to: as :func:`check_url`, and HTTP(S)
    servers (read only) and a bucket's root (a run replaces what it wrote there)."""
    check_url(url, key)
    scheme, _, prefix = split(url)
    if scheme in ("http", "https"):
        raise DataError(
            f"{key} {url}: HTTP(S) servers are read from only; write to s3://, gs:// or az://"
        )
    if not prefix:
        raise DataError(f"{key} {url}: is a bucket's root; name a prefix for the outputs")


def join(url: str, *names: str) -> str:
    """``url`` with ``names`` appended, one ``/`` between each."""
    return "/".join([url.rstrip("/"), *(n.strip("/") for n in names if n)])


def hidden(options: dict | None) -> dict | None:
    """``options`` with the value of every key that may hold a secret replaced."""
    if options is None:
        return None
    return {k: HIDDEN if is_secret(k) else v for k, v in options.items()}


def is_secret(name: str) -> bool:
    """Whether an option named ``name`` may hold a secret."""
    return any(part in name.lower() for part in SECRET_PARTS)
