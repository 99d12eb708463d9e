"""Synthetic-test quality per validation mode, on HumanEval+ and MBPP+ slices.

The test writer (default: the embedded Qwen2.5-Coder-0.5B-Instruct) writes tests and proposes
inputs once per problem (raw outputs kept in ``WORKDIR/raw_tests.jsonl``); every validation mode
is then applied to the *same* raw outputs, so the rows differ only by validation. Policy samples
(``WORKDIR/samples.jsonl``; by default sampled from the same model) are labelled by the kept
synthetic tests and by the ground truth (base+plus tests). Mutants of the reference measure the
kill rate. Everything is resumable: rerun the same command after an interruption.

    python benchmarks/test_quality.py --backend default --he 40 --mbpp 40 --workdir runs/test-quality

Output: a markdown table on stdout and ``WORKDIR/results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from plumcode.io import atomic_write_json, atomic_write_jsonl, load_jsonl
from plumcode.problems.schema import Problem, read_problems, write_problems
from plumcode.sandbox.types import Sample
from plumcode.testgen import (
    TestgenConfig,
    funnel_totals,
    generated_from_record,
    problems_with_synthetic_tests,
    read_records,
    synthesize_tests,
    validate,
)
from plumcode.testgen import quality as Q
from plumcode.testgen.execution import default_runner

MODES = {"none": (), "reference": ("reference",), "inputs": ("inputs",),
         "reference+inputs": ("reference", "inputs"), "agreement": ("agreement",),
         "reference+agreement": ("reference", "agreement"),
         "inputs+augment": ("inputs",), "reference+inputs+augment": ("reference", "inputs")}
AUGMENTED = {"inputs+augment", "reference+inputs+augment"}  # rows that add --augment mutated inputs


def spread(items: list, k: int) -> list:
    """k items evenly spread over the list (a slice that is not just the easy first problems)."""
    if k >= len(items):
        return list(items)
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


def load_problems(workdir: Path, n_he: int, n_mbpp: int, with_expected: bool = True) -> list[Problem]:
    """Evenly spread slices; written to WORKDIR/problems.jsonl (reused when present)."""
    path = workdir / "problems.jsonl"
    if path.exists():
        return read_problems(path)
    from plumcode.problems.loaders import load_benchmark

    probs: list[Problem] = []
    if n_he:
        probs += spread(load_benchmark("humaneval+", with_expected=with_expected), n_he)
    if n_mbpp:
        probs += spread(load_benchmark("mbpp+", with_expected=with_expected), n_mbpp)
    if with_expected:
        write_problems(path, probs)
    return probs


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="default", help="test writer (and policy) backend spec")
    ap.add_argument("--he", type=int, default=40, help="HumanEval+ problems (evenly spread)")
    ap.add_argument("--mbpp", type=int, default=40, help="MBPP+ problems (evenly spread)")
    ap.add_argument("--workdir", default="runs/test-quality")
    ap.add_argument("--samples", help="use these policy samples instead of sampling the backend")
    ap.add_argument("--n-samples", type=int, default=4, help="policy samples per problem")
    ap.add_argument("--sample-temperature", type=float, default=0.8)
    ap.add_argument("--sample-max-tokens", type=int, default=384)
    ap.add_argument("--n-tests", type=int, default=8)
    ap.add_argument("--n-inputs", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=384, help="per test-writer completion")
    ap.add_argument("--max-tests", type=int, default=20)
    ap.add_argument("--max-candidates", type=int, default=40,
                    help="unique tests/inputs examined per problem (LM proposals first, then augmented)")
    ap.add_argument("--mutants", type=int, default=10, help="mutants per problem")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated rows: {', '.join(MODES)}")
    ap.add_argument("--augment", type=int, default=20,
                    help="extra inputs per problem mutated from the proposals, in the *+augment rows")
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gen-only", action="store_true",
                    help="only generate tests and samples (no ground truth needed); measure in a later run")
    ap.add_argument("--no-generate", action="store_true",
                    help="measure only the problems that already have raw tests and samples in WORKDIR")
    ap.add_argument("--chunk", type=int, default=4, help="problems per generation chunk")
    ap.add_argument("--budget-min", type=float, help="stop generating after this many minutes, measure what is done")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("test_quality")
    wd = Path(args.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t = time.monotonic()
    problems = load_problems(wd, args.he, args.mbpp, with_expected=not args.gen_only)
    timings["load_problems_s"] = time.monotonic() - t
    log.info("%d problems (%d with ground-truth tests)", len(problems), sum(bool(p.tests) for p in problems))
    runner = default_runner(args.timeout)

    gen_cfg = TestgenConfig(validate=(), inputs_prompt=True, n_tests=args.n_tests, n_inputs=args.n_inputs,
                            max_tokens=args.max_tokens, max_tests=args.max_tests, seed=args.seed,
                            timeout_s=args.timeout, temperature=0.0)
    raw_path = wd / "raw_tests.jsonl"
    samples_path = Path(args.samples) if args.samples else wd / "samples.jsonl"
    deadline = time.monotonic() + args.budget_min * 60 if args.budget_min else float("inf")

    def have_raw() -> set[str]:
        return {r["problem_id"] for r in read_records(raw_path)} if raw_path.exists() else set()

    def have_samples() -> set[str]:
        return {r["problem_id"] for r in load_jsonl(samples_path)} if samples_path.exists() else set()

    backend = None
    identity: dict = {}
    # chunk by chunk (tests, then policy samples), so a time budget still leaves complete problems
    for c in range(0, 0 if args.no_generate else len(problems), args.chunk):
        chunk = problems[c:c + args.chunk]
        todo_raw = [p for p in chunk if p.id not in have_raw()]
        todo_s = [] if args.samples else [p for p in chunk if p.id not in have_samples()]
        if not todo_raw and not todo_s:
            continue
        if time.monotonic() > deadline:
            log.warning("time budget spent: measuring the %d problems done so far", c)
            break
        if backend is None:
            from plumcode.generation import load_backend

            backend = load_backend(args.backend)
            identity = backend.identity()
        t = time.monotonic()
        if todo_raw:
            synthesize_tests(todo_raw, backend, gen_cfg, out=raw_path, runner=runner)
        timings["test_generation_s"] = timings.get("test_generation_s", 0.0) + time.monotonic() - t
        t = time.monotonic()
        if todo_s:
            from plumcode.generation import SamplingParams, sample_problems

            params = SamplingParams(n=args.n_samples, temperature=args.sample_temperature, top_p=0.95,
                                    max_tokens=args.sample_max_tokens, seed=args.seed)
            sample_problems(todo_s, backend, params, samples_path, progress=False)
        timings["policy_sampling_s"] = timings.get("policy_sampling_s", 0.0) + time.monotonic() - t
        log.info("chunk %d-%d done (%.0f s so far)", c, c + len(chunk), sum(timings.values()))
    if backend is not None:
        backend.close()
    if args.gen_only:
        return 0
    raw = {r["problem_id"]: r for r in read_records(raw_path)} if raw_path.exists() else {}
    if not identity and raw:
        identity = next(iter(raw.values()))["generator"]
    samples = [Sample.from_json(r) for r in load_jsonl(samples_path)] if samples_path.exists() else []
    ready = have_samples()
    problems = [p for p in problems if p.id in raw and p.id in ready]
    samples = [s for s in samples if s.problem_id in {p.id for p in problems}]
    log.info("measuring %d problems with tests and samples", len(problems))
    codes: dict[str, list[str]] = {}
    for s in samples:
        codes.setdefault(s.problem_id, []).append(s.code)

    t = time.monotonic()
    q = Q.prepare(problems, samples, runner, mutants_per_problem=args.mutants, seed=args.seed)
    timings["ground_truth_s"] = time.monotonic() - t
    gt_pass = sum(v for d in q.gt_labels.values() for v in d.values())
    n_lab = sum(len(d) for d in q.gt_labels.values())
    log.info("ground truth: %d/%d samples pass; %d mutants killed by ground truth", gt_pass, n_lab,
             sum(len(v) for v in q.mutation.killed_by_gt.values()) if q.mutation else 0)

    rows = []
    for name in [m.strip() for m in args.modes.split(",") if m.strip()]:
        t = time.monotonic()
        cfg = TestgenConfig(validate=MODES[name], n_tests=args.n_tests, n_inputs=args.n_inputs,
                            max_tests=args.max_tests, timeout_s=args.timeout, seed=args.seed,
                            max_candidates=args.max_candidates,
                            augment_inputs=args.augment if name in AUGMENTED else 0)
        gens = [generated_from_record(raw[p.id], p) for p in problems if p.id in raw]
        recs = validate(gens, cfg, runner, samples=codes)
        atomic_write_jsonl(wd / f"tests.{name}.jsonl", recs)
        syn = problems_with_synthetic_tests(problems, recs)
        groups = {src: {p.id for p in problems if p.source == src} for src in sorted({p.source for p in problems})}
        res = Q.measure(q, syn, runner, groups=groups)
        rows.append({"mode": name, "funnel": funnel_totals(recs), **res,
                     "seconds": round(time.monotonic() - t, 1)})
        log.info("%s: %s", name, json.dumps(rows[-1]["labels"]))

    results = {"generator": identity, "runner": runner.name, "n_problems": len(problems),
               "sources": {s: sum(p.source == s for p in problems) for s in {p.source for p in problems}},
               "n_samples": len(samples), "samples_gt_pass": gt_pass, "args": vars(args),
               "timings": {k: round(v, 1) for k, v in timings.items()}, "rows": rows}
    atomic_write_json(wd / "results.json", results)
    print(format_table(results))
    return 0


def format_table(res: dict) -> str:
    out = [f"generator: {json.dumps(res['generator'])}; runner: {res['runner']}; problems: {res['sources']}; "
           f"policy samples: {res['n_samples']} ({res['samples_gt_pass']} pass ground truth)", "",
           "| mode | generated | parsed | valid | kept | problems w/ tests | label agreement | false-pass | "
           "false-fail | wrong among syn. passes | mutation kill |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        f, lab, m = r["funnel"], r["labels"], r.get("mutation", {})
        out.append(
            f"| {r['mode']} | {f['generated']} | {f['parsed']} | {f['valid']} | {f['kept']} | "
            f"{f['with_tests']}/{f['problems']} | {pct(lab['agreement'])} ({lab['agree']}/{lab['samples']}) | "
            f"{pct(lab['false_pass_rate'])} ({lab['false_pass']}/{lab['gt_fail']}) | "
            f"{pct(lab['false_fail_rate'])} ({lab['false_fail']}/{lab['gt_pass']}) | "
            f"{pct(lab['wrong_among_synthetic_passes'])} ({lab['false_pass']}/{lab['syn_pass']}) | "
            f"{pct(m.get('kill_rate', 0.0))} ({m.get('killed', 0)}/{m.get('mutants', 0)}) |")
    out += ["", "per benchmark (label agreement / false-pass / coverage):"]
    for r in res["rows"]:
        parts = [f"{src}: {pct(v['agreement'])} / {pct(v['false_pass_rate'])} / {v['covered']}/{v['problems']}"
                 for src, v in r["by_group"].items()]
        out.append(f"- {r['mode']}: " + "; ".join(parts))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
