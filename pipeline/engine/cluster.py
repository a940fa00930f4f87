"""Where the tasks run: local threads, or a Dask cluster (local, existing, or batch jobs).

The cluster is described by a plain mapping with one of these keys (the config's
``cluster:`` section): ``local`` (a LocalCluster on this machine), ``address`` or
``scheduler_file`` (an existing scheduler), ``jobqueue`` (SLURM, PBS or LSF jobs through
dask-jobqueue). Without one, the engine runs on threads in this process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dask
import dask.local
import dask.threaded

from pipeline.errors import ConfigError, DataError

JOBQUEUE_CLASSES = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "lsf": "LSFCluster"}
# Keys of the jobqueue section that are not keyword arguments of the cluster class.
JOBQUEUE_OWN = ("system", "jobs", "adapt")


def jobqueue_cluster(spec: dict):
    """A dask-jobqueue cluster for ``spec`` (no jobs submitted yet).

    Only the keys given are passed, so the site's ``jobqueue.yaml`` (Dask config
    ``jobqueue.<system>.*``) supplies everything else.
    """
    import dask_jobqueue

    cls = getattr(dask_jobqueue, JOBQUEUE_CLASSES[spec["system"]])
    kwargs = {k: v for k, v in spec.items() if k not in JOBQUEUE_OWN and v is not None}
    kwargs.setdefault("scheduler_options", {"dashboard_address": ":0"})
    try:
        cluster = cls(**kwargs)
    except (ValueError, TypeError) as exc:  # dask-jobqueue's word on missing or bad settings
        raise ConfigError(f"cluster.jobqueue: {str(exc).splitlines()[0]}") from None
    job = cluster._dummy_job
    if job.worker_process_threads < 1:  # the site's cores with the config's processes
        cluster.close()
        raise ConfigError(
            f"cluster.jobqueue: {job.worker_processes} worker processes on "
            f"{job.worker_cores} cores gives each none: set processes to at most cores"
        )
    return cluster


def job_script(spec: dict) -> str:
    """The batch script each worker job of a ``jobqueue`` cluster would be submitted with."""
    cluster = jobqueue_cluster(spec)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def _local_cluster(spec: dict):
    from distributed import LocalCluster

    kwargs = {
        "n_workers": spec.get("workers"),
        "threads_per_worker": spec.get("threads_per_worker") or 1,
        "memory_limit": spec.get("memory_limit") or "auto",
        "local_directory": spec.get("local_directory"),
        "dashboard_address": ":0" if spec.get("dashboard", True) else None,
        "processes": True,
    }
    return LocalCluster(**{k: v for k, v in kwargs.items() if v is not None})


@contextmanager
def connect(spec: dict | None, announce: Callable[[str], None] | None = None) -> Iterator:
    """The scheduler ``get`` function of the cluster ``spec`` describes (None: threads).

    Starts (and afterwards stops) a LocalCluster or the batch jobs; connects to an
    existing scheduler without stopping it. ``announce`` gets the dashboard link.
    """
    if not spec or not {"local", "address", "scheduler_file", "jobqueue"} & set(spec):
        yield None
        return
    from distributed import Client

    announce = announce or (lambda line: print(line, file=sys.stderr))
    cluster = None
    try:
        if "address" in spec:
            client = Client(spec["address"], timeout=spec.get("timeout", 30))
        elif "scheduler_file" in spec:
            if not os.path.exists(spec["scheduler_file"]):
                raise OSError("no such file")
            client = Client(scheduler_file=spec["scheduler_file"], timeout=spec.get("timeout", 30))
        elif "local" in spec:
            cluster = _local_cluster(spec["local"])
            client = Client(cluster)
        else:
            jq = spec["jobqueue"]
            cluster = jobqueue_cluster(jq)
            if jq.get("adapt"):
                cluster.adapt(**jq["adapt"])
            else:
                cluster.scale(jobs=jq.get("jobs") or 1)
            client = Client(cluster)
    except (OSError, TimeoutError, ValueError, TypeError, AssertionError) as exc:
        # an unreachable scheduler, a missing or unreadable scheduler file, a bad address
        if cluster is not None:
            cluster.close()
        where = spec.get("address") or spec.get("scheduler_file") or "the cluster"
        raise DataError(f"cluster: cannot connect to {where}: {exc}") from None
    try:
        from pipeline.engine.worker_plugin import ArenaLimit, StorageOptions
        from pipeline.io import storage

        client.register_plugin(ArenaLimit(), name="segpipe-arena-limit")
        if storage.registered():
            client.register_plugin(StorageOptions(storage.registered()), name="segpipe-storage")
        if client.dashboard_link:
            announce(f"dashboard: {client.dashboard_link}")
        yield _client_get(client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _client_get(client) -> Callable:
    """``client.get`` with the local schedulers' signature (their options dropped)."""

    def get(dsk, keys, num_workers=None, **_):
        return client.get(dsk, keys)

    get.client = client  # results stay on the workers (see waves.compute_in_waves)
    return get


def cluster_client(get: Callable):
    """The distributed Client whose tasks ``get`` runs (None: ``get`` runs them here)."""
    client = getattr(get, "client", None)
    if client is None:
        owner = getattr(get, "__self__", None)
        if type(owner).__module__.startswith("distributed"):
            client = owner
    return client


def runs_here(get: Callable) -> bool:
    """Whether ``get`` runs tasks in this process (threads, or one after another)."""
    return get is dask.threaded.get or get is dask.local.get_sync


def scheduler_get(scheduler) -> Callable:
    """The ``get`` function for ``scheduler`` (a get function, a scheduler name or None).

    A named local scheduler ("threads", "sync", ...) is looked up directly: asking Dask
    imports distributed (a noticeable start-up cost) only to find that the name wins over
    any Client.
    Without a name, an active distributed Client wins; otherwise threads (the kernels
    release the GIL). Without distributed imported there is no Client to look for.
    """
    if callable(scheduler):
        return scheduler
    name = scheduler if scheduler is not None else dask.config.get("scheduler", None)
    if isinstance(name, str) and name.lower() in dask.base.named_schedulers:
        return dask.base.named_schedulers[name.lower()]
    if name is not None or "distributed" in sys.modules:
        return dask.base.get_scheduler(scheduler=name) or dask.threaded.get
    return dask.threaded.get
