"""segpipe: exact, chunked segmentation of image volumes larger than memory.

>>> import pipeline
>>> result = pipeline.run("configs/demo.yaml")  # doctest: +SKIP
>>> result.count  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed_version

from pipeline.app import BatchResult, RunResult, dry_run, run, run_batch, run_block

try:
    __version__ = _installed_version("segpipe")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["BatchResult", "RunResult", "__version__", "dry_run", "run", "run_batch", "run_block"]
