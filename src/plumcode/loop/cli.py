"""``plumcode run CONFIG --out DIR`` / ``plumcode run --resume DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=(
        "Run PLUM end to end over a run directory. Rerunning the same command (or --resume DIR) "
        "continues an interrupted run without redoing finished work."))
    p.add_argument("config", nargs="?", help="YAML config (see configs/; --explain lists every field)")
    p.add_argument("--out", "-o", help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", metavar="DIR", help=(
        "continue the run in DIR with its own config.yaml (--set rounds=N extends an online run)"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set sampling.n=4 (repeatable)")
    p.add_argument("--explain", action="store_true", help="list every config field with its default and meaning")
    p.add_argument("--no-report", action="store_true", help="do not write report.html at the end")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from plumcode.loop.config import RunConfig, dump_config, explain, load_config
    from plumcode.loop.layout import RunDir
    from plumcode.loop.runner import Runner, resume_config

    if args.explain:
        print("\n".join(explain(RunConfig)))
        return 0
    if args.resume:
        run_dir = Path(args.resume)
        if args.config:
            print("plumcode run: --resume uses the run's own config.yaml; ignoring", args.config, file=sys.stderr)
        cfg = resume_config(run_dir, args.overrides)
    else:
        if not args.config:
            print("plumcode run: give a config file or --resume DIR", file=sys.stderr)
            return 2
        cfg = load_config(args.config, args.overrides)
        run_dir = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
        existing = RunDir(run_dir).config
        if existing.exists() and existing.read_text(encoding="utf-8") != dump_config(cfg):
            print(f"plumcode run: {run_dir} holds a run with a different config; use --resume {run_dir} "
                  "to continue it or another --out", file=sys.stderr)
            return 2
    Runner(run_dir, cfg).run()
    if not args.no_report:
        from plumcode.report import write_report

        path = write_report([run_dir], echo=True)
        print(f"report: {path}", file=sys.stderr)
    return 0
