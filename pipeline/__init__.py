"""segpipe: exact, chunked segmentation of image volumes larger than memory.

>>> import pipeline
>>> result = pipeline.run("configs/demo.yaml")  # doctest: +SKIP
>>> result.count  # doctest: +SKIP
"""

from pipeline.app import BatchResult, RunResult, dry_run, run, run_batch, run_block

__all__ = ["BatchResult", "RunResult", "dry_run", "run", "run_batch", "run_block"]
