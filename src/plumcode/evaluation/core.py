"""Benchmark evaluation: run samples in the sandbox, aggregate pass@k like EvalPlus/LCB.

For HumanEval+/MBPP+ problems (tests ordered base then plus, ``metadata["n_base_tests"]``) a
sample is counted for the base figure ("humaneval"/"mbpp") when all base tests pass and for the
plus figure ("humaneval+"/"mbpp+") when all tests pass, as ``evalplus.evaluate`` does. With
fail-fast execution that split is still exact: tests stop at the first failure, so "base passed"
is "no failure among the first n_base tests". LiveCodeBench results are also broken down by
difficulty.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from plumcode.evaluation.passk import DEFAULT_KS, pass_at_k, per_problem_pass_at_k
from plumcode.problems.schema import Problem
from plumcode.sandbox.types import Sample, Verdict

log = logging.getLogger(__name__)

_BASE_NAMES = {"humaneval+": "humaneval", "mbpp+": "mbpp"}


@dataclass
class EvalConfig:
    workers: int | None = None
    timeout_s: float = 5.0  # per test when the test has no timeout of its own
    memory_mb: int = 4096
    fail_fast: bool = True
    job_timeout_s: float | None = None  # None: from the tests' own limits (at least 120 s)
    cache_path: str | None = None
    ks: Sequence[int] = DEFAULT_KS
    progress: bool = False
    # where to execute (plumcode.sandbox.execute's ray_address): None runs the local process pool;
    # "local" a private local Ray instance; "auto", host:port or ray://host:10001 a cluster.
    # ``workers`` is then per node.
    ray_address: str | None = None
    ray_options: Any = None  # plumcode.sandbox.on_ray.RayExecOptions (None: its defaults)


@dataclass
class SampleResult:
    sample_id: str
    passed: bool
    base_passed: bool
    status: str
    n_passed: int
    n_tests: int
    message: str = ""

    def to_json(self) -> dict:
        return self.__dict__.copy()


@dataclass
class ProblemResult:
    problem_id: str
    n: int
    n_correct: int
    n_base_correct: int | None
    difficulty: str | None = None
    samples: list[SampleResult] = field(default_factory=list)

    def to_json(self, ks: Sequence[int]) -> dict:
        d: dict[str, Any] = {"problem_id": self.problem_id, "n": self.n, "n_correct": self.n_correct}
        if self.n_base_correct is not None:
            d["n_base_correct"] = self.n_base_correct
        if self.difficulty:
            d["difficulty"] = self.difficulty
        d["pass_at_k"] = per_problem_pass_at_k(self.n, self.n_correct, ks)
        d["samples"] = [s.to_json() for s in self.samples]
        return d


@dataclass
class EvalResult:
    benchmark: str
    problems: list[ProblemResult]
    pass_at_k: dict[str, dict[str, float]]  # figure name -> {"pass@1": ...}
    by_difficulty: dict[str, dict[str, float]] = field(default_factory=dict)
    status_counts: dict[str, int] = field(default_factory=dict)
    n_samples: int = 0
    missing: list[str] = field(default_factory=list)  # benchmark problems with no sample
    isolation: str = ""
    duration_s: float = 0.0
    ks: Sequence[int] = DEFAULT_KS
    selection: dict[str, Any] = field(default_factory=dict)  # LiveCodeBench release / contest-date window

    @property
    def n_problems(self) -> int:
        return len(self.problems)

    def to_json(self) -> dict:
        return {
            "benchmark": self.benchmark, "n_problems": self.n_problems, "n_samples": self.n_samples,
            "pass_at_k": self.pass_at_k, "by_difficulty": self.by_difficulty,
            "status_counts": self.status_counts, "missing_problems": self.missing,
            "isolation": self.isolation, "duration_s": round(self.duration_s, 3),
            **({"selection": self.selection} if self.selection else {}),
            "problems": [p.to_json(self.ks) for p in self.problems],
        }

    def table(self) -> str:
        """Terminal summary: one row per figure, one column per k, plus solved counts."""
        ks = sorted({k for v in self.pass_at_k.values() for k in v} | {k for v in self.by_difficulty.values()
                                                                      for k in v if k.startswith("pass@")},
                    key=lambda s: int(s.split("@")[1]))
        rows = []
        for name, v in self.pass_at_k.items():
            solved = self._solved(name)
            rows.append([name, f"{solved}/{self.n_problems}"] + [f"{100 * v[k]:.1f}" if k in v else "-" for k in ks])
        for name, v in self.by_difficulty.items():
            rows.append([f"  {name}", f"{int(v['n_solved'])}/{int(v['n_problems'])}"]
                        + [f"{100 * v[k]:.1f}" if k in v else "-" for k in ks])
        head = ["benchmark", "solved"] + ks
        widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
        line = "  ".join(str(h).ljust(w) for h, w in zip(head, widths, strict=True))
        out = [line, "-" * len(line)]
        out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        stat = ", ".join(f"{k} {v}" for k, v in sorted(self.status_counts.items(), key=lambda x: -x[1]))
        if self.selection:
            sel = self.selection
            what = ", ".join(f"{k} {sel[k]}" for k in ("release", "start_date", "end_date") if sel.get(k))
            out.append(f"selection: {what}: {sel.get('n_problems')} of {sel.get('n_before')} problems"
                       + (f"; release selected by {sel['release_by']}" if sel.get("release_by") else ""))
        out.append(f"{self.n_samples} samples on {self.n_problems} problems in {self.duration_s:.1f}s "
                   f"[{stat}] isolation={self.isolation or '?'}")
        if self.missing:
            out.append(f"WARNING: {len(self.missing)} problems had no samples and are not counted "
                       f"(e.g. {', '.join(self.missing[:3])})")
        return "\n".join(out)

    def _solved(self, name: str) -> int:
        base = name in _BASE_NAMES.values() and any(p.n_base_correct is not None for p in self.problems)
        return sum(1 for p in self.problems if (p.n_base_correct if base else p.n_correct))


def canonical_samples(problems: Iterable[Problem]) -> list[Sample]:
    """One sample per problem: its reference solution (sanity check of a benchmark's tests)."""
    out = []
    for p in problems:
        if not p.reference_solution:
            raise ValueError(f"{p.id} has no reference solution; '--samples canonical' needs one "
                             "(LiveCodeBench ships none)")
        out.append(Sample(p.id, f"{p.id}#canonical", p.reference_solution))
    return out


def with_prefix(prefix: str, code: str) -> str:
    """``prefix + code``, keeping the candidate's ``from __future__`` imports first (they must be)."""
    lines = code.splitlines(keepends=True)
    fut = [ln for ln in lines if ln.startswith("from __future__ import")]
    if not fut:
        return prefix.rstrip("\n") + "\n" + code
    rest = [ln for ln in lines if not ln.startswith("from __future__ import")]
    return "".join(fut) + prefix.rstrip("\n") + "\n" + "".join(rest)


def _benchmark_name(problems: Sequence[Problem]) -> str:
    srcs = Counter(p.source for p in problems)
    return srcs.most_common(1)[0][0] if srcs else "?"


def _base_passed(v: Verdict, n_base: int | None) -> bool:
    if v.passed:
        return True
    if n_base is None or len(v.tests) < n_base:
        return False
    return all(t.status == "pass" for t in v.tests[:n_base])


def _first_failure(v: Verdict) -> str:
    for i, t in enumerate(v.tests):
        if t.status != "pass":
            return f"test {i}: {t.status}" + (f": {t.message[:200]}" if t.message else "")
    return ""


def evaluate(benchmark_problems: Iterable[Problem], samples: Iterable[Sample], config: EvalConfig | None = None,
             *, benchmark: str | None = None) -> EvalResult:
    """Execute ``samples`` against ``benchmark_problems`` and aggregate pass@k.

    Sample ids are unique per problem (``(problem_id, sample_id)``), not across problems. Samples
    for unknown problems are ignored with a warning (a samples file may cover more than a
    ``--limit``-ed benchmark), but when no sample is for this benchmark it is an error (a wrong
    ``--benchmark`` must not pass as an empty result); problems without samples are listed in
    ``EvalResult.missing``.
    ``metadata["code_prefix"]`` is prepended to each sample's code: LiveCodeBench's import block
    (as its grader does) and HumanEval's prompt imports/helpers (as ``prompt + completion`` in
    the original harness provides them; a sample that defines them itself overrides them).
    """
    from plumcode.sandbox import SandboxConfig, execute, isolation_level

    cfg = config or EvalConfig()
    probs = {p.id: p for p in benchmark_problems}
    name = benchmark or _benchmark_name(list(probs.values()))
    order: dict[str, list[str]] = defaultdict(list)
    run: list[Sample] = []
    keys: list[tuple[str, str]] = []  # (problem_id, sample_id) of run[i]: ids are unique per problem
    seen: set[tuple[str, str]] = set()
    dups: list[tuple[str, str]] = []
    unknown: list[str] = []
    for s in samples:
        p = probs.get(s.problem_id)
        if p is None:
            unknown.append(s.problem_id)
            continue
        key = (p.id, s.sample_id)
        if key in seen:
            dups.append(key)
            continue
        seen.add(key)
        order[p.id].append(s.sample_id)
        prefix = p.metadata.get("code_prefix") if isinstance(p.metadata, dict) else None
        # the sandbox and its resumable files key verdicts by sample id alone: run under a unique one
        run.append(Sample(s.problem_id, f"{len(run)}", with_prefix(prefix, s.code) if prefix else s.code))
        keys.append(key)
    if dups:
        raise ValueError(f"{len(dups)} duplicate (problem_id, sample_id) pair(s) in the samples, e.g. "
                         + ", ".join(f"{p} {s!r}" for p, s in dups[:3]))
    if unknown and not run:
        eg_s = ", ".join(sorted(set(unknown))[:3])
        eg_b = ", ".join(list(probs)[:3])
        raise ValueError(f"none of the {len(unknown)} samples is for a problem of {name} ({len(probs)} problems, "
                         f"e.g. {eg_b}); the samples are for {eg_s}: wrong --benchmark or samples file?")
    if unknown:
        log.warning("%d samples name problems that are not in this benchmark selection; ignored", len(unknown))
    job_timeout = cfg.job_timeout_s
    if job_timeout is None:
        per_problem = [sum(t.timeout_s or cfg.timeout_s for t in probs[pid].tests) for pid in order]
        job_timeout = max(120.0, min(max(per_problem, default=0.0), 1800.0))
    scfg = SandboxConfig(timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb, fail_fast=cfg.fail_fast,
                         cache_path=cfg.cache_path, job_timeout_s=job_timeout)
    if cfg.workers:
        scfg.workers = cfg.workers
    t0 = time.perf_counter()
    verdicts: dict[tuple[str, str], Verdict] = {}
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(run), desc=f"evaluate {name}", unit="sample")
    isolation = ""
    try:
        for v in execute(probs, run, scfg, ray_address=cfg.ray_address, ray_options=cfg.ray_options):
            verdicts[keys[int(v.sample_id)]] = v
            isolation = isolation or v.isolation
            if bar is not None:
                bar.update(1)
                bar.set_postfix(passed=sum(x.passed for x in verdicts.values()), refresh=False)
    finally:
        if bar is not None:
            bar.close()
    duration = time.perf_counter() - t0
    if not isolation:
        isolation = isolation_level(scfg)

    status_counts: Counter[str] = Counter()
    results: list[ProblemResult] = []
    for pid in probs:
        if pid not in order:
            continue
        p = probs[pid]
        n_base = p.metadata.get("n_base_tests") if isinstance(p.metadata, dict) else None
        srs = []
        for sid in order[pid]:
            v = verdicts[(pid, sid)]
            status_counts[v.status] += 1
            srs.append(SampleResult(sid, v.passed, _base_passed(v, n_base), v.status, v.n_passed, v.n_tests,
                                    _first_failure(v)))
        results.append(ProblemResult(pid, len(srs), sum(s.passed for s in srs),
                                     sum(s.base_passed for s in srs) if n_base is not None else None,
                                     p.metadata.get("difficulty") if isinstance(p.metadata, dict) else None, srs))
    figures: dict[str, dict[str, float]] = {}
    ns = [r.n for r in results]
    if results and all(r.n_base_correct is not None for r in results):
        figures[_BASE_NAMES.get(name, name + "-base")] = pass_at_k(ns, [r.n_base_correct or 0 for r in results],
                                                                   cfg.ks)
    figures[name] = pass_at_k(ns, [r.n_correct for r in results], cfg.ks)
    by_diff: dict[str, dict[str, float]] = {}
    diffs = sorted({r.difficulty for r in results if r.difficulty},
                   key=lambda d: {"easy": 0, "medium": 1, "hard": 2}.get(d, 3))
    for d in diffs:
        sub = [r for r in results if r.difficulty == d]
        by_diff[d] = {"n_problems": len(sub), "n_solved": sum(1 for r in sub if r.n_correct),
                      **pass_at_k([r.n for r in sub], [r.n_correct for r in sub], cfg.ks)}
    missing = [pid for pid in probs if pid not in order]
    if missing:
        log.warning("%d benchmark problems have no samples; pass@k is over the %d that do", len(missing),
                    len(results))
    return EvalResult(benchmark=name, problems=results, pass_at_k=figures, by_difficulty=by_diff,
                      status_counts=dict(status_counts), n_samples=len(run), missing=missing,
                      isolation=isolation, duration_s=duration, ks=tuple(cfg.ks))
