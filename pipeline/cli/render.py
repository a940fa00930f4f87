"""The command line's text for what the application floor returns."""

from __future__ import annotations

import sys

from pipeline.app import BatchResult, BlockResult, OutputStatus, PlannedInput, RunPlan, RunResult


def run_result(res: RunResult) -> int:
    """The outputs of a run, warnings on stderr."""
    if res.earlier:
        print(
            f"note: {res.summary_path.parent} finished earlier with this config; "
            "nothing computed (--overwrite runs again)"
        )
    for warning in res.summary.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"objects: {res.count}")
    print(f"labels:  {res.labels_path}")
    for key in ("image", "table", "nifti", "report"):
        if key in res.summary:
            print(f"{key + ':':<8} {res.summary[key]}")
    print(f"summary: {res.summary_path}")
    return 0


def batch_result(res: BatchResult) -> int:
    """A line per input and the batch table; exit 3 when any input failed."""
    for r in res.rows:
        detail = f"{r['count']} objects" if r["status"] != "failed" else r["error"]
        print(f"{r['name']}: {r['status']}, {detail} ({r['output']})")
    if res.table_path is not None:
        print(f"batch:   {res.table_path}")
    if res.failed:
        names = ", ".join(r["name"] for r in res.failed)
        print(
            f"error: {len(res.failed)} of {len(res.rows)} inputs failed: {names}", file=sys.stderr
        )
        return 3
    return 0


def dry_run(rows: list[PlannedInput]) -> int:
    """A line per input a run would read."""
    for r in rows:
        shape = "×".join(map(str, r.shape))
        print(f"would run {r.name}: {r.input} ({shape}, {r.blocks} blocks) -> {r.output}")
    return 0


def block_result(block: str, res: BlockResult) -> int:
    """What one block gave."""
    box = ", ".join(f"{lo}:{hi}" for lo, hi in res.box)
    print(
        f"block {block} [{box}]: computed without error: {res.nonzero} "
        f"non-zero voxels ({res.dtype}), {res.ids} ids"
    )
    return 0


def plan(p: RunPlan) -> str:
    """A plan in lines: input, spacing, resize, blocks, a line per step, memory."""
    lines = []
    if p.batch is not None:
        lines.append(f"batch:   {p.batch[0]} inputs; the plan of the first, {p.batch[1]!r}")
    lines += [
        f"input:   {p.input}  axes {p.axes}  shape {p.shape}  {p.dtype}",
        f"spacing: {p.spacing} {p.unit or ''}",
    ]
    if p.resize:
        lines.append(f"resize:  {p.resize}")
    lines += [f"blocks:  {p.block} -> grid {p.grid} = {p.blocks} blocks", "steps:"]
    for s in p.steps:
        lines.append(
            f"  {s.name:<20} {s.op:<22} {s.kind:<13} inputs {','.join(s.inputs):<12}"
            f" halo {s.halo}  fused halo {s.fused_halo}  ~{s.task_bytes / 2**20:.0f} MiB/task"
        )
    lines.append(f"memory per task (largest): ~{p.task_bytes / 2**20:.0f} MiB")
    return "\n".join(lines)


def status(st: OutputStatus) -> str:
    """A line per run (per pass of an unfinished one); for a batch, a first line."""
    lines = []
    for r in st.runs:
        if r.finished:
            took = f" in {r.seconds:.1f} s" if r.seconds is not None else ""
            lines.append(
                f"{r.path}: finished{took}: {r.count} objects, config {r.config_sha256[:12]}"
            )
            continue
        by = f"segpipe {r.made_by}" if r.made_by else "segpipe version not recorded"
        lines.append(f"{r.path}: interrupted or running, config {r.config_sha256[:12]}, {by}")
        for p in r.passes:
            state = "done" if p["done"] == p["blocks"] else "partly done"
            lines.append(f"  {p['pass']}: {p['label']}: {p['done']}/{p['blocks']} blocks ({state})")
        if not r.passes:
            lines.append("  no pass recorded yet")
    if st.batch:
        lines.insert(0, f"{st.path}: batch, {st.finished} of {len(st.runs)} runs finished")
    return "\n".join(lines)


def ops(catalogue) -> None:
    """A paragraph per op: kind, summary, exactness, parameters."""
    for name, op in catalogue.items():
        print(f"{name}  [{op.kind}]  {op.summary}")
        print(f"    exact across chunks: {op.exact}")
        for field, info in op.params.model_fields.items():
            default = "required" if info.is_required() else f"default {info.default!r}"
            print(f"    {field}: {info.description or ''} ({default})")
