"""HumanEval+ execution throughput: plumcode's sandbox vs evalplus vs the compute floor.

Samples: every canonical solution in ``--copies`` copies made distinct by a harmless module-level
statement (``_plumcode_copy = k``), so no cache can help. Both engines get ``--workers``
parallelism (2 by default) in the same run, and their per-sample verdicts are compared.
The floor is the time to run the same tests (evalplus's inputs, expected outputs and comparison)
in plain processes without any isolation or time limits: two processes, one per core, each timing
its half; floor = total compute / workers. evalplus and the floor run in fresh child processes
that load only evalplus's data.
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
import os
import resource
import shutil
import subprocess
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
    from plumcode.problems.schema import Problem, write_problems

    WORK.mkdir(parents=True, exist_ok=True)
    cache = WORK / "humaneval_plus_problems.jsonl"
    if cache.exists():  # stream: a --limit run reads only the lines it needs of this 300 MB file
        problems = []
        with open(cache, encoding="utf-8") as f:
            for line in f:
                if limit and len(problems) >= limit:
                    break
                problems.append(Problem.from_json(json.loads(line)))
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


# ---------------------------------------------------------------- evalplus and the floor
# Both run in fresh child processes that load only evalplus's own data, so neither inherits
# this process's memory (a big parent makes every fork evalplus does more expensive).
def cpu_now() -> float:
    """CPU seconds of this process plus every reaped descendant (a shared machine makes wall
    time depend on the neighbours; CPU time does much less)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def _evalplus_data(limit: int | None):
    from evalplus.data import get_human_eval_plus, get_human_eval_plus_hash
    from evalplus.evaluate import get_groundtruth

    problems = get_human_eval_plus()
    expected = get_groundtruth(problems, get_human_eval_plus_hash(), [])
    ids = list(problems)[:limit] if limit else list(problems)
    return problems, expected, ids


def _child_samples(problems, ids, copies):
    return [(tid, f"{tid}#{k}", problems[tid]["prompt"] + problems[tid]["canonical_solution"]
             + f"\n_plumcode_copy = {k}\n") for tid in ids for k in range(copies)]


def child_evalplus(limit, copies, workers, out):
    from evalplus.evaluate import check_correctness

    problems, expected, ids = _evalplus_data(limit)
    samples = _child_samples(problems, ids, copies)
    t0, c0 = time.perf_counter(), cpu_now()
    verdicts = {}
    with ProcessPoolExecutor(max_workers=workers) as ex:  # what evalplus.evaluate does
        futs = [ex.submit(check_correctness, "humaneval", i, problems[tid], code, expected[tid], False, True, sid)
                for i, (tid, sid, code) in enumerate(samples)]
        for f in as_completed(futs):
            r = f.result()
            verdicts[r["_identifier"]] = r["base"][0] == "pass" and r["plus"][0] == "pass"
    Path(out).write_text(json.dumps({"seconds": time.perf_counter() - t0, "cpu": cpu_now() - c0,
                                     "verdicts": verdicts}))


def child_floor(limit, copies, part, nparts, out_path):
    """The same inputs and expected outputs, EvalPlus's comparison, no process, no limits."""
    import numpy as np
    from evalplus.eval import _poly, is_floats

    problems, expected, ids = _evalplus_data(limit)
    samples = _child_samples(problems, ids, copies)[part::nparts]
    verdicts = {}
    t0, c0 = time.perf_counter(), cpu_now()
    for tid, sid, code in samples:
        p, e = problems[tid], expected[tid]
        ok = True
        try:
            g: dict = {}
            exec(code, g)
            fn = g[p["entry_point"]]
            for inputs, outs in ((p["base_input"], e["base"]), (p["plus_input"], e["plus"])):
                atol = p["atol"]
                for inp, exp in zip(inputs, outs, strict=True):
                    out = fn(*copy.deepcopy(inp))
                    if p["entry_point"] == "find_zero":
                        assert abs(_poly(*inp, out)) <= atol
                        continue
                    exact = out == exp
                    if atol == 0 and is_floats(exp):
                        atol = 1e-6
                    if not exact and atol != 0:
                        assert type(out) == type(exp)  # noqa: E721
                        if isinstance(exp, (list, tuple)):
                            assert len(out) == len(exp)
                        assert np.allclose(out, exp, rtol=1e-07, atol=atol)
                    else:
                        assert exact
        except BaseException:  # noqa: BLE001
            ok = False
        verdicts[sid] = ok
    Path(out_path).write_text(json.dumps({"seconds": time.perf_counter() - t0, "cpu": cpu_now() - c0,
                                          "verdicts": verdicts}))


def _spawn(args: list[str]):
    return subprocess.Popen([sys.executable, __file__, *args], env=dict(os.environ))


def run_evalplus(limit, copies, workers) -> tuple[float, float, dict]:
    out = WORK / "evalplus_result.json"
    rc = _spawn(["--_child", "evalplus", "--copies", str(copies), "--workers", str(workers), "--_out", str(out)]
                + (["--limit", str(limit)] if limit else [])).wait()
    if rc:
        raise RuntimeError(f"evalplus child failed ({rc})")
    r = json.loads(out.read_text())
    return r["seconds"], r["cpu"], r["verdicts"]


