"""The storage options of each object-store location, in every process of a run.

A config's ``storage_options`` apply to its input, its output and what lies below them;
:func:`register` records them in this process and, through the environment, in the
processes it starts; :func:`registered` and :func:`adopt` carry them to the workers of a
Dask cluster (see :class:`pipeline.engine.worker_plugin.StorageOptions`).
"""

from __future__ import annotations

import json
import os
import threading

from pipeline.io.urls import is_secret

ENV = "SEGPIPE_STORAGE_OPTIONS"  # the registered options, for processes a run starts


_REGISTRY: dict[str, dict] = {}
_LOCK = threading.Lock()


def register(url: str, options: dict | None) -> None:
    """Use ``options`` (storage_options) for ``url`` and everything below it, in this
    process and in the processes it starts (through the environment, see :data:`ENV`)."""
    with _LOCK:
        _REGISTRY[url.rstrip("/")] = dict(options or {})
        os.environ[ENV] = json.dumps(_REGISTRY)


def registered() -> dict[str, dict]:
    """Every location's options registered in this process (for :func:`adopt`)."""
    _from_environment()
    with _LOCK:
        return {k: dict(v) for k, v in _REGISTRY.items()}


def adopt(snapshot: dict[str, dict]) -> None:
    """Register the locations of :func:`registered` (in a worker process)."""
    with _LOCK:
        _REGISTRY.update({k: dict(v) for k, v in snapshot.items()})


def _from_environment() -> None:
    text = os.environ.get(ENV)
    if not text or _REGISTRY:
        return
    try:
        given = json.loads(text)
    except ValueError:
        return
    if isinstance(given, dict):
        adopt({k: v for k, v in given.items() if isinstance(v, dict)})


def options_for(url: str) -> dict:
    """The options of the longest registered location holding ``url`` (none: {})."""
    _from_environment()
    best, found = -1, {}
    with _LOCK:
        for prefix, options in _REGISTRY.items():
            if (url == prefix or url.startswith(prefix + "/")) and len(prefix) > best:
                best, found = len(prefix), options
    return dict(found)


def known_secrets() -> list[str]:
    """The values of every registered option that may hold a secret."""
    with _LOCK:
        return [v for o in _REGISTRY.values() for k, v in o.items() if is_secret(k) and v]


def forget() -> None:
    """Forget every registered location (here and in the environment)."""
    with _LOCK:
        _REGISTRY.clear()
        os.environ.pop(ENV, None)
