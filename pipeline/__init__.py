"""segpipe: exact, chunked segmentation of image volumes larger than memory.

>>> import pipeline
>>> result = pipeline.run("configs/demo.yaml")  # doctest: +SKIP
>>> result.count  # doctest: +SKIP
"""

from pipeline.api import RunResult, run

__all__ = ["RunResult", "run"]
