"""The ready-made workflows: shell scripts parse, YAML parses, each calls the real CLI
validly (run with --dry-run), and the Snakemake workflow lints, dry-runs and runs."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from scipy import ndimage as ndi

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
SCRIPTS = sorted([*WORKFLOWS.rglob("*.sbatch"), *WORKFLOWS.rglob("*.pbs")])
YAMLS = sorted(
    p
    for p in [*WORKFLOWS.rglob("*.yml"), *WORKFLOWS.rglob("*.yaml")]
    if p.name != "environment.yaml"
)
CONDA_ENV = WORKFLOWS / "snakemake" / "environment.yaml"
CRONTABS = sorted([*WORKFLOWS.rglob("*.crontab"), *WORKFLOWS.rglob("*.scrontab")])
BIN = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path):
    """A project folder as the workflows expect: configs/nightly.yaml and its inputs."""
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "nightly.yaml", tmp_path / "configs")
    incoming = tmp_path / "data" / "incoming"
    incoming.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["path,name"]
    for i in range(2):
        img = ndi.gaussian_filter(rng.random((16, 48, 48)), 2.0)
        tifffile.imwrite(incoming / f"scan{i}.tif", (60000 * (img - img.min())).astype(np.uint16))
        rows.append(f"scan{i}.tif,")
    (incoming / "manifest.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "logs").mkdir()
    return tmp_path


@pytest.fixture
def dry_segpipe(tmp_path):
    """A ``segpipe`` that only checks: it adds --dry-run to a run."""
    path = tmp_path / "dry-segpipe"
    path.write_text(f'#!/usr/bin/env bash\nexec "{BIN / "segpipe"}" "$@" --dry-run\n')
    path.chmod(0o755)
    return path


def test_every_workflow_is_tested():
    files = {p for p in WORKFLOWS.rglob("*") if p.is_file() and p.name != "README.md"}
    covered = {*SCRIPTS, *YAMLS, *CRONTABS, CONDA_ENV, WORKFLOWS / "snakemake" / "Snakefile"}
    assert files == covered


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_parse(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_call_the_cli_validly(script, project, dry_segpipe):
    env = {
        **os.environ,
        "SEGPIPE": str(dry_segpipe),
        "CONFIG": "configs/nightly.yaml",
        "SLURM_ARRAY_TASK_ID": "1",
        "SLURM_CPUS_PER_TASK": "2",
        "NCPUS": "2",
        "PBS_O_WORKDIR": str(project),
    }
    proc = subprocess.run(
        ["bash", str(script), "configs/nightly.yaml"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "would run scan" in proc.stdout
    assert not (project / "out").exists()


@pytest.mark.parametrize("crontab", CRONTABS, ids=lambda p: p.name)
def test_crontab_lines_call_the_cli_validly(crontab, project, dry_segpipe):
    entries = [
        line
        for line in crontab.read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert entries
    for line in entries:
        fields = line.split(None, 5)
        assert len(fields) == 6 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5]), line
        env = {**os.environ, "SEGPIPE": str(dry_segpipe), "SEGPIPE_PROJECT": str(project)}
        proc = subprocess.run(["bash", "-c", fields[5]], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        log = project / "logs" / "segpipe-nightly.log"
        assert "would run scan" in proc.stdout + (log.read_text() if log.exists() else "")


def _segpipe_commands(doc) -> list[list[str]]:
    """Every segpipe command line in a parsed YAML document (run: strings, command/args)."""
    found = []
    if isinstance(doc, dict):
        cmd = doc.get("command")
        if isinstance(cmd, list) and cmd and cmd[0] == "segpipe":
            found.append([*cmd, *doc.get("args", [])])
        run = doc.get("run")
        if isinstance(run, str) and "segpipe run" in run:
            found.append(shlex.split(run))
        for v in doc.values():
            found.extend(_segpipe_commands(v))
    elif isinstance(doc, list):
        for v in doc:
            found.extend(_segpipe_commands(v))
    return found


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.name)
def test_yaml_workflows_parse_and_call_the_cli_validly(path, project, monkeypatch, capsys):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs
    commands = [c for d in docs for c in _segpipe_commands(d)]
    assert commands, f"{path.name}: no segpipe command found"
    monkeypatch.chdir(project)
    for cmd in commands:
        args = cmd[cmd.index("run") :]
        assert main([*args, "--dry-run"]) == 0
        assert "would run scan0" in capsys.readouterr().out


def test_job_script_options_exist(capsys):
    """The --set keys the scripts use are config keys (checked by validation)."""
    keys = set()
    for script in [*SCRIPTS, *CRONTABS]:
        keys.update(re.findall(r"--set ([\w.]+)=", script.read_text()))
    assert keys
    cfg = ROOT / "configs" / "demo.yaml"
    for key in sorted(keys):
        value = "/tmp/x" if key.endswith("directory") else "2"
        assert main(["validate", str(cfg), "--set", f"{key}={value}", "--cluster", "local"]) == 0


def _snakemake(project, *args):
    exe = shutil.which("snakemake", path=str(BIN))
    if exe is None:
        pytest.skip("snakemake is not installed (pip install snakemake)")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [exe, "-s", str(WORKFLOWS / "snakemake" / "Snakefile"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_conda_environment_installs_segpipe():
    env = yaml.safe_load(CONDA_ENV.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "segpipe" in pip


def test_snakemake_lint_dry_run_and_run(project):
    lint = _snakemake(project, "--lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    dry = _snakemake(project, "--dry-run", "--cores", "2")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "segment" in dry.stdout and "2" in dry.stdout
    done = _snakemake(project, "--cores", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("scan0", "scan1"):
        assert (project / "out" / "nightly" / name / "summary.json").exists()
    again = _snakemake(project, "--dry-run", "--cores", "2")  # resumable: nothing left
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
