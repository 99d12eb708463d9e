"""``plumcode execute``: run samples against problem tests, resumably, and print a summary.

``--ray-address`` runs the same sandbox on Ray (``plumcode.sandbox.on_ray``): one sandbox actor
per node, same verdict file, same resume rule; without it, the local process pool.
:func:`add_ray_arguments` and :func:`ray_options` give other commands (``plumcode evaluate``) the
same flags.
"""

from __future__ import annotations

import argparse
from typing import Any

from plumcode.sandbox._master import SandboxConfig
from plumcode.sandbox.defaults import DEFAULT_MEMORY_MB
from plumcode.sandbox.executor import execute_file


def add_ray_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Ray (scale-out)")
    g.add_argument("--ray-address", default=None,
                   help="execute on Ray: 'local' (a private local instance), 'auto' (the cluster this "
                        "machine joined with `ray start`), host:port, or ray://host:10001")
    g.add_argument("--ray-chunk-size", type=int, default=None,
                   help="samples per Ray task (default 8 x the node's workers)")
    g.add_argument("--ray-inflight", type=int, default=2, help="chunks in flight per node (back-pressure)")
    g.add_argument("--ray-chunk-timeout", type=float, default=None,
                   help="seconds after which a chunk's node is presumed hung and its chunk retried")


def ray_options(args: argparse.Namespace) -> Any:
    """The :class:`~plumcode.sandbox.on_ray.RayExecOptions` of :func:`add_ray_arguments`'s flags;
    None without ``--ray-address``."""
    if not getattr(args, "ray_address", None):
        return None
    from plumcode.sandbox.on_ray import RayExecOptions

    return RayExecOptions(chunk_size=args.ray_chunk_size, inflight_per_actor=args.ray_inflight,
                          chunk_timeout_s=args.ray_chunk_timeout)


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
    workers = max(1, args.workers) if args.workers is not None else None  # None: each machine's CPUs
    cfg = SandboxConfig(workers=workers, timeout_s=args.timeout, memory_mb=args.memory_mb,
                        fail_fast=args.fail_fast, cache_path=args.cache, isolation=args.isolation,
                        job_timeout_s=args.job_timeout)
    from plumcode.problems.schema import read_problems
    from plumcode.samples import execution_samples

    probs = {p.id: p for p in read_problems(args.problems)}
    with execution_samples(args.samples, probs, skip_bad=args.skip_bad_lines,
                           hint=" (fix them, or pass --skip-bad-lines to leave them out)",
                           problems_source=args.problems) as (samples, _):
        s = execute_file(args.problems, samples, args.out, cfg, progress=not args.no_progress,
                         ray_address=args.ray_address, ray_options=ray_options(args))
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

