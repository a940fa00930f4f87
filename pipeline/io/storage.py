"""Object storage: S3, Google Cloud Storage, Azure Blob Storage and HTTPS, through obstore.

A location is a URL (``s3://bucket/key``, ``gs://``, ``az://``, ``https://``). Each process
makes its own client per bucket, the first time it touches one, from the standard
settings of that store (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
``AWS_ENDPOINT_URL``, ``AWS_PROFILE`` and ``~/.aws`` files; ``GOOGLE_APPLICATION_CREDENTIALS``;
``AZURE_STORAGE_ACCOUNT_NAME`` ...) and the ``storage_options`` a config gives for a
location, which :func:`register` records for every process of a run (see
:mod:`pipeline.io.storage_options`). Errors become one line naming the location, never a
secret.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator

from pipeline.errors import DataError, first_line
from pipeline.io.storage_options import ENV, adopt, known_secrets, options_for, register, registered
from pipeline.io.urls import (
    HIDDEN,
    SCHEMES,
    check_output_url,
    check_url,
    hidden,
    is_url,
    join,
    local_path,
    split,
)

# The URL helpers and the options of each location, offered here too (storage.is_url,
# storage.register, ...).
__all__ = [
    "ENV",
    "HIDDEN",
    "adopt",
    "register",
    "registered",
    "SCHEMES",
    "check_output_url",
    "check_url",
    "hidden",
    "is_url",
    "join",
    "local_path",
    "split",
]

# storage_options as fsspec spells them, and obstore's name for each
ALIASES = {
    "endpoint_url": "endpoint",
    "anon": "skip_signature",
    "key": "access_key_id",
    "secret": "secret_access_key",
    "token": "session_token",
    "region_name": "region",
}
CLIENT_OPTIONS = (
    "allow_http",
    "allow_invalid_certificates",
    "root_certificate",  # PEM text, or a PEM file: a private CA (a lab's MinIO)
    "timeout",
    "connect_timeout",
    "read_timeout",
    "proxy_url",
    "proxy_ca_certificate",
    "proxy_excludes",
    "user_agent",
)


# -- clients ----------------------------------------------------------------------------

_STORES: dict[tuple, object] = {}
_LOCK = threading.Lock()


def _environment_endpoint() -> str | None:
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"):
        if os.environ.get(name):
            return os.environ[name]
    return None


def _settings(scheme: str, options: dict, where: str) -> dict:
    """The keyword arguments of ``obstore.store.from_url`` for ``options``."""
    config, client = {}, {}
    profile = None
    for name, value in options.items():
        name = ALIASES.get(name, name)
        if name == "profile":
            profile = value
        elif name in CLIENT_OPTIONS:
            client[name] = _certificate(value) if name.endswith("certificate") else value
        else:
            config[name] = value
    kwargs: dict = {"config": config, "client_options": client}
    if scheme == "http":  # plain HTTP, named as such
        client.setdefault("allow_http", True)
    emulated = str(os.environ.get("AZURE_STORAGE_USE_EMULATOR", "")).lower() in ("1", "true")
    if scheme == "az" and (config.get("use_emulator") or emulated):  # Azurite: plain HTTP
        client.setdefault("allow_http", True)
    if scheme != "s3":
        return kwargs
    endpoint = config.get("endpoint") or _environment_endpoint()
    if endpoint and str(endpoint).startswith("http://"):
        client.setdefault("allow_http", True)
    given = "access_key_id" in config or os.environ.get("AWS_ACCESS_KEY_ID")
    if not given and not config.get("skip_signature"):
        kwargs["credential_provider"] = _profile_credentials(profile, where)
        if "region" not in config and kwargs["credential_provider"].config.get("region"):
            config["region"] = kwargs["credential_provider"].config["region"]
    return kwargs


def _certificate(value) -> str:
    """A certificate option's PEM text (given as text, or as the path of a PEM file)."""
    text = str(value)
    if "-----BEGIN" in text:
        return text
    try:
        with open(text, encoding="ascii") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"storage_options: cannot read the certificate {text}: {exc}") from None


