"""segpipe: exact, chunked segmentation of image volumes larger than memory.

>>> import pipeline
>>> result = pipeline.run("configs/demo.yaml")  # doctest: +SKIP
>>> result.count  # doctest: +SKIP
"""

from pipeline.engine.allocator import limit_arenas

# Before any thread allocates: glibc fixes the arena limit when the first extra arena is made.
limit_arenas()

from pipeline.api import RunResult, run  # noqa: E402

__all__ = ["RunResult", "run"]
