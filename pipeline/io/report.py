"""The run report: overview pictures (matplotlib, Agg) and a one-page HTML file.

The pictures are made from small arrays the write pass gathered (a pooled projection of
the image and of the labels, object sizes, objects per block), never from the volume.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from pipeline.io.ome_zarr import label_colours


def grey(image: np.ndarray) -> np.ndarray:
    """An image as 8-bit RGB grey levels, stretched between its 0.5 and 99.8 percentiles."""
    img = image.astype(np.float64)
    finite = img[np.isfinite(img)]
    lo, hi = np.percentile(finite, [0.5, 99.8]) if finite.size else (0.0, 1.0)
    scaled = np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    g = np.rint(np.nan_to_num(scaled) * 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def outlined(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``rgb`` with each label's outline drawn in the label's colour."""
    from skimage.segmentation import find_boundaries

    out = rgb.copy()
    edge = find_boundaries(labels, mode="inner") & (labels != 0)
    out[edge] = label_colours(labels[edge])
    return out


def _save_figure(fig, path: Path) -> None:
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)


def size_histogram(path: Path, sizes: np.ndarray, unit: str) -> None:
    """Histogram of object sizes (logarithmic bins when they span more than a decade)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    sizes = np.asarray(sizes, np.float64)
    if sizes.size:
        lo, hi = sizes.min(), sizes.max()
        if lo > 0 and hi / lo > 10:
            ax.hist(sizes, bins=np.geomspace(lo, hi, 40))
            ax.set_xscale("log")
        else:
            ax.hist(sizes, bins=40)
    ax.set_xlabel(f"object size ({unit})")
    ax.set_ylabel("objects")
    ax.set_title(f"{sizes.size} objects")
    _save_figure(fig, path)


def block_heatmap(path: Path, per_block: np.ndarray) -> None:
    """Objects per block: one panel per layer of blocks along z (at most eight shown)."""
    import matplotlib.pyplot as plt

    grid = per_block if per_block.ndim == 3 else per_block[None]
    layers = np.unique(np.linspace(0, grid.shape[0] - 1, min(8, grid.shape[0])).astype(int))
    fig, axes = plt.subplots(
        1, len(layers), figsize=(3 * len(layers) + 1, 3.4), layout="constrained", squeeze=False
    )
    vmax = max(int(grid.max()), 1)
    for ax, z in zip(axes[0], layers, strict=True):
        im = ax.imshow(grid[z], cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"z block {z}" if per_block.ndim == 3 else "blocks")
        ax.set_xticks(range(grid.shape[2]))
        ax.set_yticks(range(grid.shape[1]))
        ax.set_xlabel("x block")
        ax.set_ylabel("y block")
        if grid[z].size <= 64:
            for (r, c), v in np.ndenumerate(grid[z]):
                ax.text(c, r, str(v), ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=axes[0].tolist(), label="objects in block")
    _save_figure(fig, path)


def write_report(
    folder: Path,
    image: np.ndarray | None,
    labels: np.ndarray,
    sizes: np.ndarray,
    unit: str,
    per_block: np.ndarray,
    summary: dict,
) -> Path:
    """Write the pictures and ``report.html`` into ``folder``; the HTML file's path.

    Parameters
    ----------
    folder : Path
        Where the files go (created).
    image, labels : ndarray
        Pooled projections of the image (None: none) and of the labels, 2D.
    sizes : ndarray
        Object sizes in ``unit``.
    per_block : ndarray
        Objects per block, shaped like the block grid.
    summary : dict
        The run's summary (its figures head the page).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.image import imsave

    folder.mkdir(parents=True, exist_ok=True)
    base = grey(image) if image is not None else np.zeros((*labels.shape, 3), np.uint8)
    pictures = []
    if image is not None:
        imsave(folder / "projection.png", base)
    imsave(folder / "overview.png", outlined(base, labels))
    pictures.append(("overview.png", "Maximum projection with object outlines"))
    size_histogram(folder / "sizes.png", sizes, unit)
    pictures.append(("sizes.png", "Object sizes"))
    block_heatmap(folder / "blocks.png", per_block)
    pictures.append(("blocks.png", "Objects per block"))
    page = folder / "report.html"
    page.write_text(_html(summary, pictures), encoding="utf-8")
    return page


def _html(summary: dict, pictures: list[tuple[str, str]]) -> str:
    sizes = summary.get("object_sizes", {})
    rows = [
        ("objects", summary["count"]),
        ("labels", summary["labels"]),
        ("input", summary["input"]["path"]),
        ("shape", " × ".join(map(str, summary["shape"]))),
        ("voxel size", f"{summary['input']['spacing']} {summary['input']['unit'] or ''}"),
        ("blocks", summary["blocks"]),
        ("thresholds", json.dumps(summary["thresholds"])),
        ("median size", f"{sizes.get('median', '–')} voxels"),
        ("size range", f"{sizes.get('min', '–')} – {sizes.get('max', '–')} voxels"),
        ("table", summary.get("table", "–")),
    ]
    cells = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    figs = "\n".join(
        f'<figure><img src="{src}" alt="{html.escape(cap)}"><figcaption>{html.escape(cap)}'
        "</figcaption></figure>"
        for src, cap in pictures
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>segpipe report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
th{{text-align:left;padding-right:1em}}img{{max-width:100%}}</style></head>
<body><h1>segpipe: {html.escape(summary["labels_step"])}</h1>
<table>{cells}</table>
{figs}
</body></html>
"""