def _profile_credentials(profile: str | None, where: str):
    """Credentials from the AWS configuration files, a profile, or the machine's role,
    as the AWS tools find them."""
    import boto3
    import botocore.exceptions
    from obstore.auth.boto3 import Boto3CredentialProvider

    try:
        session = boto3.session.Session(profile_name=profile)
        found = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise DataError(f"{where}: cannot read the AWS settings: {first_line(exc)}") from None
    if found is None:
        raise DataError(
            f"{where}: no credentials for the object store: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, a profile (AWS_PROFILE or storage_options.profile), or "
            "storage_options: {anon: true} for a public bucket"
        )
    return Boto3CredentialProvider(session)


def _client(url: str, where: str, kind: tuple, make):
    """The client ``make(from_url, settings)`` makes with the options of ``url``, once per
    process for ``kind`` and those options; ``where`` names it in an error."""
    options = options_for(url)
    cache_key = (*kind, json.dumps(options, sort_keys=True, default=str))
    with _LOCK:
        store = _STORES.get(cache_key)
    if store is not None:
        return store
    from obstore.store import from_url

    try:
        store = make(from_url, _settings(split(url)[0], options, where))
    except DataError:
        raise
    except Exception as exc:
        raise failure(exc, where) from None
    with _LOCK:
        return _STORES.setdefault(cache_key, store)


def _store(url: str):
    """The obstore client of ``url``'s bucket (or host) in this process, and its key."""
    scheme, bucket, key = split(url)
    root = f"{scheme}://{bucket}"
    return _client(url, root, (root,), lambda open_, kw: open_(root, **kw)), key


def zarr_store(url: str, read_only: bool):
    """A ``zarr.storage.ObjectStore`` rooted at ``url`` (one per process and location)."""
    from zarr.storage import ObjectStore

    url = url.rstrip("/")

    def make(open_, settings):
        return ObjectStore(open_(url, **settings), read_only=read_only)

    return _client(url, url, ("zarr", url, read_only), make)


def forget_clients() -> None:
    """Drop this process's clients (new settings take effect with the next call)."""
    with _LOCK:
        _STORES.clear()


# -- objects ----------------------------------------------------------------------------


def read_bytes(url: str) -> bytes:
    """The object at ``url`` (FileNotFoundError: there is none)."""
    import obstore

    store, key = _store(url)
    try:
        return bytes(obstore.get(store, key).bytes())
    except Exception as exc:
        raise failure(exc, url) from None


def write_bytes(url: str, data: bytes | memoryview) -> None:
    """Write the object at ``url`` (whole or not at all: object stores put atomically)."""
    import obstore

    store, key = _store(url)
    try:
        obstore.put(store, key, data)
    except Exception as exc:
        raise failure(exc, url) from None


def size(url: str) -> int | None:
    """Bytes of the object at ``url`` (None: there is none)."""
    import obstore

    store, key = _store(url)
    try:
        return int(obstore.head(store, key)["size"])
    except Exception as exc:
        err = failure(exc, url)
        if isinstance(err, FileNotFoundError):
            return None
        raise err from None


def exists(url: str) -> bool:
    """Whether there is an object at ``url``."""
    return size(url) is not None


def children(url: str) -> tuple[list[str], list[str]]:
    """The names of the objects and of the "folders" (common prefixes) right below ``url``."""
    import obstore

    store, key = _store(url)
    prefix = key + "/" if key else None
    try:
        found = obstore.list_with_delimiter(store, prefix)
    except Exception as exc:
        err = failure(exc, url)
        if isinstance(err, FileNotFoundError):
            return [], []
        raise err from None
    files = [o["path"].rsplit("/", 1)[-1] for o in found["objects"]]
    folders = [p.rstrip("/").rsplit("/", 1)[-1] for p in found["common_prefixes"]]
    return files, folders


def join_path(base: str, *names: str) -> str:
    """``names`` below ``base``, a URL or a local path."""
    return join(base, *names) if is_url(base) else os.path.join(base, *names)


