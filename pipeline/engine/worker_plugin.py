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
