"""HumanEval+ execution throughput: plain sandbox process pool vs the same sandbox on Ray, in one
run, plus a paper estimate of the cluster size a 7B PLUM round needs.

    .venv/bin/python benchmarks/ray_execution.py                       # local Ray instance
    .venv/bin/python benchmarks/ray_execution.py --cluster 2           # + 2 loopback worker nodes
    .venv/bin/python benchmarks/ray_execution.py --address auto        # an existing cluster

Samples are the canonical HumanEval+ solutions (each made unique with a comment, so the verdict
cache never short-cuts a run), against the first ``--max-tests`` tests of every problem. Costs
are reported as core-seconds (wall x workers), which is what a cluster-size estimate needs.
The estimate: execution of a round (prompts x samples, each run against ``--tests`` synthetic
tests) must fit in the round's generation time on ``--gpus`` GPUs at ``--gen-tok-s`` output
tokens/s per GPU and ``--sample-tokens`` tokens per sample; the cores needed follow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def build(max_tests: int, n_problems: int | None, copies: int):
    from plumcode.problems.loaders import load_benchmark
    from plumcode.sandbox.types import Sample

    probs = load_benchmark("humaneval+")
    if n_problems:
        probs = probs[:n_problems]
    for p in probs:
        p.tests = p.tests[:max_tests]
    samples = [Sample(p.id, f"{p.id}#{c}", f"{p.reference_solution}\n# copy {c}\n")
               for c in range(copies) for p in probs]
    return probs, samples


def uniq(samples, tag: str):
    from plumcode.sandbox.types import Sample

    return [Sample(s.problem_id, s.sample_id, s.code + f"# {tag}\n") for s in samples]


def run_pool(probs, samples, workers: int) -> dict:
    from plumcode.sandbox import SandboxConfig, execute

    cfg = SandboxConfig(workers=workers)
    t = time.perf_counter()
    vs = list(execute(probs, samples, cfg))
    wall = time.perf_counter() - t
    return {"wall_s": wall, "samples": len(vs), "passed": sum(v.passed for v in vs),
            "tests": sum(v.n_tests for v in vs), "isolation": vs[0].isolation if vs else ""}


def run_ray(ex, samples) -> dict:
    t = time.perf_counter()
    vs = list(ex.execute(samples))
    wall = time.perf_counter() - t
    return {"wall_s": wall, "samples": len(vs), "passed": sum(v.passed for v in vs),
            "tests": sum(v.n_tests for v in vs), "isolation": sorted({v.isolation for v in vs})}


def estimate(cost_problem_s: float, cost_sample_s: float, cost_test_s: float, a: argparse.Namespace) -> dict:
    n = a.prompts * a.samples_per_prompt
    exec_core_s = a.prompts * cost_problem_s + n * (cost_sample_s + a.tests * cost_test_s)
    rows = []
    for gpus in a.gpus:
        gen_wall = n * a.sample_tokens / (a.gen_tok_s * gpus)
        cores = exec_core_s / gen_wall
        rows.append({"gpus": gpus, "generation_wall_h": round(gen_wall / 3600, 2),
                     "cores_needed": round(cores, 1),
                     f"nodes_of_{a.node_cores}_cores": round(cores / a.node_cores, 2)})
    return {"samples": n, "tests_per_sample": a.tests, "sample_tokens": a.sample_tokens,
            "gen_tok_s_per_gpu": a.gen_tok_s, "exec_core_hours": round(exec_core_s / 3600, 2), "by_gpus": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-tests", type=int, default=100, help="tests per problem (HumanEval+ has ~760)")
    ap.add_argument("--problems", type=int, default=None, help="first N problems (default all 164)")
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3,
                    help="alternating pool/ray repetitions; the first is reported as cold, the median of "
                         "the rest as warm")
    ap.add_argument("--address", default=None, help="Ray address; default a local instance")
    ap.add_argument("--cluster", type=int, default=0,
                    help="instead: a loopback cluster of N worker nodes sharing --workers cores")
    ap.add_argument("--chunk-size", type=int, default=None)
    # paper-estimate assumptions
    ap.add_argument("--prompts", type=int, default=20000)
    ap.add_argument("--samples-per-prompt", type=int, default=16)
    ap.add_argument("--tests", type=int, default=10, help="synthetic tests per problem in a PLUM round")
    ap.add_argument("--sample-tokens", type=int, default=300)
    ap.add_argument("--gen-tok-s", type=float, default=10000.0,
                    help="vLLM output tokens/s per H100 for a 7B model at high concurrency (assumption)")
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--node-cores", type=int, default=32)
    ap.add_argument("--out", default=None, help="write the JSON result here too")
    a = ap.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # local instances on loopback
    from plumcode.raycluster import connect
    from plumcode.sandbox import SandboxConfig, isolation_level
    from plumcode.sandbox.on_ray import RayExecOptions, RayExecutor

    t = time.perf_counter()
    probs, samples = build(a.max_tests, a.problems, a.copies)
    load_s = time.perf_counter() - t
    n_tests = sum(len(p.tests) for p in probs) * a.copies
    print(f"loaded {len(probs)} problems, {len(samples)} samples, {n_tests} test runs ({load_s:.1f}s)",
          file=sys.stderr)
    isolation_level(SandboxConfig(workers=a.workers))  # warm the zygotes before timing the pool

    cluster = None
    t = time.perf_counter()
    if a.cluster:
        import ray
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        per = max(1, a.workers // a.cluster)
        for _ in range(a.cluster):
            cluster.add_node(num_cpus=per)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
    else:
        connect(a.address, num_cpus=a.workers if a.address is None else None)
    ray_start_s = time.perf_counter() - t
    t = time.perf_counter()
    # workers unset: each node runs one per CPU it has (as before); --workers sizes the plain pool
    ex = RayExecutor(probs, SandboxConfig(), options=RayExecOptions(chunk_size=a.chunk_size))
    list(ex.execute(uniq(samples[:len(ex._drv.actors)], "warm")))  # actors up, zygotes warm
    actors_s = time.perf_counter() - t

    pool_runs, ray_runs = [], []
    for r in range(a.reps):
        pool_runs.append(run_pool(probs, uniq(samples, f"pool{r}"), a.workers))
        ray_runs.append(run_ray(ex, uniq(samples, f"ray{r}")))
        print(f"rep {r}: pool {pool_runs[-1]['wall_s']:.2f}s  ray {ray_runs[-1]['wall_s']:.2f}s", file=sys.stderr)
    # per-sample overhead: the same samples against one test each
    one = [p for p in probs]
    saved = [p.tests for p in one]
    for p in one:
        p.tests = p.tests[:1]
    min_runs = [run_pool(one, uniq(samples, f"one{r}"), a.workers) for r in range(a.reps)]
    for p, ts in zip(one, saved, strict=True):
        p.tests = ts

    # rep 0 is cold (per-problem one-time work: tests pickled/decoded/fingerprinted, judges warmed);
    # later reps are the steady state of a round where each problem has many samples
    warm = slice(1, None) if a.reps > 1 else slice(0, None)
    pool_cold, ray_cold = pool_runs[0]["wall_s"], ray_runs[0]["wall_s"]
    pool_wall = statistics.median(x["wall_s"] for x in pool_runs[warm])
    ray_wall = statistics.median(x["wall_s"] for x in ray_runs[warm])
    one_wall = statistics.median(x["wall_s"] for x in min_runs[warm])
    n = len(samples)
    cost_sample = one_wall * a.workers / n  # core-seconds per sample with one test
    cost_test = max(0.0, (pool_wall * a.workers - n * cost_sample) / max(1, n_tests - n))
    cost_problem = max(0.0, (pool_cold - pool_wall) * a.workers / len(probs)) if a.reps > 1 else 0.0

    def side(runs: list[dict], cold: float, wall: float) -> dict:
        return {"warm_wall_s": round(wall, 3), "cold_wall_s": round(cold, 3),
                "warm_samples_per_s": round(n / wall, 2), "warm_tests_per_s": round(n_tests / wall, 1),
                "passed_per_run": [x["passed"] for x in runs], "isolation": runs[0]["isolation"],
                "runs_s": [round(x["wall_s"], 3) for x in runs]}

    res = {
        "machine": {"cpus": os.cpu_count(), "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
                    "workers": a.workers, "ray_nodes": a.cluster or "local"},
        "workload": {"problems": len(probs), "samples": n, "test_runs": n_tests, "max_tests": a.max_tests,
                     "reps": a.reps},
        "pool": side(pool_runs, pool_cold, pool_wall),
        "ray": side(ray_runs, ray_cold, ray_wall) | {
            "ray_start_s": round(ray_start_s, 2), "actor_start_s": round(actors_s, 2),
            "chunks_submitted": ex.stats.chunks_submitted},
        "ray_overhead_pct_warm": round(100 * (ray_wall / pool_wall - 1), 1),
        "ray_overhead_pct_cold": round(100 * (ray_cold / pool_cold - 1), 1),
        "cost": {"core_s_per_problem_setup": round(cost_problem, 4),
                 "core_s_per_sample_overhead": round(cost_sample, 5), "core_s_per_test": round(cost_test, 6),
                 "one_test_runs_s": [round(x["wall_s"], 3) for x in min_runs]},
        "estimate_7b_round": estimate(cost_problem, cost_sample, cost_test, a),
    }
    ex.close()
    if cluster is not None:
        import ray

        ray.shutdown()
        cluster.shutdown()
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        from plumcode.io import atomic_write_text

        atomic_write_text(a.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
