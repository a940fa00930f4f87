"""Build the compiled block loops (metadata lives in pyproject.toml).

The loops must do exactly scipy's and numpy's floating-point operations, so the
compiler may not fuse a multiply and an add into one instruction. Where the extension
cannot be built, segpipe installs without it and uses scipy and numpy instead.
"""

import sys

from setuptools import Extension, setup

LOOPS = ("_loops", "_loops_buffers", "_loops_ccl", "_loops_gaussian", "_loops_labels")
NO_FUSED_MULTIPLY_ADD = ["/fp:precise"] if sys.platform == "win32" else ["-ffp-contract=off"]

setup(
    ext_modules=[
        Extension(
            "pipeline.kernels._loops",
            [f"pipeline/kernels/{name}.c" for name in LOOPS],
            depends=["pipeline/kernels/_loops.h"],
            extra_compile_args=NO_FUSED_MULTIPLY_ADD,
            optional=True,
        )
    ]
)
