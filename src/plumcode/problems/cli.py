"""``plumcode problems``: write a benchmark or an instruction set as Problem JSONL."""

from __future__ import annotations

import argparse
import sys
import time

from plumcode.problems.schema import write_problems


def register(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    from plumcode.problems.loaders import BENCHMARKS

    p = sub.add_parser(name, help=help, description=help + ". Benchmarks: " + "; ".join(
        f"{k}: {v.description}" for k, v in BENCHMARKS.items()))
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--benchmark", metavar="NAME", help=", ".join(BENCHMARKS))
    src.add_argument("--instructions", metavar="PATH",
                     help="instruction set (JSON/JSONL, .gz ok): CodeAlpaca, Evol-Instruct, OSS-Instruct, Problem JSONL")
    p.add_argument("--path", help="benchmark file to read instead of the local copy / Hugging Face hub")
    p.add_argument("--format", dest="fmt", choices=["problems", "alpaca", "oss-instruct", "json", "jsonl"],
                   help="instruction-set format (default: detect)")
    p.add_argument("--python-only", action="store_true", help="instruction sets: keep Python tasks only")
    p.add_argument("--no-expected", action="store_true",
                   help="HumanEval+/MBPP+: skip running canonical solutions (problems without tests)")
    p.add_argument("--decontaminate", metavar="BENCH", action="append", default=[],
                   help="drop instructions overlapping this benchmark (13-gram); repeatable")
    p.add_argument("--limit", type=int, help="keep the first N problems")
    lcb = p.add_argument_group("LiveCodeBench selection (as lcb_runner selects; --path may be the shard folder)")
    lcb.add_argument("--release", help="release_v1 .. release_v6, release_latest, v5, v4_v5")
    lcb.add_argument("--start-date", help="contest_date >= this day (YYYY-MM-DD)")
    lcb.add_argument("--end-date", help="contest_date <= this day at 00:00 (YYYY-MM-DD)")
    p.add_argument("--out", required=True, help="output Problem JSONL")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from plumcode.problems.loaders import load_benchmark, load_instructions

    t0 = time.perf_counter()
    window = args.release or args.start_date or args.end_date
    if window and (args.benchmark or "").lower() not in ("livecodebench", "lcb"):
        raise ValueError("--release/--start-date/--end-date select LiveCodeBench problems")
    if window:
        from plumcode.problems.livecodebench import load_livecodebench

        probs, sel = load_livecodebench(args.path, release=args.release, start_date=args.start_date,
                                        end_date=args.end_date)
        print(f"LiveCodeBench selection: {sel}", file=sys.stderr)
    elif args.benchmark:
        probs = load_benchmark(args.benchmark, args.path, with_expected=not args.no_expected, limit=args.limit)
    else:
        probs = load_instructions(args.instructions, args.fmt, python_only=args.python_only)
    dropped = []
    if args.decontaminate:
        from plumcode.problems.decontam import decontaminate

        bench = [b for name in args.decontaminate for b in load_benchmark(name, with_expected=False)]
        probs, dropped = decontaminate(probs, bench)
    if args.limit:
        probs = probs[: args.limit]
    n = write_problems(args.out, probs)
    n_tests = sum(len(p.tests) for p in probs)
    msg = f"wrote {n} problems ({n_tests} tests) to {args.out} in {time.perf_counter() - t0:.1f}s"
    if dropped:
        msg += f"; decontamination dropped {len(dropped)} (e.g. {dropped[0].problem.id}: {dropped[0].reason})"
    print(msg, file=sys.stderr)
    return 0
