"""``plumcode report DIR [DIR ...] [--out report.html]``."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=(
        "Write a self-contained HTML report (funnel, pass@1 per round, training curves, example pairs) "
        "and print a summary. Several directories are shown side by side (arms of an experiment)."))
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--out", "-o", help="HTML file (default: <first run>/report.html)")
    p.add_argument("--quiet", "-q", action="store_true", help="no terminal summary")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from plumcode.report import write_report

    path = write_report(args.runs, args.out, echo=not args.quiet)
    print(f"report: {path}", file=sys.stderr)
    return 0
