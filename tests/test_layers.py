"""The package's layers and its one use of private Dask API.

The layer contracts live in pyproject.toml (``[tool.importlinter]``): cli -> app ->
config | engine -> graph -> io -> ops -> measure | kernels -> errors, and Dask only in
the engine. ``lint-imports`` checks them on the import graph (indirect imports included);
the tests here run it, and check by reading the sources what it cannot see.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "pipeline"


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_import_contracts_are_kept():
    linter = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if linter is None:
        pytest.skip("import-linter is not installed (the test extra installs it)")
    done = subprocess.run(
        [linter, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_private_dask_task_spec_only_in_taskspec():
    users = sorted(
        str(p.relative_to(ROOT))
        for p in PKG.rglob("*.py")
        if any(n == "dask._task_spec" or n.startswith("dask._task_spec.") for n in imports(p))
    )
    assert users == ["pipeline/engine/taskspec.py"]


def test_dask_only_in_engine():
    bad = []
    for path in PKG.rglob("*.py"):
        if "engine" in path.relative_to(PKG).parts[:1]:
            continue
        for name in imports(path):
            if name.split(".")[0] in ("dask", "distributed", "dask_jobqueue"):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_importing_pipeline_leaves_the_allocator_alone():
    code = (
        "import pipeline, pipeline.cli\n"
        "from pipeline.engine import allocator\n"
        "print(allocator._done)"
    )
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert done.stdout.strip() == "False"


def test_only_errors_demo_and_entry_points_at_the_top():
    loose = sorted(p.name for p in PKG.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "demo.py", "errors.py"]
