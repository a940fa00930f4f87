"""Kill a run at several moments (SIGKILL), rerun the same command: the output equals an
uninterrupted run byte for byte, and blocks finished before the kill are not recomputed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from pipeline.cli import main
from pipeline.engine import scratch
from pipeline.engine.journal import progress
from tests.conftest import folder_bytes, image_and_table_bytes, kept_objects_config


def _outputs(out: Path) -> dict[str, bytes]:
    return image_and_table_bytes(out, "kept.csv")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    rng = np.random.default_rng(11)
    image = ndi.gaussian_filter((rng.random((48, 192, 192)) < 0.002).astype(float), 2.0)
    noisy = image / image.max() * 50000 + rng.normal(0, 300, image.shape)
    tifffile.imwrite(root / "stack.tif", noisy.clip(0, 65535).astype(np.uint16))
    return root


def _config(project: Path, out: str, **engine) -> Path:
    cfg = kept_objects_config(project / "stack.tif", project / out, (12, 48, 48), 1.5, 20)
    cfg["engine"] = {"workers": 2, **engine}
    path = project / f"{out}.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def clean(project):
    assert main(["run", str(_config(project, "clean"))]) == 0
    return _outputs(project / "clean")


def _passes(journal: Path) -> list[tuple[str, str, int, int]]:
    return [(p["pass"], p["label"], p["done"], p["blocks"]) for p in progress(journal)]


def _run_and_kill(cfg: Path, journal: Path, when) -> None:
    """Start ``segpipe run``; SIGKILL it once ``when(passes)`` holds."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the run ended before the moment to kill it: {proc.stderr.read()}")
            if when(_passes(journal)):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return
            time.sleep(0.002)
        pytest.fail("the moment to kill the run never came")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()


def _arrays_in(path: Path) -> dict:
    """The arrays a scratch file holds (several: a halo file's block and slabs)."""
    with open(path, "rb") as fh:
        fh.read(len(scratch._MAGIC))
        size = int.from_bytes(fh.read(8), "little")
        return json.loads(fh.read(size))["arrays"]


def _midway(predicate):
    """A pass chosen by ``predicate(index, label)`` has some blocks recorded, not all."""

    def when(passes):
        return any(
            predicate(i, label) and 0 < done < total
            for i, (_, label, done, total) in enumerate(passes)
        )

    return when


MOMENTS = {
    "statistics pass": _midway(lambda i, label: i == 0),
    "block labelling": _midway(lambda i, label: label.startswith("label ")),
    "writing": _midway(lambda i, label: label.startswith("write")),
}
# Moments around what the histogram pass keeps (its bin codes, the halo files it reads).
KEPT_MOMENTS = {
    "histogram pass": _midway(lambda i, label: label.startswith("histogram")),
    "block labelling": MOMENTS["block labelling"],
}


@pytest.mark.parametrize(
    ("moment", "waves"),
    [*((m, None) for m in MOMENTS), ("block labelling", 16)],  # also with passes in waves
)
def test_kill_and_resume(project, clean, moment, waves, capsys):
    name = "killed-" + moment.replace(" ", "-") + (f"-waves{waves}" if waves else "")
    cfg = _config(project, name, **({"wave_tasks": waves} if waves else {}))
    out = project / name
    journal = out / ".journal"
    _run_and_kill(cfg, journal, MOMENTS[moment])
    assert not (out / "summary.json").exists()
    before = {
        folder: (done, total) for folder, _, done, total in _passes(journal)
    }  # what finished before the kill
    assert any(done for done, _ in before.values())

    # Status shows how far it got.
    assert main(["status", str(out)]) == 0
    status = capsys.readouterr().out
    assert "interrupted" in status and "blocks" in status

    # The same command again resumes and finishes.
    assert main(["run", str(cfg)]) == 0
    capsys.readouterr()
    assert _outputs(out) == clean
    summary = json.loads((out / "summary.json").read_text())
    resumed = summary["resumed_blocks"]
    for folder, (done, _total) in before.items():
        if done:
            assert resumed.get(folder) == done, (folder, resumed)
    assert not journal.exists()  # a finished run keeps no journal


def test_resume_keeps_what_the_killed_run_kept(project, clean, capsys):
    """The killed run computed the Gaussian again in each pass (no scratch budget); the
    rerun, told it may keep 1 GiB, still does: the blocks the killed run recorded as done
    have no kept Gaussian to read back."""
    name = "killed-unkept"
    cfg = _config(project, name, scratch_budget="0")
    out = project / name
    _run_and_kill(cfg, out / ".journal", MOMENTS["block labelling"])
    kept = [scratch.load(str(p)).dtype for p in (out / ".scratch").rglob("*.blk")]
    # Local labels and source slabs, but no float64 Gaussian, are in scratch.
    assert np.dtype(np.uint16) in kept and np.dtype(np.float64) not in kept
    assert main(["run", str(cfg), "--set", "engine.scratch_budget=1GiB"]) == 0
    capsys.readouterr()
    assert _outputs(out) == clean


