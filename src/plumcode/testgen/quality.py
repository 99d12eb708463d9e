"""How good are the kept synthetic tests? Measured against ground-truth tests (HumanEval+, MBPP+).

- Label quality: each policy sample gets a label from the synthetic tests (passes all kept tests)
  and one from the ground truth (passes all base+plus tests). Reported: agreement, false-pass rate
  (passes synthetic, fails ground truth, over samples that fail ground truth), false-fail rate
  (fails synthetic, passes ground truth, over samples that pass ground truth) and the share of
  synthetic passes that are wrong (what pollutes "chosen" preference data). Problems without any
  kept test give no synthetic label; ``coverage`` says how many problems have one.
- Mutation kill rate: mutants of the reference (:mod:`plumcode.testgen.mutate`) that the ground
  truth kills (so equivalent mutants are not counted); the rate is the share the kept tests kill.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from plumcode.problems.schema import Problem
from plumcode.sandbox.types import Sample
from plumcode.testgen.execution import Runner
from plumcode.testgen.mutate import Mutant, mutants

Labels = dict[str, dict[str, bool]]  # problem id -> sample id -> passed all tests


def run_labels(problems: Sequence[Problem], samples: Sequence[Sample], runner: Runner) -> Labels:
    """Pass-all label of each sample against its problem's ``tests`` (problems without tests: none)."""
    by_pid: dict[str, list[Sample]] = {}
    for s in samples:
        by_pid.setdefault(s.problem_id, []).append(s)
    jobs, order = [], []
    for p in problems:
        ss = by_pid.get(p.id, [])
        if p.tests and ss:
            jobs.append((p, [s.code for s in ss]))
            order.append((p.id, ss))
    out: Labels = {}
    for (pid, ss), per in zip(order, runner.run_many(jobs) if jobs else [], strict=True):
        out[pid] = {s.sample_id: all(r.status == "pass" for r in res) and bool(res)
                    for s, res in zip(ss, per, strict=True)}
    return out


@dataclass
class LabelMetrics:
    problems: int = 0  # problems with ground-truth labels
    covered: int = 0  # of those, problems with synthetic tests
    samples: int = 0  # labelled by both
    agree: int = 0
    gt_pass: int = 0
    gt_fail: int = 0
    false_pass: int = 0  # synthetic pass, ground truth fail
    false_fail: int = 0  # synthetic fail, ground truth pass
    syn_pass: int = 0

    @property
    def coverage(self) -> float:
        return self.covered / self.problems if self.problems else 0.0

    @property
    def agreement(self) -> float:
        return self.agree / self.samples if self.samples else 0.0

    @property
    def false_pass_rate(self) -> float:
        return self.false_pass / self.gt_fail if self.gt_fail else 0.0

    @property
    def false_fail_rate(self) -> float:
        return self.false_fail / self.gt_pass if self.gt_pass else 0.0

    @property
    def wrong_among_synthetic_passes(self) -> float:
        return self.false_pass / self.syn_pass if self.syn_pass else 0.0

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d.update(coverage=round(self.coverage, 4), agreement=round(self.agreement, 4),
                 false_pass_rate=round(self.false_pass_rate, 4), false_fail_rate=round(self.false_fail_rate, 4),
                 wrong_among_synthetic_passes=round(self.wrong_among_synthetic_passes, 4))
        return d


def compare_labels(gt: Labels, syn: Labels) -> LabelMetrics:
    m = LabelMetrics()
    for pid, gl in gt.items():
        m.problems += 1
        sl = syn.get(pid)
        if sl is None:
            continue
        m.covered += 1
        for sid, g in gl.items():
            if sid not in sl:
                continue
            s = sl[sid]
            m.samples += 1
            m.agree += int(s == g)
            m.gt_pass += int(g)
            m.gt_fail += int(not g)
            m.syn_pass += int(s)
            m.false_pass += int(s and not g)
            m.false_fail += int(g and not s)
    return m


@dataclass
class MutationSet:
    """Per problem: the reference's mutants that the ground truth kills (non-equivalent)."""

    killed_by_gt: dict[str, list[Mutant]] = field(default_factory=dict)
    generated: int = 0
    survived_gt: int = 0  # equivalent (or ground truth too weak): excluded


