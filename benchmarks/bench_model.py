"""The bioimage.io U-Net of ../shared/models in segpipe: agreement, accuracy and speed.

    .venv/bin/python benchmarks/bench_model.py            # prints the tables
    .venv/bin/python benchmarks/bench_model.py --record   # and writes a result record

From one run:

1. agreement: the package's test input through segpipe at several block sizes, against
   its test output (max |difference|) and against the one-block run (identical bytes or
   not); the ONNX and the TorchScript weights (when torch is installed); and the seams of
   tiling: a 1024 x 1024 mirrored mosaic of the human_mitosis image with the package's
   output halo (32) against a halo of 96 (max and mean |difference| of the probability,
   pixels whose thresholded class changes);
2. accuracy: object F1 at IoU >= 0.5 on the DSB-2018 crop (65 hand-drawn nuclei) of the
   U-Net recipe (configs/bioimageio_unet_2d.yaml: model -> threshold -> distance ->
   peaks -> watershed) and of the same recipe with a smoothed Otsu mask, over peak
   distances; on the BBBC007 crops, whose masks are scribbles (1: background strokes,
   2: nucleus strokes, as their mean intensities show; not instances), the share of
   stroke pixels each mask gets right;
3. speed: the 1024 x 1024 mosaic through segpipe (its 9 tiles of 512, 4 per call, a
   session per worker) against the same tiles run by hand through one onnxruntime
   session with a thread per core (the anchor: the network alone, loading included),
   each the best of three runs.

Not a timed test: it reports.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import yaml
import zarr

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import bench_record  # noqa: E402

import pipeline  # noqa: E402
from pipeline.engine.tiles import TileGrid  # noqa: E402
from pipeline.measure.matching import match_objects  # noqa: E402
from pipeline.ops.model_package import read_package  # noqa: E402

SHARED = ROOT.parent / "shared"
UNET = SHARED / "models" / "unet2d_nuclei_broad"
DATA = SHARED / "data"
CONFIG = ROOT / "configs" / "bioimageio_unet_2d.yaml"


def _config(image: Path, out: Path, chunks, written="probability", **steps) -> dict:
    """The U-Net recipe of configs/ on ``image``, its steps changed by ``steps``."""
    config = yaml.safe_load(CONFIG.read_text())
    config["input"] = {"path": str(image), "chunks": list(chunks)}
    config["steps"]["probability"]["path"] = str(UNET)
    for name, change in steps.items():
        if change is None:
            del config["steps"][name]
        else:
            config["steps"].setdefault(name, {}).update(change)
    config["output"] = {"path": str(out), "labels": "nuclei"}
    if written:
        config["output"]["image"] = written
    return config


def _read(out: Path, what: str) -> np.ndarray:
    return np.asarray(zarr.open_array(out / f"{what}.ome.zarr" / "0", mode="r"))


def _run(config: dict) -> float:
    start = time.perf_counter()
    pipeline.run(config)
    return time.perf_counter() - start


def agreement(work: Path) -> dict:
    x = np.load(UNET / "test_input.npy")[0, 0]
    want = np.load(UNET / "test_output.npy")[0, 0]
    tifffile.imwrite(work / "test_input.tif", x)
    rows, first = [], None
    for chunks in [(512, 512), (256, 256), (128, 128), (100, 333), (64, 64)]:
        out = work / f"agree-{chunks[0]}x{chunks[1]}"
        _run(_config(work / "test_input.tif", out, chunks))
        got = _read(out, "image")
        first = got if first is None else first
        rows.append({
            "blocks": f"{chunks[0]}x{chunks[1]}",
            "max_abs_vs_test_output": float(np.abs(got - want).max()),
            "bytes_equal_to_one_block": bool(np.array_equal(got, first)),
        })  # fmt: skip
    result = {"test_input": rows}
    try:
        import torch  # noqa: F401

        out = work / "agree-torchscript"
        steps = {"probability": {"weights": "torchscript"}}
        _run(_config(work / "test_input.tif", out, (256, 256), **steps))
        ts = _read(out, "image")
        result["torchscript_max_abs_vs_onnx"] = float(np.abs(ts - first).max())
        result["torchscript_max_abs_vs_test_output"] = float(np.abs(ts - want).max())
    except ImportError:
        result["torchscript_max_abs_vs_onnx"] = None
    return result


def _mosaic(work: Path) -> Path:
    img = tifffile.imread(DATA / "human_mitosis" / "human_mitosis.tif")
    top = np.concatenate([img, img[:, ::-1]], axis=1)
    path = work / "mosaic.tif"
    tifffile.imwrite(path, np.concatenate([top, top[::-1]], axis=0))
    return path


def seams(work: Path, mosaic: Path) -> dict:
    probs = {}
    for halo in (32, 96):
        out = work / f"seams-{halo}"
        _run(_config(mosaic, out, (256, 256), probability={"halo": halo}))
        probs[halo] = _read(out, "image")
    diff = np.abs(probs[32] - probs[96])
    flips = np.count_nonzero((probs[32] > 0.5) != (probs[96] > 0.5))
    return {
        "image": "human_mitosis mirrored to 1024x1024",
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "class_changes": int(flips),
        "pixels": int(diff.size),
    }


def speed(work: Path, mosaic: Path, repeats: int = 3) -> dict:
    """segpipe's U-Net step on the mosaic against the same tiles through onnxruntime,
    each the best of ``repeats`` runs."""
    img = tifffile.imread(mosaic).astype(np.float32)
    package = read_package(str(UNET))
    grid = TileGrid(img.shape, (512, 512), package.halo, 1)
    direct, out = min(_by_hand(img, package, grid) for _ in range(repeats))
    took = []
    for r in range(repeats):
        config = _config(mosaic, work / f"speed{r}", (256, 256))
        unet = config["steps"]["probability"]
        config["steps"] = {"probability": unet, "mask": {"op": "threshold", "value": 0.5},
                           "nuclei": {"op": "label"}}  # fmt: skip
        took.append(_run(config))
    same = float(np.abs(_read(work / "speed0", "image") - out).max())
    tiles = sum(len(grid.tiles(g)) for g in grid.groups())
    return {
        "image": "1024x1024",
        "tiles": tiles,
        "repeats": repeats,
        "segpipe_s": round(min(took), 2),
        "onnxruntime_by_hand_s": round(direct, 2),
        "ratio": round(min(took) / direct, 2),
        "max_abs_segpipe_vs_by_hand": same,
    }


def _by_hand(img: np.ndarray, package, grid: TileGrid) -> tuple[float, np.ndarray]:
    """The tiles through one onnxruntime session (a thread per core, its default),
    loading included: seconds and the probability."""
    import onnxruntime as ort

    start = time.perf_counter()
    sess = ort.InferenceSession(package.weights_file()[1], providers=["CPUExecutionProvider"])
    x = (img - img.mean()) / (img.std() + 1e-6)
    out = np.empty_like(x)
    for g in grid.groups():
        for (iy, ix), (ky, kx) in grid.tiles(g):
            y = sess.run(None, {"input.1": x[None, None, iy[0] : iy[1], ix[0] : ix[1]]})[0]
            kept = y[0, 0, ky[0] - iy[0] : ky[1] - iy[0], kx[0] - ix[0] : kx[1] - ix[0]]
            out[ky[0] : ky[1], kx[0] : kx[1]] = 1 / (1 + np.exp(-kept))
    return time.perf_counter() - start, out


def _otsu(config: dict) -> dict:
    steps = config["steps"]
    del steps["probability"]
    steps["mask"] = {"op": "threshold", "method": "otsu"}
    config["steps"] = {"smooth": {"op": "gaussian", "sigma": 1.0}, **steps}
    return config


def accuracy(work: Path) -> dict:
    image = DATA / "stardist_dsb_crop" / "image.tif"
    truth = tifffile.imread(DATA / "stardist_dsb_crop" / "mask.tif")
    rows = []
    for distance in (2, 3, 4, 5, 7):
        row = {"min_distance": distance}
        for recipe in ("unet", "otsu"):
            out = work / f"f1-{recipe}-{distance}"
            config = _config(image, out, (128, 128), None, peaks={"min_distance": distance})
            _run(_otsu(config) if recipe == "otsu" else config)
            m = match_objects(truth, _read(out, "nuclei"))
            row[recipe] = {"f1": round(m.f1, 3), "objects": m.predicted_objects,
                           "matched": m.matched}  # fmt: skip
        rows.append(row)
    strokes = []
    for path in sorted((DATA / "bbbc007" / "images").glob("*.tif")):
        marks = tifffile.imread(DATA / "bbbc007" / "masks" / path.name)
        row = {"image": path.stem}
        for recipe in ("unet", "otsu"):
            out = work / f"strokes-{recipe}-{path.stem.replace(' ', '_')}"
            config = _config(path, out, (64, 64), None)
            _run(_otsu(config) if recipe == "otsu" else config)
            mask = _read(out, "nuclei") > 0  # the watershed fills the mask
            row[recipe] = {
                "nucleus_strokes_in_mask": round(float(mask[marks == 2].mean()), 3),
                "background_strokes_outside": round(float((~mask[marks == 1]).mean()), 3),
            }
        strokes.append(row)
    return {"dsb_f1_iou_0.5": rows, "truth_objects": int(len(np.unique(truth)) - 1),
            "bbbc007_strokes": strokes}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write a result record")
    args = parser.parse_args()
    if not (UNET / "bioimageio.yaml").exists() or not DATA.exists():
        sys.exit(f"needs {UNET} and {DATA}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mosaic = _mosaic(work)
        results = {
            "agreement": agreement(work),
            "seams": seams(work, mosaic),
            "accuracy": accuracy(work),
            "speed": speed(work, mosaic),
        }
    print(yaml.safe_dump(results, sort_keys=False, width=100))
    if args.record:
        versions = bench_record.versions((*bench_record.PACKAGES, "onnxruntime", "torch"))
        path = bench_record.write("model", "bench_model.py", {"versions": versions, **results})
        print(f"recorded: {path}")


if __name__ == "__main__":
    main()
