"""What each Dask worker of a run sets up when it starts (imports distributed: loaded
only when a run connects to a cluster)."""

from __future__ import annotations

from distributed import WorkerPlugin


class ArenaLimit(WorkerPlugin):
    """Caps the C allocator's arenas in each worker process (see
    :func:`pipeline.engine.allocator.limit_arenas`), workers that join later included."""

    def setup(self, worker) -> None:
        from pipeline.engine.allocator import limit_arenas

        limit_arenas()


class StorageOptions(WorkerPlugin):
    """Gives each worker the storage options of the run's object-store locations (see
    :func:`pipeline.io.storage.register`), workers that join later included."""

    def __init__(self, snapshot: dict[str, dict]) -> None:
        self.snapshot = snapshot

    def __repr__(self) -> str:  # the options may hold secrets
        return f"StorageOptions({len(self.snapshot)} locations)"

    def setup(self, worker) -> None:
        from pipeline.io import storage

        storage.adopt(self.snapshot)