@pytest.mark.parametrize("moment", KEPT_MOMENTS)
def test_resume_reads_the_bin_codes_the_killed_run_kept(project, clean, moment, capsys):
    """With room for the histogram's bin codes (2 bytes a voxel) but not the Gaussian
    (8), the killed run kept the codes of the blocks it histogrammed; the rerun reads
    them back for those blocks, which it does not histogram again."""
    name = "killed-codes-" + moment.replace(" ", "-")
    cfg = _config(project, name, scratch_budget="8MB")
    out = project / name
    _run_and_kill(cfg, out / ".journal", KEPT_MOMENTS[moment])
    before = {folder: done for folder, _, done, _ in _passes(out / ".journal")}
    histogram = next(f for f in before if "histogram" in f)
    # One folder of scratch holds the codes: uint16 below 2 × 256 bins, one file per
    # block histogrammed; no float64 Gaussian is kept.
    blocks = {p: scratch.load(str(p)) for p in (out / ".scratch").rglob("*.blk")}
    assert all(b.dtype != np.float64 for b in blocks.values())
    folders: dict = {}
    for path, block in blocks.items():
        folders.setdefault(path.parent, []).append(block)
    coded = [
        len(got)
        for got in folders.values()
        if all(b.dtype == np.uint16 and b.max() < 512 for b in got)
    ]
    assert any(n >= before[histogram] > 0 for n in coded), (coded, before)
    assert main(["run", str(cfg)]) == 0
    capsys.readouterr()
    assert _outputs(out) == clean
    resumed = json.loads((out / "summary.json").read_text())["resumed_blocks"]
    assert resumed.get(histogram) == before[histogram]


def test_changed_config_does_not_resume(project, clean, capsys):
    cfg = _config(project, "changed")
    out = project / "changed"
    _run_and_kill(cfg, out / ".journal", MOMENTS["block labelling"])
    snapshot = folder_bytes(out)
    rc = main(["run", str(cfg), "--set", "steps.smooth.sigma=2"])
    err = capsys.readouterr().err
    assert rc == 3 and "interrupted run of another config" in err and "--overwrite" in err
    assert folder_bytes(out) == snapshot
    assert main(["run", str(cfg), "--set", "steps.smooth.sigma=2", "--overwrite"]) == 0
    assert main(["status", str(out)]) == 0
    assert "finished" in capsys.readouterr().out


@pytest.mark.parametrize("made_by", ["0.0.1", None])  # None: a journal that did not record it
def test_other_version_does_not_resume(project, clean, made_by, capsys):
    cfg = _config(project, f"version-{made_by}")
    out = project / f"version-{made_by}"
    journal = out / ".journal"
    _run_and_kill(cfg, journal, MOMENTS["block labelling"])
    run_file = journal / "run.json"
    meta = json.loads(run_file.read_text())
    assert meta["segpipe"] == version("segpipe")
    if made_by is None:
        del meta["segpipe"]
    else:
        meta["segpipe"] = made_by
    run_file.write_text(json.dumps(meta))
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert (f"segpipe {made_by}" if made_by else "segpipe version not recorded") in said
    snapshot = folder_bytes(out)
    rc = main(["run", str(cfg)])
    err = capsys.readouterr().err.strip()
    by = f"segpipe {made_by}" if made_by else "an earlier segpipe"
    assert rc == 3 and len(err.splitlines()) == 1
    assert f"interrupted run of this config by {by}" in err and "--overwrite" in err
    assert folder_bytes(out) == snapshot
    assert main(["run", str(cfg), "--overwrite"]) == 0
    assert _outputs(out) == clean


@pytest.mark.parametrize("moment", KEPT_MOMENTS)
def test_resume_with_the_source_halos_kept(project, clean, moment, capsys):
    """With room for the source's halo files (uint16 blocks grown by the Gaussian's
    radius: 4.9 bytes a voxel here) and the bin codes (2) but not the Gaussian (8), the
    range pass keeps its halo files for the histogram pass; a run killed in either pass
    resumes to the same bytes (a kept file that is gone is written again)."""
    name = "killed-halos-" + moment.replace(" ", "-")
    cfg = _config(project, name, scratch_budget="13MB")
    out = project / name
    _run_and_kill(cfg, out / ".journal", KEPT_MOMENTS[moment])
    before = {folder: done for folder, _, done, _ in _passes(out / ".journal")}
    if moment == "histogram pass":  # every source block is in a kept halo file
        halos = [p for p in (out / ".scratch").rglob("*.blk") if len(_arrays_in(p)) > 1]
        assert len(halos) == 4 * 4 * 4
    assert main(["run", str(cfg)]) == 0
    capsys.readouterr()
    assert _outputs(out) == clean
    resumed = json.loads((out / "summary.json").read_text())["resumed_blocks"]
    assert all(resumed.get(folder) == done for folder, done in before.items())


def test_ctrl_c_names_the_command_that_resumes(project, clean, capsys):
    """SIGINT (Ctrl-C) mid-run: exit 130, one line with the command that resumes, which
    then finishes with the clean run's outputs."""
    cfg = _config(project, "interrupted")
    out = project / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    when = MOMENTS["block labelling"]
    deadline = time.time() + 300
    try:
        while not when(_passes(out / ".journal")):
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"the run ended before the moment to stop it: {proc.stderr.read()}")
            time.sleep(0.002)
        proc.send_signal(signal.SIGINT)
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    lines = err.strip().splitlines()
    assert lines == [f"error: interrupted; run the same command to resume: segpipe run {cfg}"]
    assert not (out / "summary.json").exists()
    assert main(["run", str(cfg)]) == 0
    capsys.readouterr()
    assert _outputs(out) == clean
