"""``plumcode evaluate``: pass@k of a samples file (or the reference solutions) on a benchmark."""

from __future__ import annotations

import argparse
import sys

from plumcode.distributed.cli import add_ray_arguments


def register(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help, description=help + ". Samples are JSONL lines "
                       '{"problem_id", "sample_id", "code"} with n per problem; "canonical" evaluates '
                       "the benchmark's reference solutions.")
    p.add_argument("--benchmark", required=True,
                   help="humaneval, humaneval+, mbpp, mbpp-sanitized, mbpp+, livecodebench")
    p.add_argument("--samples", required=True, help="samples JSONL, or 'canonical'")
    p.add_argument("--path", help="benchmark file instead of the local copy / hub")
    p.add_argument("--problems", help="Problem JSONL to evaluate against instead of --benchmark's loader")
    p.add_argument("--out", help="results JSON (written atomically)")
    p.add_argument("--limit", type=int, help="first N problems only")
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
    from plumcode.distributed.cli import ray_options
    from plumcode.evaluation.core import EvalConfig, canonical_samples, evaluate
    from plumcode.io import atomic_write_json, read_jsonl
    from plumcode.problems.loaders import ALIASES, load_benchmark
    from plumcode.problems.schema import read_problems
    from plumcode.sandbox.types import Sample

    bench = ALIASES.get(args.benchmark.lower(), args.benchmark.lower())
    problems = read_problems(args.problems) if args.problems else load_benchmark(
        bench, args.path, limit=args.limit, min_time_limit=args.min_time_limit,
        time_limit_factor=args.time_limit_factor)
    if args.limit:
        problems = problems[: args.limit]
    if args.samples == "canonical":
        samples = canonical_samples(problems)
    else:
        samples = [Sample.from_json(rec, args.samples, line) for line, rec in read_jsonl(args.samples)]
    cfg = EvalConfig(workers=args.workers, timeout_s=args.timeout, memory_mb=args.memory_mb,
                     fail_fast=not args.no_fail_fast, cache_path=args.cache,
                     ks=tuple(int(k) for k in args.k.split(",") if k.strip()), progress=not args.no_progress,
                     ray_address=args.ray_address, ray_options=ray_options(args)[1] if args.ray_address else None)
    res = evaluate(problems, samples, cfg, benchmark=bench)
    print(res.table())
    if args.out:
        atomic_write_json(args.out, res.to_json())
        print(f"results written to {args.out}", file=sys.stderr)
    return 0
