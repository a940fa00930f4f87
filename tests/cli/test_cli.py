"""End to end through ``segpipe`` (``pipeline.cli.main``) on small files made here."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
import zarr
from ome_zarr_models.v05.image_label import ImageLabel
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.measure import label

from pipeline.cli import main

SHAPE = (24, 40, 40)
CHUNKS = [8, 16, 16]
STEPS = {
    "smooth": {"op": "gaussian", "sigma": 1.0},
    "mask": {"op": "threshold", "method": "otsu"},
    "objects": {"op": "label", "connectivity": 1},
}


def blobs(seed: int = 0) -> np.ndarray:
    """A noisy uint16 volume with a few balls, several of them across block borders."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(SHAPE)
    img = rng.normal(200.0, 25.0, SHAPE)
    balls = [
        (4, 5, 5, 3),
        (8, 16, 16, 4),
        (15, 30, 10, 3.5),
        (20, 32, 33, 3),
        (12, 8, 35, 2.5),
        (18, 20, 22, 2),
        (0, 39, 0, 3),
        (23, 16, 31, 2.5),
    ]
    for cz, cy, cx, r in balls:
        img[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r] += 900.0
    return np.clip(img, 0, 65535).astype(np.uint16)


def reference(img: np.ndarray) -> tuple[np.ndarray, float]:
    smooth = ndi.gaussian_filter(img.astype(np.float64), 1, mode="nearest", truncate=4)
    t = threshold_otsu(smooth)
    return label(smooth > t, connectivity=1), float(t)


def write_input(kind: str, img: np.ndarray, root: Path, stem: str = "img") -> str:
    if kind == "tiff":
        tifffile.imwrite(root / f"{stem}.tif", img)
        return f"{stem}.tif"
    if kind == "zarr":
        arr = zarr.create_array(
            store=str(root / f"{stem}.zarr"), shape=img.shape, chunks=(5, 16, 16), dtype=img.dtype
        )
        arr[:] = img
        return f"{stem}.zarr"
    folder = root / f"{stem}_slices"
    folder.mkdir()
    for i, plane in enumerate(img):  # z0, z1, ..., z10: needs natural sorting
        tifffile.imwrite(folder / f"z{i}.tif", plane)
    return folder.name