def run_floor(limit, copies, workers) -> tuple[float, float, dict]:
    outs = [WORK / f"floor_{i}.json" for i in range(workers)]
    procs = [_spawn(["--_child", "floor", "--copies", str(copies), "--workers", str(workers), "--_part", str(i),
                     "--_out", str(o)] + (["--limit", str(limit)] if limit else [])) for i, o in enumerate(outs)]
    if any(p.wait() for p in procs):
        raise RuntimeError("floor child failed")
    res = [json.loads(o.read_text()) for o in outs]
    return (sum(r["seconds"] for r in res) / workers, sum(r["cpu"] for r in res),
            {k: v for r in res for k, v in r["verdicts"].items()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N problems only (quick run)")
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-evalplus", action="store_true")
    ap.add_argument("--skip-floor", action="store_true")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_part", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--_out", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    src = data_dir() / "HumanEvalPlus-v0.1.10.jsonl.gz"
    WORK.mkdir(parents=True, exist_ok=True)
    plain = WORK / "HumanEvalPlus-v0.1.10.jsonl"
    if not plain.exists():
        with gzip.open(src, "rb") as f, open(plain, "wb") as g:
            shutil.copyfileobj(f, g)
    os.environ["HUMANEVAL_OVERRIDE_PATH"] = str(plain)
    if a._child == "evalplus":
        child_evalplus(a.limit, a.copies, a.workers, a._out)
        return 0
    if a._child == "floor":
        child_floor(a.limit, a.copies, a._part, a.workers, a._out)
        return 0
    if not a.skip_evalplus:  # evalplus computes its ground truth once (cached); not timed
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sys; sys.argv[1:] = []; from evalplus.data import "
                        "get_human_eval_plus, get_human_eval_plus_hash; from evalplus.evaluate import get_groundtruth; "
                        "p = get_human_eval_plus(); get_groundtruth(p, get_human_eval_plus_hash(), [])"], check=True)
        print(f"[setup] evalplus ground truth ready in {time.perf_counter() - t:.1f}s", flush=True)
    raw = {}
    with open(plain) as f:
        for line in f:
            r = json.loads(line)
            raw[r["task_id"]] = r

    from plumcode.sandbox import SandboxConfig, execute, isolation_level, shutdown

    problems = load_problems(a.limit)
    samples = make_samples(problems, raw, a.copies)
    n_tests = sum(len(p.tests) for p in problems) * a.copies
    cfg = SandboxConfig(workers=a.workers, fail_fast=True)
    level = isolation_level(cfg)
    shutdown()  # the timed run starts the zygotes itself (their CPU is counted)
    print(f"{len(problems)} problems x {a.copies} copies = {len(samples)} samples, {n_tests:,} test executions; "
          f"workers={a.workers}; isolation={level}", flush=True)

    t0, c0 = time.perf_counter(), cpu_now()
    ours = {v.sample_id: v for v in execute(problems, samples, cfg)}
    ours_s = time.perf_counter() - t0
    shutdown()  # reap the zygotes so their (and their children's) CPU time is accounted
    ours_cpu = cpu_now() - c0
    print(f"[plumcode] {ours_s:.1f}s wall, {ours_cpu:.1f}s CPU", flush=True)

    t0 = time.perf_counter()
    again = list(execute(problems, samples, cfg))
    hits_s = time.perf_counter() - t0
    assert all(v.cached for v in again)
    per_hit_us = hits_s / len(again) * 1e6

    ep_s = ep_v = ep_cpu = None
    if not a.skip_evalplus:
        ep_s, ep_cpu, ep_v = run_evalplus(a.limit, a.copies, a.workers)
        print(f"[evalplus] {ep_s:.1f}s wall, {ep_cpu:.1f}s CPU", flush=True)
    floor_s = floor_v = floor_cpu = None
    if not a.skip_floor:
        floor_s, floor_cpu, floor_v = run_floor(a.limit, a.copies, a.workers)
        print(f"[floor] {floor_s:.1f}s (sum of per-process time / {a.workers}), {floor_cpu:.1f}s CPU", flush=True)

    ours_pass = {k: v.passed for k, v in ours.items()}
    print()
    print(f"{'engine':<38}{'wall s':>8}{'samples/s':>11}{'vs floor':>10}{'CPU s':>8}{'vs floor':>10}{'pass':>7}")
    rows = [("plumcode (" + level + ")", ours_s, ours_cpu, ours_pass)]
    if ep_s is not None:
        rows.append(("evalplus (ProcessPoolExecutor)", ep_s, ep_cpu, ep_v))
    if floor_s is not None:
        rows.append(("floor: plain processes, no isolation", floor_s, floor_cpu, floor_v))
    for name, s, c, v in rows:
        ratio = f"{s / floor_s:.2f}x" if floor_s else "-"
        cratio = f"{c / floor_cpu:.2f}x" if floor_cpu else "-"
        print(f"{name[:37]:<38}{s:>8.1f}{len(samples) / s:>11.1f}{ratio:>10}{c:>8.1f}{cratio:>10}{sum(v.values()):>7}")
    print(f"{'verdict cache hit':<38}{per_hit_us:>7.1f}us per hit ({len(again)} hits in {hits_s * 1e3:.1f} ms)")
    if ep_s is not None:
        print(f"\nplumcode vs evalplus: {ep_s / ours_s:.2f}x less wall time, {ep_cpu / ours_cpu:.2f}x less CPU")
    dis = {}
    for name, _, _, v in rows[1:]:
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
            "plumcode_cpu_s": ours_cpu, "evalplus_cpu_s": ep_cpu, "floor_cpu_s": floor_cpu,
            "disagreements": dis}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
