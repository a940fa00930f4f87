"""Import layering: config -> graph -> engine -> ops/io, and Dask only in the engine."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "pipeline"

# layer -> packages it must not import
FORBIDDEN = {
    "ops": (
        "pipeline.engine",
        "pipeline.config",
        "pipeline.graph",
        "pipeline.io",
        "pipeline.api",
        "pipeline.cli",
        "dask",
        "distributed",
    ),
    "io": (
        "pipeline.engine",
        "pipeline.config",
        "pipeline.graph",
        "pipeline.api",
        "pipeline.cli",
        "dask",
        "distributed",
    ),
    "graph": (
        "pipeline.engine",
        "pipeline.io",
        "pipeline.config",
        "pipeline.api",
        "pipeline.cli",
        "dask",
    ),
    "config": ("pipeline.engine", "pipeline.io", "pipeline.api", "pipeline.cli", "dask"),
    "engine": ("pipeline.config", "pipeline.api", "pipeline.cli"),
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer):
    bad = []
    for path in (PKG / layer).rglob("*.py"):
        for name in imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(PKG.parent)} imports {name}")
    assert not bad, "\n".join(bad)


def test_dask_only_in_engine():
    bad = []
    for path in PKG.rglob("*.py"):
        if "engine" in path.parts:
            continue
        for name in imports(path):
            if name.split(".")[0] in ("dask", "distributed"):
                bad.append(f"{path.relative_to(PKG.parent)} imports {name}")
    assert not bad, "\n".join(bad)
