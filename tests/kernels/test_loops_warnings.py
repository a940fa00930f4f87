"""The compiled loops' C sources build without a single warning.

Each ``pipeline/kernels/_loops*.c`` is compiled on its own, with the compiler Python was
built with, under ``-Wall -Wextra -Werror``: a warning there (an uninitialised value, an
unused parameter, a comparison that is always true) fails the test suite, not only
``make lint``. setup.py keeps building the extension as an optional one, so an install
on a compiler that warns differently still works.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest

KERNELS = Path(__file__).resolve().parents[2] / "pipeline" / "kernels"
SOURCES = sorted(KERNELS.glob("_loops*.c"))
# -O2: the uninitialised-use warnings come from the optimiser's data flow (-O0 has none);
# -ffp-contract=off as setup.py builds the loops
FLAGS = ["-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-O2", "-c"]


def compiler() -> list[str] | None:
    """The C compiler command Python's extensions are built with (``cc`` where Python
    names none), as an argument list; None where it is not installed."""
    command = shlex.split(sysconfig.get_config_var("CC") or "") or ["cc"]
    if shutil.which(command[0]) is None:
        return None
    return command


def include_flags() -> list[str]:
    """``-I`` for Python's headers (both its include dirs, where they differ) and numpy's."""
    paths = sysconfig.get_paths()
    dirs = dict.fromkeys([paths["include"], paths["platinclude"], np.get_include()])
    return [f"-I{d}" for d in dirs]


def test_the_sources_are_found():
    names = {p.stem for p in SOURCES}
    assert {"_loops", "_loops_buffers", "_loops_ccl", "_loops_gaussian", "_loops_labels"} <= names


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_compiles_without_warnings(source: Path, tmp_path: Path):
    command = compiler()
    if command is None:
        pytest.skip("no C compiler found (sysconfig CC or cc): the loops are not built here")
    cmd = [*command, *FLAGS, *include_flags(), str(source), "-o", str(tmp_path / "loops.o")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, (
        f"{shlex.join(cmd)}\nexited {done.returncode}:\n{done.stdout}{done.stderr}"
    )
