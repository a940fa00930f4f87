"""k-means centres come from one seeded sample of the whole volume; ids agree everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.ops.classify import KMeansParams, SelectParams, fit_centres, sample_coordinates
from pipeline.ops.filters import GaussianParams
from tests.conftest import run_steps


def _three_phase(shape=(10, 24, 22), seed=0):
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.uint8)
    truth[:, : shape[1] // 3] = 0
    truth[:, shape[1] // 3 : 2 * shape[1] // 3] = 1
    truth[:, 2 * shape[1] // 3 :] = 2
    rng.shuffle(truth.reshape(-1, shape[-1]))  # rows of phases in random order
    img = np.array([100.0, 400.0, 900.0])[truth] + rng.normal(0, 25, shape)
    return img.astype(np.float32), truth


def _whole(images: list[np.ndarray], params: KMeansParams) -> np.ndarray:
    """The same k-means on the whole arrays: same sample, same fit, nearest centre."""
    coords = tuple(sample_coordinates(images[0].shape, params).T)
    feats = np.stack([im.astype(np.float64) for im in images], axis=-1)
    centres = fit_centres(feats[coords], params)
    d = ((feats[..., None, :] - centres) ** 2).sum(-1)
    return np.argmin(d, axis=-1).astype(np.uint8), centres


@pytest.mark.parametrize("chunks", [(2, 5, 7), (3, 24, 22), (10, 24, 22)])
def test_kmeans_equals_whole_volume_fit_and_recovers_phases(chunks):
    img, truth = _three_phase()
    params = KMeansParams(k=3, sample=2000, seed=5)
    out, engine = run_steps(img, {"c": ("kmeans", params, ("input",))}, "c", chunks)
    ref, centres = _whole([img], params)
    np.testing.assert_array_equal(engine.resolved["c"], centres)
    np.testing.assert_array_equal(out, ref)
    assert np.mean(out == truth) > 0.999  # darkest phase is class 0


def test_kmeans_is_the_same_at_every_chunking_and_select_picks_classes():
    img, truth = _three_phase(seed=2)
    params = KMeansParams(k=3, sample=500, seed=1)
    steps = {
        "c": ("kmeans", params, ("input",)),
        "bright": ("select", SelectParams(classes=[1, 2]), ("c",)),
    }
    results = [run_steps(img, steps, "bright", ch)[0] for ch in [(1, 4, 5), (5, 12, 11)]]
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], np.isin(_whole([img], params)[0], [1, 2]))


def test_kmeans_with_a_second_feature_2d():
    rng = np.random.default_rng(3)
    img = rng.normal(0, 1, (60, 50)) + 5 * (np.arange(50) > 25)
    params = KMeansParams(k=4, sample=800, seed=0, features=["smooth"])
    steps = {
        "smooth": ("gaussian", GaussianParams(sigma=2.0), ("input",)),
        "c": ("kmeans", params, ("input", "smooth")),
    }
    out, _ = run_steps(img, steps, "c", (13, 9))
    from scipy import ndimage as ndi

    smooth = ndi.gaussian_filter(img, 2.0, mode="nearest")
    np.testing.assert_array_equal(out, _whole([img, smooth], params)[0])


def test_kmeans_needs_k_distinct_values():
    from pipeline.errors import DataError

    img = np.repeat([[1.0, 2.0]], 10, axis=0)
    with pytest.raises(DataError, match="fewer than k=3 distinct"):
        run_steps(img, {"c": ("kmeans", KMeansParams(k=3, sample=20), ("input",))}, "c", (5, 2))


def test_kmeans_on_an_rgb_tiff(tmp_path):
    import tifffile
    import zarr

    import pipeline

    rng = np.random.default_rng(6)
    colours = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]], np.float64)
    truth = rng.integers(0, 3, (12, 10)).repeat(4, axis=0).repeat(4, axis=1)
    rgb = np.clip(colours[truth] + rng.normal(0, 10, (*truth.shape, 3)), 0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    cfg = {
        "input": {"path": str(tmp_path / "rgb.tif"), "chunks": [16, 12]},
        "steps": {"c": {"op": "kmeans", "k": 3, "sample": 1000, "seed": 2}},
        "output": {"path": str(tmp_path / "out"), "labels": "c"},
    }
    res = pipeline.run(cfg)
    got = np.asarray(zarr.open_group(str(res.labels_path), mode="r")["0"])
    # Centres sorted by mean channel value; the three colours have equal means, so
    # compare partitions: each true colour maps to exactly one class.
    pairs = {(int(t), int(g)) for t, g in zip(truth.ravel(), got.ravel(), strict=True)}
    assert len(pairs) == 3 and len({g for _, g in pairs}) == 3
    params = KMeansParams(k=3, sample=1000, seed=2)
    coords = tuple(sample_coordinates(truth.shape, params).T)
    centres = fit_centres(rgb.astype(np.float64)[coords], params)
    d = ((rgb.astype(np.float64)[..., None, :] - centres) ** 2).sum(-1)
    np.testing.assert_array_equal(got, np.argmin(d, axis=-1))


def test_kmeans_on_every_channel_of_an_ome_zarr(tmp_path):
    import zarr

    import pipeline
    from tests.input_files import write_ome_zarr_channels

    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, (10, 12)).repeat(4, axis=0).repeat(4, axis=1)
    data = np.stack([truth * 100.0, (1 - truth) * 50.0]) + rng.normal(0, 5, (2, *truth.shape))
    write_ome_zarr_channels(tmp_path / "in.ome.zarr", data.astype(np.float32), (1, 16, 16))
    cfg = {
        "input": {"path": str(tmp_path / "in.ome.zarr"), "channel": "all", "chunks": [16, 20]},
        "steps": {"c": {"op": "kmeans", "k": 2, "sample": 500, "seed": 1}},
        "output": {"path": str(tmp_path / "out"), "labels": "c"},
    }
    got = np.asarray(zarr.open_group(str(pipeline.run(cfg).labels_path), mode="r")["0"])
    pixels = np.moveaxis(data.astype(np.float32), 0, -1).astype(np.float64)
    params = KMeansParams(k=2, sample=500, seed=1)
    centres = fit_centres(pixels[tuple(sample_coordinates(truth.shape, params).T)], params)
    d = ((pixels[..., None, :] - centres) ** 2).sum(-1)
    np.testing.assert_array_equal(got, np.argmin(d, axis=-1))
    assert len({(int(t), int(g)) for t, g in zip(truth.ravel(), got.ravel(), strict=True)}) == 2