def write_config(
    root: Path, input_path: str, output: str = "out", steps=None, labels: str = "objects"
) -> str:
    cfg = {
        "input": {"path": input_path, "chunks": CHUNKS},
        "steps": STEPS if steps is None else steps,
        "output": {"path": output, "labels": labels},
        "engine": {"scheduler": "threads", "workers": 2},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return "config.yaml"


def sha256(path: Path) -> str:
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode() + f.read_bytes())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["run", *args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(autouse=True)
def _collect_garbage():
    """Report files a run dropped unclosed (ResourceWarning) in that test, not a later one."""
    yield
    gc.collect()


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("kind", ["tiff", "zarr", "slices"])
def test_run_matches_skimage(here, capsys, kind):
    img = blobs()
    ref, t = reference(img)
    assert ref.max() >= 5
    path = write_input(kind, img, here)
    before = sha256(here / path)
    rc, out, err = run(capsys, write_config(here, path))
    assert rc == 0, err
    assert "Traceback" not in err
    m = re.search(r"^objects: (\d+)$", out, re.M)
    assert m, out
    assert int(m.group(1)) == ref.max()

    labels_path = here / "out" / "objects.ome.zarr"
    got = zarr.open_array(str(labels_path / "0"), mode="r")[:]
    assert got.shape == SHAPE
    assert np.issubdtype(got.dtype, np.unsignedinteger)
    np.testing.assert_array_equal(got, ref)

    summary = json.loads((here / "out" / "summary.json").read_text())
    assert summary["count"] == ref.max()
    assert summary["shape"] == list(SHAPE)
    assert summary["chunks"] == [[8, 8, 8], [16, 16, 8], [16, 16, 8]]
    assert summary["blocks"] == 27
    assert summary["thresholds"]["mask"] == pytest.approx(t, rel=1e-12)
    sha = summary["config_sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", sha)
    # The hash covers what decides the results, not where the work ran.
    # (nor how the data is reached: storage options)
    what = {k: v for k, v in summary["config"].items() if k not in ("engine", "cluster")}
    for section in ("input", "output"):
        what[section] = {k: v for k, v in what[section].items() if k != "storage_options"}
    blob = json.dumps(what, sort_keys=True).encode()
    assert hashlib.sha256(blob).hexdigest() == sha
    assert sha256(here / path) == before


def test_labels_are_valid_ome_zarr(here, capsys):
    img = blobs(1)
    ref, _ = reference(img)
    rc, _, err = run(capsys, write_config(here, write_input("tiff", img, here, stem="ome")))
    assert rc == 0, err
    group = zarr.open_group(str(here / "out" / "objects.ome.zarr"), mode="r")
    model = ImageLabel.from_zarr(group)
    ome = model.ome_attributes
    assert [a.name for a in ome.multiscales[0].axes] == ["z", "y", "x"]
    assert ome.multiscales[0].datasets[0].path == "0"
    assert ome.image_label is not None
    values = {c.label_value for c in ome.image_label.colors or ()}
    assert values == set(range(1, int(ref.max()) + 1))


def test_set_override_changes_result(here, capsys):
    img = blobs(2)
    cfg = write_config(here, write_input("tiff", img, here, stem="set"))
    rc, out, err = run(capsys, cfg, "--set", "steps.smooth.sigma=2")
    assert rc == 0, err
    smooth = ndi.gaussian_filter(img.astype(np.float64), 2, mode="nearest", truncate=4)
    ref = label(smooth > threshold_otsu(smooth), connectivity=1)
    got = zarr.open_array(str(here / "out" / "objects.ome.zarr" / "0"), mode="r")[:]
    np.testing.assert_array_equal(got, ref)
    assert f"objects: {ref.max()}" in out


@pytest.mark.parametrize("how", ["other-folder", "rewritten"])
def test_each_run_reads_its_own_input(tmp_path, monkeypatch, capsys, how):
    """Two runs in one process with the same relative input name and different pixels."""
    for flip in (False, True):
        here = tmp_path / (f"run{int(flip)}" if how == "other-folder" else "same")
        here.mkdir(exist_ok=True)
        monkeypatch.chdir(here)
        img = blobs(5)
        if flip:
            img = np.ascontiguousarray(img[:, ::-1, :])
        ref, _ = reference(img)
        cfg = write_config(here, write_input("tiff", img, here))
        rc, out, err = run(capsys, cfg, "--overwrite")
        assert rc == 0, err
        got = zarr.open_array(str(here / "out" / "objects.ome.zarr" / "0"), mode="r")[:]
        np.testing.assert_array_equal(got, ref, err_msg=f"run with flip={flip}")


def open_files_under(root: Path) -> list[str]:
    out = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target == str(root) or target.startswith(f"{root}{os.sep}"):
            out.append(target)
    return out


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")
@pytest.mark.parametrize("kind", ["tiff", "slices"])
def test_run_leaves_no_input_file_open(here, capsys, kind):
    # A name no other test uses, so that this run really opens its own input.
    path = (here / write_input(kind, blobs(6), here, stem="fd")).resolve()
    rc, _, err = run(capsys, write_config(here, path.name))
    assert rc == 0, err
    assert open_files_under(path) == []


def assert_one_error(rc: int, out: str, err: str, pattern: str) -> None:
    assert rc == 3, (out, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    assert "objects:" not in out


def test_missing_input(here, capsys):
    rc, out, err = run(capsys, write_config(here, "missing.tif"))
    assert_one_error(rc, out, err, r"missing\.tif.*not found")
    assert not (here / "out" / "summary.json").exists()


def test_output_exists(here, capsys):
    src = here / write_input("tiff", blobs(), here, stem="exists")
    cfg = write_config(here, src.name)
    assert run(capsys, cfg)[0] == 0
    first = sha256(here / "out")
    before = sha256(src)
    # The same config again: the finished output is the answer, nothing is computed.
    rc, out, err = run(capsys, cfg)
    assert rc == 0 and "finished earlier with this config" in out
    assert sha256(here / "out") == first
    # Another config does not write over it.
    rc, out, err = run(capsys, cfg, "--set", "steps.smooth.sigma=2")
    assert_one_error(rc, out, err, r"holds another run's outputs.*--overwrite")
    assert sha256(here / "out") == first
    assert sha256(src) == before
    rc, out, err = run(capsys, cfg, "--set", "steps.smooth.sigma=2", "--overwrite")
    assert rc == 0, err
    assert (here / "out" / "summary.json").exists()


def test_output_inside_input_folder(here, capsys):
    folder = here / write_input("slices", blobs(), here)
    before = sha256(folder)
    rc, out, err = run(capsys, write_config(here, folder.name, output=f"{folder.name}/out"))
    assert_one_error(rc, out, err, r"inside the input")
    assert not (folder / "out").exists()
    assert sha256(folder) == before


def test_output_is_the_input_file(here, capsys):
    src = here / write_input("tiff", blobs(), here)
    before = sha256(src)
    rc, out, err = run(capsys, write_config(here, "img.tif", output="img.tif"))
    assert_one_error(rc, out, err, r"is the input")
    assert sha256(src) == before


def test_float_image_to_label(here, capsys):
    src = here / "float.tif"
    tifffile.imwrite(src, blobs().astype(np.float32))
    before = sha256(src)
    steps = {"objects": {"op": "label"}}
    rc, out, err = run(capsys, write_config(here, "float.tif", steps=steps))
    assert_one_error(rc, out, err, r"objects.*(mask|integer).*float32")
    assert not (here / "out" / "summary.json").exists()
    assert sha256(src) == before


def test_corrupt_tiff(here, capsys):
    src = here / "x.tif"
    src.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    before = sha256(src)
    rc, out, err = run(capsys, write_config(here, "x.tif"))
    assert_one_error(rc, out, err, r"x\.tif.*not a readable TIFF")
    assert not (here / "out" / "summary.json").exists()
    assert sha256(src) == before


def test_garbage_without_tiff_magic(here, capsys):
    src = here / "x.tif"
    src.write_bytes(b"this is not an image\n" * 50)
    rc, out, err = run(capsys, write_config(here, "x.tif"))
    assert_one_error(rc, out, err, r"x\.tif.*not a readable TIFF")
    assert not (here / "out" / "summary.json").exists()


def test_config_error_exit_code(here, capsys):
    write_input("tiff", blobs(), here)
    cfg = write_config(here, "img.tif", labels="smooth")
    rc, out, err = run(capsys, cfg)
    assert rc == 2
    assert "Traceback" not in err
    assert err.startswith("error: config.yaml:")
    assert not (here / "out").exists()


def test_corrupt_zarr_chunk(here, capsys):
    path = write_input("zarr", blobs(), here)
    chunk = here / path / "c" / "1" / "0" / "1"
    assert chunk.is_file()
    chunk.write_bytes(b"\x00garbage" * 7)
    before = sha256(here / path)
    rc, out, err = run(capsys, write_config(here, path))
    assert_one_error(rc, out, err, r"img\.zarr: cannot read block")
    assert not (here / "out" / "summary.json").exists()
    assert sha256(here / path) == before


def test_slice_of_the_wrong_shape(here, capsys):
    from pipeline.errors import DataError
    from pipeline.io.readers import open_source

    path = write_input("slices", blobs(), here)
    source = open_source(path, None, None, None, None, None)
    # The folder changes after the plan was made: a block read finds the odd slice.
    tifffile.imwrite(here / path / "z3.tif", np.zeros((40, 30), np.uint16))
    with pytest.raises(DataError, match=r"z3\.tif|wrong shape"):
        source.read(((0, 8), (0, 40), (0, 40)))


def test_missing_model_file_is_one_line_before_any_pass(here, capsys):
    src = here / write_input("tiff", blobs(), here, stem="model")
    steps = {
        "prob": {"op": "model", "path": "no_such_net.onnx", "halo": 2},
        "mask": {"op": "threshold", "value": 0.5},
        "objects": {"op": "label"},
    }
    rc, out, err = run(capsys, write_config(here, src.name, steps=steps))
    assert_one_error(rc, out, err, r"step 'prob': model file no_such_net\.onnx not found")
    assert main(["plan", "config.yaml"]) == 3
    assert "not found" in capsys.readouterr().err


def test_version(capsys):
    import pipeline

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"segpipe {pipeline.__version__}"
    assert pipeline.__version__[0].isdigit()


def test_a_reader_gone_away_ends_quietly(monkeypatch, capsys):
    """``segpipe schema | head -1``: the pipe's reader has closed; no traceback, exit 0."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as pipe:
        monkeypatch.setattr("sys.stdout", pipe)
        assert main(["schema"]) == 0
        monkeypatch.undo()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run"], "segpipe run: the following arguments are required: config"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run", "c.yaml", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_are_one_line(argv, says, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("error: ") and says in err
