"""The ``segpipe`` command: run, validate, plan, status, jobscript, ops, schema."""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from pipeline.errors import SegpipeError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="segpipe", description=__doc__)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (
        ("run", "run a pipeline"),
        ("validate", "check a config without reading pixels"),
        ("plan", "show steps, block grid, halos and memory per task"),
    ):
        c = sub.add_parser(name, help=help_)
        c.add_argument("config")
        c.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config value, e.g. steps.s.sigma=2",
        )
        c.add_argument("--debug", action="store_true", help="show tracebacks")
        if name == "run":
            c.add_argument("--overwrite", action="store_true", help="replace existing output")
            c.add_argument(
                "--input",
                dest="only",
                metavar="NAME|INDEX",
                help="run one input of a batch (by name, or index from 0), e.g. in a job array",
            )
            c.add_argument(
                "--block",
                metavar="I,J,K",
                help="compute just this block on one thread (with --debug: the traceback)",
            )
            c.add_argument(
                "--dry-run",
                action="store_true",
                help="check the config and open the inputs; compute and write nothing",
            )
        if name in ("run", "validate"):
            c.add_argument(
                "--scheduler",
                metavar="ADDRESS|FILE",
                help="run on an existing Dask scheduler (tcp://host:8786 or a scheduler file)",
            )
            c.add_argument(
                "--cluster",
                metavar="KIND",
                help="threads, local (a LocalCluster), or slurm, pbs, lsf (batch jobs, "
                "settings from the config's cluster.jobqueue and the site's jobqueue.yaml)",
            )
    st = sub.add_parser("status", help="how far the run writing into OUTPUT got")
    st.add_argument("output")
    j = sub.add_parser("jobscript", help="print the batch script of the config's worker jobs")
    j.add_argument("config")
    j.add_argument("--cluster", metavar="KIND", help="slurm, pbs or lsf (default: the config's)")
    j.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    o = sub.add_parser("ops", help="list ops and their parameters")
    o.add_argument("--json", action="store_true")
    sub.add_parser("schema", help="print the config JSON schema")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 config error, 3 data error)."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except SegpipeError as exc:
        if args.debug:
            traceback.print_exc()
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _dispatch(args) -> int:
    if args.command == "run":
        from pipeline.api import run
        from pipeline.batch import BatchResult

        res = run(
            args.config,
            args.overrides,
            overwrite=args.overwrite or None,
            progress=sys.stderr.isatty(),
            scheduler=args.scheduler,
            cluster=args.cluster,
            only=args.only,
            dry_run=args.dry_run,
            block=args.block,
        )
        if args.block:
            box = ", ".join(f"{lo}:{hi}" for lo, hi in res["box"])
            print(
                f"block {args.block} [{box}]: computed without error: {res['nonzero']} "
                f"non-zero voxels ({res['dtype']}), {res['ids']} ids"
            )
            return 0
        if args.dry_run:
            for r in res:
                shape = "×".join(map(str, r["shape"]))
                print(
                    f"would run {r['name']}: {r['input']} ({shape}, {r['blocks']} blocks) "
                    f"-> {r['output']}"
                )
            return 0
        if isinstance(res, BatchResult):
            return _report_batch(res)
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
    if args.command == "validate":
        from pipeline.config import load_config

        cfg = load_config(args.config, args.overrides, args.scheduler, args.cluster)
        print(f"{args.config}: valid ({len(cfg.dag.nodes) - 1} steps)")
        return 0
    if args.command == "status":
        from pipeline.status import describe_status

        print(describe_status(args.output))
        return 0
    if args.command == "jobscript":
        from pipeline.config import load_config
        from pipeline.engine.cluster import job_script
        from pipeline.errors import ConfigError

        cfg = load_config(args.config, args.overrides, None, args.cluster)
        if cfg.spec.cluster is None or cfg.spec.cluster.jobqueue is None:
            raise ConfigError(f"{args.config}: cluster.jobqueue: needed (or give --cluster slurm)")
        print(job_script(cfg.spec.cluster.jobqueue.model_dump(exclude_none=True)))
        return 0
    if args.command == "plan":
        from pipeline.plan import describe_plan

        print(describe_plan(args.config, args.overrides))
        return 0
    if args.command == "ops":
        from pipeline.ops.catalogue import CATALOGUE as ops

        if args.json:
            print(
                json.dumps(
                    {
                        n: {
                            "kind": o.kind,
                            "exact": o.exact,
                            "params": o.params.model_json_schema(),
                        }
                        for n, o in ops.items()
                    },
                    indent=2,
                )
            )
            return 0
        for name, op in ops.items():
            print(f"{name}  [{op.kind}]  {op.summary}")
            print(f"    exact across chunks: {op.exact}")
            for field, info in op.params.model_fields.items():
                default = "required" if info.is_required() else f"default {info.default!r}"
                print(f"    {field}: {info.description or ''} ({default})")
        return 0
    if args.command == "schema":
        from pipeline.config.model import json_schema

        print(json.dumps(json_schema(), indent=2))
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())


def _report_batch(res) -> int:
    """Print a line per input and the batch table; exit 3 when any input failed."""
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