def gt_mutants(problems: Sequence[Problem], runner: Runner, per_problem: int = 10, seed: int = 0) -> MutationSet:
    ms = MutationSet()
    jobs, plans = [], []
    for p in problems:
        if not p.reference_solution or not p.tests:
            continue
        mm = mutants(p.reference_solution, limit=per_problem, seed=seed)
        ms.generated += len(mm)
        if mm:
            jobs.append((p, [m.code for m in mm]))
            plans.append((p.id, mm))
    for (pid, mm), per in zip(plans, runner.run_many(jobs) if jobs else [], strict=True):
        killed = [m for m, res in zip(mm, per, strict=True) if not all(r.status == "pass" for r in res)]
        ms.survived_gt += len(mm) - len(killed)
        if killed:
            ms.killed_by_gt[pid] = killed
    return ms


@dataclass
class KillMetrics:
    mutants: int = 0  # ground-truth-killed mutants of problems with synthetic tests
    killed: int = 0
    uncovered_mutants: int = 0  # mutants of problems without synthetic tests (not in the rate)

    @property
    def kill_rate(self) -> float:
        return self.killed / self.mutants if self.mutants else 0.0

    def to_json(self) -> dict:
        return {**self.__dict__, "kill_rate": round(self.kill_rate, 4)}


def kill_rate(synthetic: Sequence[Problem], ms: MutationSet, runner: Runner) -> KillMetrics:
    km = KillMetrics()
    syn = {p.id: p for p in synthetic if p.tests}
    jobs = []
    for pid, mm in ms.killed_by_gt.items():
        if pid not in syn:
            km.uncovered_mutants += len(mm)
            continue
        jobs.append((syn[pid], [m.code for m in mm]))
    for _, per in zip(jobs, runner.run_many(jobs) if jobs else [], strict=True):
        for res in per:
            km.mutants += 1
            km.killed += int(not all(r.status == "pass" for r in res))
    return km


@dataclass
class QualityInputs:
    """Ground-truth work shared by every set of synthetic tests measured on the same problems."""

    problems: list[Problem]
    samples: list[Sample]
    gt_labels: Labels
    mutation: MutationSet | None


def prepare(problems: Sequence[Problem], samples: Sequence[Sample], runner: Runner,
            mutants_per_problem: int = 10, seed: int = 0) -> QualityInputs:
    """Ground-truth labels of the samples and the ground-truth-killed mutants (computed once)."""
    gt = [p for p in problems if p.tests]
    labels = run_labels(gt, samples, runner)
    ms = gt_mutants(gt, runner, mutants_per_problem, seed) if mutants_per_problem > 0 else None
    return QualityInputs(list(gt), list(samples), labels, ms)


def measure(q: QualityInputs, synthetic: Sequence[Problem], runner: Runner,
            groups: Mapping[str, set[str]] | None = None) -> dict:
    """All quality figures for one set of synthetic tests (``synthetic``: Problems whose tests
    are the kept synthetic tests, e.g. from :func:`problems_with_synthetic_tests`). ``groups``
    (name -> problem ids, e.g. per benchmark) adds label figures per group."""
    ids = {p.id for p in q.problems}
    syn = [p for p in synthetic if p.id in ids and p.tests]
    syn_labels = run_labels(syn, q.samples, runner)
    out: dict = {"labels": compare_labels(q.gt_labels, syn_labels).to_json()}
    if groups:
        out["by_group"] = {
            name: compare_labels({k: v for k, v in q.gt_labels.items() if k in members},
                                 {k: v for k, v in syn_labels.items() if k in members}).to_json()
            for name, members in groups.items()}
    if q.mutation is not None:
        out["mutation"] = {**kill_rate(syn, q.mutation, runner).to_json(),
                           "generated": q.mutation.generated, "equivalent_or_unkilled_by_gt": q.mutation.survived_gt}
    return out


def with_tests(problems: Sequence[Problem], tests: Mapping[str, list]) -> list[Problem]:
    return [replace(p, tests=list(tests[p.id])) for p in problems if p.id in tests]
