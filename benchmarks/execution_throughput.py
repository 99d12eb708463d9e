"""HumanEval+ execution throughput: plumcode's sandbox vs evalplus vs the compute floor.

Samples: every canonical solution in ``--copies`` copies made distinct by a harmless module-level
statement (``_plumcode_copy = k``), so no cache can help. Both engines get ``--workers``
parallelism (2 by default) in the same run, and their per-sample verdicts are compared.
The floor is the time to run the same tests in plain processes without any isolation or
timeouts (two processes, one per core, each timing its half: floor = total compute / workers).
Finally the same samples are executed again to time verdict-cache hits.

    .venv/bin/python benchmarks/execution_throughput.py            # full: 164 x 10 = 1,640 samples
    .venv/bin/python benchmarks/execution_throughput.py --limit 8  # quick (< 1 minute)

Expected outputs come from ``plumcode.problems.load_benchmark("humaneval+")`` (computed with the
sandbox's own ``call_reference``), cached in benchmarks/_work/. evalplus computes its own with
its ``get_groundtruth`` (cached in ~/.cache/evalplus) before its timer starts.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "_work"


def data_dir() -> Path:
    return Path(os.environ.get("PLUMCODE_DATA_DIR", ROOT.parent / "shared" / "data"))


def load_problems(limit: int | None):
    from plumcode.problems.loaders import load_benchmark
    from plumcode.problems.schema import read_problems, write_problems

    WORK.mkdir(parents=True, exist_ok=True)
    cache = WORK / "humaneval_plus_problems.jsonl"
    if cache.exists():
        problems = read_problems(cache)
    else:
        t = time.perf_counter()
        problems = load_benchmark("humaneval+")
        write_problems(cache, problems)
        print(f"[setup] expected outputs via call_reference: {time.perf_counter() - t:.1f}s", flush=True)
    if limit:
        problems = problems[:limit]
    return problems


def make_samples(problems, raw: dict, copies: int):
    from plumcode.sandbox import Sample

    out = []
    for p in problems:
        r = raw[p.id]
        code = r["prompt"] + r["canonical_solution"]
        for k in range(copies):
            out.append(Sample(p.id, f"{p.id}#{k}", code + f"\n_plumcode_copy = {k}\n"))
    return out


# ---------------------------------------------------------------- floor: plain processes
def _floor_worker(args) -> tuple[float, dict]:
    problems_json, samples = args
    from plumcode.problems.schema import Problem
    from plumcode.sandbox.compare import call_output_matches

    probs = {d["id"]: Problem.from_json(d) for d in problems_json}
    verdicts = {}
    t0 = time.perf_counter()
    for pid, sid, code in samples:
        p = probs[pid]
        ok = True
        g: dict = {}
        try:
            exec(compile(code, "<c>", "exec"), g)
            fn = g[p.entry_point]
        except BaseException:  # noqa: BLE001
            verdicts[sid] = False
            continue
        for t in p.tests:
            try:
                if t.kind == "call":
                    out = fn(*copy.deepcopy(t.args))
                    if not call_output_matches(out, t.expected, t.atol):
                        ok = False
                else:
                    ns = dict(g)
                    if p.setup:
                        exec(p.setup, ns)
                    exec(t.code, ns)
            except BaseException:  # noqa: BLE001
                ok = False
            if not ok:
                break  # same work as fail-fast engines
        verdicts[sid] = ok
    return time.perf_counter() - t0, verdicts


def run_floor(problems, samples, workers: int) -> tuple[float, dict]:
    pj = [p.to_json() for p in problems]
    triples = [(s.problem_id, s.sample_id, s.code) for s in samples]
    parts = [(pj, triples[i::workers]) for i in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        res = list(ex.map(_floor_worker, parts))
    total = sum(t for t, _ in res)
    verdicts = {k: v for _, d in res for k, v in d.items()}
    return total / workers, verdicts


# ---------------------------------------------------------------- evalplus
def run_evalplus(problem_ids: list[str], samples, workers: int) -> tuple[float, dict, float]:
    from evalplus.data import get_human_eval_plus, get_human_eval_plus_hash
    from evalplus.evaluate import check_correctness, get_groundtruth

    t = time.perf_counter()
    problems = get_human_eval_plus()
    expected = get_groundtruth(problems, get_human_eval_plus_hash(), [])
    gt_s = time.perf_counter() - t
    t0 = time.perf_counter()
    verdicts = {}
    with ProcessPoolExecutor(max_workers=workers) as ex:  # what evalplus.evaluate does
        futs = {}
        for i, s in enumerate(samples):
            p = problems[s.problem_id]
            futs[ex.submit(check_correctness, "humaneval", i, p, s.code, expected[s.problem_id], False, True,
                           s.sample_id)] = s.sample_id
        for f in as_completed(futs):
            r = f.result()
            verdicts[r["_identifier"]] = r["base"][0] == "pass" and r["plus"][0] == "pass"
    return time.perf_counter() - t0, verdicts, gt_s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N problems only (quick run)")
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-evalplus", action="store_true")
    ap.add_argument("--skip-floor", action="store_true")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    a = ap.parse_args(argv)

    src = data_dir() / "HumanEvalPlus-v0.1.10.jsonl.gz"
    WORK.mkdir(parents=True, exist_ok=True)
    plain = WORK / "HumanEvalPlus-v0.1.10.jsonl"
    if not plain.exists():
        with gzip.open(src, "rb") as f, open(plain, "wb") as g:
            shutil.copyfileobj(f, g)
    os.environ["HUMANEVAL_OVERRIDE_PATH"] = str(plain)
    raw = {}
    with open(plain) as f:
        for line in f:
            r = json.loads(line)
            raw[r["task_id"]] = r

    from plumcode.sandbox import SandboxConfig, execute, isolation_level

    problems = load_problems(a.limit)
    samples = make_samples(problems, raw, a.copies)
    n_tests = sum(len(p.tests) for p in problems) * a.copies
    cfg = SandboxConfig(workers=a.workers, fail_fast=True)
    level = isolation_level(cfg)
    print(f"{len(problems)} problems x {a.copies} copies = {len(samples)} samples, {n_tests:,} test executions; "
          f"workers={a.workers}; isolation={level}", flush=True)

    t0 = time.perf_counter()
    ours = {v.sample_id: v for v in execute(problems, samples, cfg)}
    ours_s = time.perf_counter() - t0
    print(f"[plumcode] {ours_s:.1f}s", flush=True)

    t0 = time.perf_counter()
    again = list(execute(problems, samples, cfg))
    hits_s = time.perf_counter() - t0
    assert all(v.cached for v in again)
    per_hit_us = hits_s / len(again) * 1e6

    ep_s = ep_v = gt_s = None
    if not a.skip_evalplus:
        ep_s, ep_v, gt_s = run_evalplus([p.id for p in problems], samples, a.workers)
        print(f"[evalplus] {ep_s:.1f}s (ground truth {gt_s:.1f}s, not counted)", flush=True)
    floor_s = floor_v = None
    if not a.skip_floor:
        floor_s, floor_v = run_floor(problems, samples, a.workers)
        print(f"[floor] {floor_s:.1f}s", flush=True)

    ours_pass = {k: v.passed for k, v in ours.items()}
    print()
    print(f"{'engine':<34}{'seconds':>10}{'samples/s':>11}{'vs floor':>10}{'pass':>7}")
    rows = [("plumcode sandbox (" + level + ")", ours_s, ours_pass)]
    if ep_s is not None:
        rows.append(("evalplus (ProcessPoolExecutor)", ep_s, ep_v))
    if floor_s is not None:
        rows.append(("floor: plain processes, no isolation", floor_s, floor_v))
    for name, s, v in rows:
        ratio = f"{s / floor_s:.2f}x" if floor_s else "-"
        print(f"{name[:33]:<34}{s:>10.1f}{len(samples) / s:>11.1f}{ratio:>10}{sum(v.values()):>7}")
    print(f"{'verdict cache hit':<34}{per_hit_us:>9.1f}us per hit ({len(again)} hits in {hits_s * 1e3:.1f} ms)")
    if ep_s is not None:
        print(f"\nplumcode vs evalplus: {ep_s / ours_s:.2f}x faster")
    dis = {}
    for name, _, v in rows[1:]:
        d = sorted(k for k in ours_pass if ours_pass[k] != v.get(k))
        dis[name] = d
        tasks = sorted({k.split("#")[0] for k in d})
        print(f"disagreements with {name}: {len(d)} samples in {len(tasks)} tasks {tasks[:10]}")
        for t in tasks[:10]:
            k = next(x for x in d if x.startswith(t + "#"))
            ours_v = ours[k]
            bad = [(i, r.status, r.message) for i, r in enumerate(ours_v.tests) if r.status != "pass"][:1]
            print(f"   {t}: plumcode={ours_pass[k]} {name.split()[0]}={v.get(k)}; plumcode first non-pass: {bad}")
    if a.json:
        Path(a.json).write_text(json.dumps({
            "samples": len(samples), "tests": n_tests, "workers": a.workers, "isolation": level,
            "plumcode_s": ours_s, "evalplus_s": ep_s, "floor_s": floor_s, "cache_hit_us": per_hit_us,
            "disagreements": dis}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