def file_exists(path: str) -> bool:
    """Whether the file (or object, for a URL) ``path`` is there."""
    return exists(path) if is_url(path) else os.path.exists(path)


def check_bucket(url: str) -> None:
    """A :class:`DataError` where ``url``'s bucket does not exist or may not be listed
    (plain HTTP(S) servers list nothing: not checked)."""
    if split(url)[0] not in ("http", "https"):
        children(url)


def walk(url: str) -> Iterator[tuple[str, int]]:
    """Every object below ``url``: its key relative to ``url`` and its size."""
    import obstore

    store, key = _store(url)
    prefix = key + "/" if key else None
    try:
        for batch in obstore.list(store, prefix, chunk_size=1000):
            for obj in batch:
                yield obj["path"][len(prefix or "") :], int(obj["size"])
    except Exception as exc:
        err = failure(exc, url)
        if not isinstance(err, FileNotFoundError):
            raise err from None


def remove(url: str) -> None:
    """Delete the object at ``url`` (none there: nothing happens)."""
    import obstore

    store, key = _store(url)
    try:
        obstore.delete(store, key)
    except Exception as exc:
        err = failure(exc, url)
        if not isinstance(err, FileNotFoundError):
            raise err from None


def remove_tree(url: str) -> None:
    """Delete every object below ``url``, and the object at ``url`` itself."""
    import obstore

    store, key = _store(url)
    keys = [join(key, name) for name, _ in walk(url)]
    try:
        for i in range(0, len(keys), 1000):
            obstore.delete(store, keys[i : i + 1000])
    except Exception as exc:
        err = failure(exc, url)
        if not isinstance(err, FileNotFoundError):
            raise err from None
    remove(url)


# -- errors -----------------------------------------------------------------------------


def _scrub(text: str) -> str:
    """``text`` without any secret this process knows of (options and environment)."""
    secrets = known_secrets()
    secrets += [os.environ.get(n, "") for n in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= 4:
            text = text.replace(secret, HIDDEN)
    return text


def failure(exc: BaseException, url: str) -> Exception:
    """The one-line error of a failed request for ``url``: FileNotFoundError where there
    is no such object, else a :class:`DataError` saying what the store answered."""
    from obstore import exceptions as ob

    body = str(exc)
    code = re.search(r"<Code>([^<]+)</Code>", body)
    message = re.search(r"<Message>([^<]+)</Message>", body)
    # (Azure's message goes on with its request id and time, a line each)
    said = (
        f"{code.group(1)}: {message.group(1).strip().splitlines()[0]}" if code and message else None
    )
    scheme, bucket, _ = split(url)
    missing = code and code.group(1) in ("NoSuchBucket", "ContainerNotFound")
    if missing or "bucket does not exist" in body.lower():
        kind = "container" if scheme == "az" else "bucket"
        return DataError(f"{url}: the {kind} {bucket!r} does not exist")
    if isinstance(exc, FileNotFoundError | ob.NotFoundError):
        return FileNotFoundError(url)
    if isinstance(exc, ob.PermissionDeniedError | ob.UnauthenticatedError) or " 403 " in body:
        why = said or "access denied"
        return DataError(
            _scrub(f"{url}: the object store refused access (403 {why}); check the credentials")
        )
    if isinstance(exc, ob.UnknownConfigurationKeyError):
        name = re.search(r"key: '([^']+)'", body)
        return DataError(
            f"{url}: storage_options: unknown option {name.group(1) if name else ''!r} "
            f"for {scheme}://"
        )
    if said:
        return DataError(_scrub(f"{url}: the object store answered {said}"))
    if isinstance(exc, DataError):
        return exc
    if "InvalidCertificate" in body or "invalid peer certificate" in body:
        return DataError(
            f"{url}: the server's TLS certificate is not trusted (for a private certificate "
            "authority, give storage_options.root_certificate: the CA's PEM file)"
        )
    reach = re.search(r"(error sending request|Connection refused|dns error|timed out)", body)
    if reach:
        return DataError(_scrub(f"{url}: cannot reach the object store ({reach.group(1)})"))
    return DataError(_scrub(f"{url}: {first_line(exc)}"))
