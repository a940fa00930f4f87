"""The objects' table equals skimage.measure.regionprops_table on the whole array."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
import zarr
from scipy import ndimage as ndi
from skimage.measure import regionprops_table

import pipeline
from pipeline.errors import ConfigError
from tests.conftest import DATA

PROPS = (
    "label", "num_pixels", "area", "centroid", "bbox", "equivalent_diameter_area",
    "intensity_mean", "intensity_min", "intensity_max", "intensity_std",
)  # fmt: skip


def _run(tmp_path, img, chunks, fmt="parquet", spacing=None, intensity="input"):
    np.save(tmp_path / "in.npy", img)
    cfg = {
        "input": {"path": str(tmp_path / "in.npy"), "chunks": list(chunks)},
        "steps": {
            "mask": {"op": "threshold", "method": "otsu"},
            "obj": {"op": "label", "connectivity": 1},
        },
        "output": {
            "path": str(tmp_path / "out"),
            "labels": "obj",
            "overwrite": True,
            "table": {"format": fmt, "intensity": intensity},
        },
    }
    if spacing:
        cfg["input"]["spacing"] = spacing
    res = pipeline.run(cfg)
    labels = np.asarray(zarr.open_group(str(res.labels_path), mode="r")["0"])
    return res, labels


def _read(path):
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        t = pq.read_table(path)
        return {k: t.column(k).to_numpy() for k in t.column_names}, t.schema.metadata
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    cols = {k: np.array([r[i] for r in rows[1:]]) for i, k in enumerate(rows[0])}
    return cols, None


def _image(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (1000 * ndi.gaussian_filter(rng.random(shape), 1.5) + rng.normal(0, 5, shape)).astype(
        np.uint16
    )


@pytest.mark.parametrize(
    "shape, chunks, spacing",
    [
        ((12, 30, 28), (4, 9, 8), None),
        ((12, 30, 28), (5, 30, 10), [2.0, 0.5, 0.5]),
        ((60, 70), (13, 17), [0.25, 0.25]),
    ],
)
def test_table_equals_regionprops(tmp_path, shape, chunks, spacing):
    img = _image(shape)
    res, labels = _run(tmp_path, img, chunks, spacing=spacing)
    cols, meta = _read(res.summary["table"])
    sp = tuple(spacing) if spacing else (1.0,) * len(shape)
    ref = regionprops_table(labels, img, properties=PROPS, spacing=sp)
    assert len(ref["label"]) == res.count > 5
    for k, v in ref.items():
        exact = k.startswith(("label", "num_pixels", "bbox", "centroid", "area", "intensity_m"))
        if exact:
            np.testing.assert_array_equal(cols[k], v, err_msg=k)
        else:
            np.testing.assert_allclose(cols[k], v, rtol=1e-9, err_msg=k)
    for a in range(len(shape)):  # centroid_index: in voxels
        np.testing.assert_allclose(cols[f"centroid_index-{a}"] * sp[a], cols[f"centroid-{a}"])
    assert b"segpipe" in meta and res.summary["config_sha256"].encode() in meta[b"segpipe"]
    # The blocks each object touches, as raster indices of the block grid.
    import pyarrow.parquet as pq

    blocks = pq.read_table(res.summary["table"]).column("blocks").to_pylist()
    grid = [range(0, n, c) for n, c in zip(shape, chunks, strict=True)]
    boxes = [
        tuple((s, s + c) for s, c in zip(starts, chunks, strict=True))
        for starts in itertools.product(*grid)
    ]
    for label_id, touched in zip(cols["label"], blocks, strict=True):
        want = [
            b
            for b, box in enumerate(boxes)
            if (labels[tuple(slice(a, z) for a, z in box)] == label_id).any()
        ]
        assert touched == want


def test_csv_round_trip_and_no_intensity(tmp_path):
    img = _image((40, 44), seed=2)
    res, labels = _run(tmp_path, img, (11, 13), fmt="csv", intensity=None)
    cols, _ = _read(res.summary["table"])
    assert "intensity_mean" not in cols
    ref = regionprops_table(labels, properties=("label", "area", "bbox"))
    np.testing.assert_array_equal(cols["label"].astype(int), ref["label"])
    np.testing.assert_array_equal(cols["area"].astype(float), ref["area"])
    np.testing.assert_array_equal(cols["bbox-3"].astype(int), ref["bbox-3"])
    assert all(b for b in cols["blocks"])  # ";"-joined block indices


def test_intensity_must_name_an_image_step(tmp_path):
    np.save(tmp_path / "in.npy", np.zeros((4, 4), np.uint8))
    cfg = {
        "input": {"path": str(tmp_path / "in.npy")},
        "steps": {"mask": {"op": "threshold", "value": 0}, "obj": {"op": "label"}},
        "output": {"path": str(tmp_path / "o"), "labels": "obj", "table": {"intensity": "mask"}},
    }
    with pytest.raises(ConfigError, match=r"output\.table\.intensity: step 'mask' gives mask"):
        pipeline.run(cfg)


def test_summary_sizes_per_block_and_per_class(tmp_path):
    img = _image((12, 30, 28), seed=4)
    res, labels = _run(tmp_path, img, (4, 15, 14), spacing=[2.0, 1.0, 1.0])
    sizes = np.bincount(labels.ravel())[1:]
    s = res.summary["object_sizes"]
    assert s["count"] == res.count and s["min"] == sizes.min() and s["max"] == sizes.max()
    assert [s["p5"], s["median"], s["p95"]] == list(np.percentile(sizes, [5, 50, 95]))
    assert s["median_physical"] == np.median(sizes) * 2.0
    per_block = [
        len(np.unique(labels[z : z + 4, y : y + 15, x : x + 14])) - 1
        for z in range(0, 12, 4)
        for y in range(0, 30, 15)
        for x in range(0, 28, 14)
    ]
    assert res.summary["objects_per_block"] == per_block

    np.save(tmp_path / "in.npy", img)
    cfg = {
        "input": {"path": str(tmp_path / "in.npy"), "chunks": [4, 15, 14]},
        "steps": {"classes": {"op": "threshold", "method": "multi_otsu", "classes": 3}},
        "output": {"path": str(tmp_path / "cls"), "labels": "classes"},
    }
    res = pipeline.run(cfg)
    classes = np.asarray(zarr.open_group(str(res.labels_path), mode="r")["0"])
    ids, counts = np.unique(classes[classes > 0], return_counts=True)
    want = {str(c): int(n) for c, n in zip(ids, counts, strict=True)}
    assert res.summary["voxels_per_class"] == want and res.count == 2


MINI_BLOBS = DATA / "mini_blobs"


@pytest.mark.parametrize("chunks", [(70, 70), (20, 30), (7, 11)])
def test_imagej_measurements_reproduced(tmp_path, chunks):
    """ImageJ's Analyze Particles table of mini_blobs: same areas and means; ImageJ puts
    pixel centres at +0.5, so its X, Y are centroid-1 + 0.5, centroid-0 + 0.5."""
    if not MINI_BLOBS.exists():
        pytest.skip(f"{MINI_BLOBS} is missing (the shared real-data folder is not here)")
    with open(MINI_BLOBS / "mini_blobs_measurements_imagej.csv", newline="") as fh:
        imagej = list(csv.DictReader(fh))
    cfg = {
        "input": {"path": str(MINI_BLOBS / "mini_blobs.tif"), "chunks": list(chunks)},
        "steps": {
            "mask": {"op": "threshold", "method": "otsu"},
            "blobs": {"op": "label", "connectivity": 2},
        },
        "output": {
            "path": str(tmp_path / "out"),
            "labels": "blobs",
            "table": {"format": "csv", "intensity": "input"},
        },
    }
    res = pipeline.run(cfg)
    cols, _ = _read(res.summary["table"])
    y = cols["centroid-0"].astype(float) + 0.5
    x = cols["centroid-1"].astype(float) + 0.5
    assert len(imagej) == 3
    for row in imagej:
        i = int(np.argmin(np.hypot(x - float(row["X"]), y - float(row["Y"]))))
        assert abs(x[i] - float(row["X"])) < 5e-4 and abs(y[i] - float(row["Y"])) < 5e-4
        assert float(cols["area"][i]) == float(row["Area"])
        assert float(cols["intensity_mean"][i]) == pytest.approx(float(row["Mean"]), abs=5e-4)
        assert float(cols["intensity_min"][i]) == float(row["Min"])
        assert float(cols["intensity_max"][i]) == float(row["Max"])


def test_tree_of_merges_equals_one_merge():
    """Merging partials in groups, then the groups (empty blocks among them), changes
    nothing: the write pass merges in a tree."""
    from pipeline.engine.blocks import BlockPlan
    from pipeline.measure import objects as measure

    rng = np.random.default_rng(5)
    labels = (rng.random((30, 40)) > 0.6) * rng.integers(1, 9, (30, 40))
    labels[:, 20:] = 0  # blocks with no object
    values = rng.integers(0, 1000, (30, 40)).astype(np.uint16)
    plan = BlockPlan.regular(labels.shape, (7, 10))
    parts = []
    for r, i in enumerate(plan.indices()):
        s = tuple(slice(a, b) for a, b in plan.box(i))
        parts.append(measure.block_partial(labels[s], values[s], plan.box(i), r))
    one = measure.merge(parts)
    for fan_in in (2, 3, 8):
        level = parts
        while len(level) > 1:
            level = [measure.merge(level[j : j + fan_in]) for j in range(0, len(level), fan_in)]
        tree = level[0]
        for name in ("ids", "counts", "coord_sums", "lo", "hi", "i_min", "i_max", "i_sumsq"):
            np.testing.assert_array_equal(getattr(tree, name), getattr(one, name), err_msg=name)
        for got, want in zip(measure.object_blocks(tree), measure.object_blocks(one), strict=True):
            np.testing.assert_array_equal(got, want)
    assert one.ids.tolist() == list(range(1, 9))
