"""One benchmark method per process: ``python bench_methods.py METHOD VOLUME OUT RESULT.json``.

Each method reads the Zarr volume, smooths it (Gaussian sigma 1, float64, mode nearest,
truncate 4), thresholds it at the global Otsu value, labels it with connectivity 1 and
writes the labels to Zarr. The result file gets the object count, the threshold and the
wall time of the method (imports excluded) with its stages.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

CHUNK = 128


class Stages:
    """Wall time per stage."""

    def __init__(self) -> None:
        self.t0 = self.last = time.perf_counter()
        self.stages: dict[str, float] = {}

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = now - self.last
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.t0


def segpipe_config(volume: str, out: str, chunk: int = CHUNK, threshold=None) -> dict:
    """The segpipe config of the benchmark (Otsu unless a fixed ``threshold`` is given)."""
    mask = {"op": "threshold", "method": "otsu", "input": "smooth"}
    if threshold is not None:
        mask = {"op": "threshold", "value": float(threshold), "input": "smooth"}
    return {
        "input": {"path": volume, "chunks": [chunk] * 3},
        "steps": {
            "smooth": {"op": "gaussian", "sigma": 1.0, "input": "input"},
            "mask": mask,
            "objects": {"op": "label", "connectivity": 1, "input": "mask"},
        },
        "output": {"path": out, "labels": "objects", "overwrite": True},
    }


def run_segpipe(volume: str, out: str) -> dict:
    import pipeline

    st = Stages()
    res = pipeline.run(segpipe_config(volume, out), overwrite=True)
    total = st.total()
    return {
        "count": int(res.count),
        "threshold": res.summary["thresholds"].get("mask"),
        "seconds": total,
        "stages": {k: round(v, 3) for k, v in res.summary["timings"].items()},
    }


def run_dask_image(volume: str, out: str, fixed: bool = False) -> dict:
    import dask
    import dask.array as da
    from dask_image import ndfilters, ndmeasure
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    if fixed:
        import bench_daskimage_fix

        bench_daskimage_fix.apply()
    st = Stages()
    x = da.from_zarr(volume)
    g = ndfilters.gaussian_filter(x.astype(np.float64), 1, mode="nearest", truncate=4)
    lo, hi = dask.compute(g.min(), g.max())
    st.mark("minmax")
    counts, edges = da.histogram(g, bins=256, range=(float(lo), float(hi)))
    counts = counts.compute()
    edges = np.asarray(edges)
    # skimage.filters.threshold_otsu(whole) uses np.histogram over (min, max), bin centres.
    t = float(threshold_otsu(hist=(counts, (edges[:-1] + edges[1:]) / 2)))
    st.mark("histogram+otsu")
    labels, n = ndmeasure.label(g > t, structure=ndi.generate_binary_structure(3, 1))
    store = da.to_zarr(labels.astype(np.uint32), out, mode="w", compute=False)
    st.mark("label graph")
    _, n = dask.compute(store, n)
    st.mark("label+write")
    return {"count": int(n), "threshold": t, "seconds": st.total(), "stages": st.stages}


def run_whole(volume: str, out: str) -> dict:
    import zarr
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu
    from skimage.measure import label

    st = Stages()
    img = zarr.open_array(volume, mode="r")[...]
    st.mark("read")
    g = ndi.gaussian_filter(img.astype(np.float64), 1, mode="nearest", truncate=4)
    del img
    st.mark("gaussian")
    t = float(threshold_otsu(g))
    st.mark("otsu")
    lab = label(g > t, connectivity=1)
    del g
    st.mark("label")
    count = int(lab.max())
    dst = zarr.create_array(
        out,
        shape=lab.shape,
        chunks=(CHUNK,) * 3,
        dtype="uint32",
        fill_value=0,
        dimension_names=("z", "y", "x"),
        overwrite=True,
    )
    dst[...] = lab.astype(np.uint32)
    st.mark("write")
    return {"count": count, "threshold": t, "seconds": st.total(), "stages": st.stages}


class _Stop(Exception):
    pass


def _reads(dsk: dict) -> int:
    """Input block reads in a graph (tasks may hold a read inline)."""
    from pipeline.engine import tasks

    count = 0
    todo = list(dsk.values())
    while todo:
        item = todo.pop()
        if isinstance(item, tuple) and item and item[0] is tasks.read_block:
            count += 1
        if isinstance(item, (tuple, list)):
            todo.extend(item)
    return count


def _plan_engine(record):
    """An Engine whose passes are built as in a run but never computed: each pass graph's
    ``compute`` hands the graph and its keys to ``record``, which answers in its place."""
    from pipeline.engine.engine import Engine
    from pipeline.engine.pass_graph import PassGraph

    class PlanGraph(PassGraph):
        def compute(self, keys: list) -> list:
            return record(self, keys)

    class PlanEngine(Engine):
        def new_pass(self, label: str) -> PassGraph:
            return PlanGraph(self, label)

    return PlanEngine


def run_plan(volume: str, out: str) -> dict:
    """Build (never compute) the segpipe graphs of a gaussian -> Otsu -> label pipeline:
    the program graph of the mask on every block, then the passes a run builds (range,
    histogram, labelling), the statistics passes answered with stand-in results."""
    import zarr

    from pipeline.app.plan import plan as describe_plan
    from pipeline.app.prepared import open_input, plan_for
    from pipeline.config import load_config
    from pipeline.graph.dag import with_input_spacing

    info: dict = {"stages": {}, "passes": []}
    chunk = zarr.open_array(volume, mode="r").chunks[0]  # blocks of the volume's chunks
    cfg_dict = segpipe_config(volume, out, chunk=chunk)
    last = [0.0]

    def record(graph, keys: list) -> list:
        build_s = round(time.perf_counter() - last[0], 3)
        reads = _reads(graph.dsk)  # counted outside the build time
        label = graph.label
        info["passes"].append(
            {
                "pass": label,
                "build_s": build_s,
                "tasks": len(graph.dsk),
                "input_reads": reads,
                "outputs": len(keys),
            }
        )
        if label.startswith("range "):  # the smoothed image's minimum and maximum
            answer = [(0.0, 1.0)] * len(keys)
        elif label.startswith("histogram "):  # summed histogram
            answer = [np.arange(256, dtype=np.int64) % 7 + 1]
        else:  # the labelling pass: its stitching needs real summaries
            raise _Stop
        last[0] = time.perf_counter()
        return answer

    st = Stages()
    describe_plan(cfg_dict)
    st.mark("describe_plan")
    cfg = load_config(cfg_dict)
    source = open_input(cfg)
    dag = with_input_spacing(cfg.dag, source.spacing)
    plan = plan_for(cfg, source)
    engine = _plan_engine(record)(dag, source, plan)
    engine.check(["objects"])
    st.mark("engine")
    try:
        # The mask on every block, in one graph (the Otsu value unknown: a stand-in).
        graph = engine.new_pass("program mask")
        engine.resolved["mask"] = 0.0
        for i in plan.indices():
            graph.keys.program("mask", i)
        del engine.resolved["mask"]
        st.mark("program x blocks")
        info["blocks"] = plan.nblocks
        info["program_tasks"] = len(graph.dsk)
        info["program_reads"] = _reads(graph.dsk)
        del graph
        # The passes of a run, each recorded where it would be computed.
        last[0] = time.perf_counter()
        try:
            engine.resolve(["objects"])
        except _Stop:
            pass
        st.mark("resolve (graphs only)")
        info["scratch_budget"] = engine.scratch.budget
        info["kept"] = sorted(engine.kept.blocks | engine.kept.halos)
    finally:
        engine.close()  # the scratch folders the graphs named
    info["stages"] = {k: round(v, 3) for k, v in st.stages.items()}
    info["seconds"] = st.total()
    info["count"] = None
    return info


METHODS = {
    "segpipe": run_segpipe,
    "dask-image": run_dask_image,
    "dask-image-fixed": lambda volume, out: run_dask_image(volume, out, fixed=True),
    "whole": run_whole,
    "plan": run_plan,
}


def main(argv: list[str]) -> int:
    method, volume, out, result = argv
    if method != "plan":
        shutil.rmtree(out, ignore_errors=True)
    info = METHODS[method](volume, out)
    info["method"] = method
    Path(result).write_text(json.dumps(info, default=_json_default))
    return 0


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(type(o))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
