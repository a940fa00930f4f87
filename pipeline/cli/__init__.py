"""The ``segpipe`` command: run, validate, plan, status, jobscript, ops, schema."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import traceback

from pipeline.errors import SegpipeError


class _Parser(argparse.ArgumentParser):
    """argparse with a usage error as one ``error:`` line (exit 2, as config errors)."""

    def error(self, message: str):
        hint = f" (see {self.prog} --help)"
        self.exit(2, f"error: {self.prog}: {message}{hint}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="segpipe", description=__doc__)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"segpipe {_version()}")
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


def _version() -> str:
    from pipeline import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 config error, 3 data error, 130
    interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a reader gone away shows here, not at exit
        return code
    except SegpipeError as exc:
        if args.debug:
            traceback.print_exc()
        for line in str(exc).splitlines():
            print(f"error: {_capped(line)}", file=sys.stderr)
        return exc.exit_code
    except MemoryError as exc:  # what the steps' checks could not foresee
        print(f"error: ran out of memory: {_capped(str(exc)) or 'MemoryError'}", file=sys.stderr)
        return 3
    except BrokenPipeError:  # e.g. `segpipe ops | head -1`: the reader has what it wanted
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        if args.command == "run":
            again = shlex.join(["segpipe", *argv])
            print(f"error: interrupted; run the same command to resume: {again}", file=sys.stderr)
        else:
            print("error: interrupted", file=sys.stderr)
        return 130


MAX_LINE = 1000  # characters of one error line (a value it echoes may be huge)


def _capped(line: str) -> str:
    if len(line) <= MAX_LINE:
        return line
    return f"{line[:MAX_LINE]}... ({len(line) - MAX_LINE} more characters)"


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush finds no pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (captured)
        pass
    finally:
        os.close(devnull)


def _dispatch(args) -> int:
    from pipeline import app
    from pipeline.cli import render

    if args.command == "run":
        if args.block:
            res = app.run_block(args.config, args.block, args.overrides, only=args.only)
            return render.block_result(args.block, res)
        if args.dry_run:
            rows = app.dry_run(args.config, args.overrides, args.scheduler, args.cluster, args.only)
            return render.dry_run(rows)
        cfg = app.load(args.config, args.overrides, args.scheduler, args.cluster)
        overwrite = args.overwrite or None
        if args.only is None and app.is_batch(cfg):
            return render.batch_result(app.run_batch(cfg, overwrite=overwrite))
        res = app.run(cfg, overwrite=overwrite, progress=sys.stderr.isatty(), only=args.only)
        return render.run_result(res)
    if args.command == "validate":
        cfg = app.load(args.config, args.overrides, args.scheduler, args.cluster)
        print(f"{args.config}: valid ({len(cfg.dag.nodes) - 1} steps)")
        return 0
    if args.command == "status":
        print(render.status(app.status(args.output)))
        return 0
    if args.command == "jobscript":
        print(app.jobscript(args.config, args.overrides, args.cluster))
        return 0
    if args.command == "plan":
        print(render.plan(app.plan(args.config, args.overrides)))
        return 0
    if args.command == "ops":
        from pipeline.ops.catalogue import CATALOGUE

        if args.json:
            listing = {
                n: {"kind": o.kind, "exact": o.exact, "params": o.params.model_json_schema()}
                for n, o in CATALOGUE.items()
            }
            print(json.dumps(listing, indent=2))
            return 0
        render.ops(CATALOGUE)
        return 0
    if args.command == "schema":
        from pipeline.config.model import json_schema

        print(json.dumps(json_schema(), indent=2))
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
