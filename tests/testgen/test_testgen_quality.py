"""Mutation operators and the test-quality metrics, executed for real on small problems."""

from __future__ import annotations

import ast

from plumcode.problems.schema import Problem, TestCase
from plumcode.sandbox.types import Sample
from plumcode.testgen import quality
from plumcode.testgen.mutate import mutants
from plumcode.testgen.quality import Labels, compare_labels

REF = '''def clip_sum(xs, hi):
    """Sum of the items, each clipped to at most hi; empty -> 0."""
    total = 0
    for x in xs:
        if x > hi:
            total += hi
        else:
            total += x
    return total
'''


def test_mutants_cover_each_operator_and_compile():
    ms = mutants(REF)
    ops = {m.op for m in ms}
    assert {"cmp Gt->GtE", "arith Add->Sub", "const 0->1", "const 0->-1", "return -> None"} <= ops
    assert len({m.code for m in ms}) == len(ms)  # distinct
    for m in ms:
        compile(m.code, "<m>", "exec")
        assert m.code != ast.unparse(ast.parse(REF))
        assert '"""Sum of the items' in m.code or "'Sum of the items" in m.code  # docstring untouched
    more = mutants("def f(a, b):\n    return a and not b or (a is None) or a in b or a ** 2 == True\n")
    ops = {m.op for m in more}
    assert {"bool And->Or", "bool Or->And", "bool drop-not", "cmp Is->IsNot", "cmp In->NotIn",
            "arith Pow->Mult", "const True->False"} <= ops
    assert mutants("def f(:") == []
    assert [m.code for m in mutants(REF, limit=3, seed=1)] == [m.code for m in mutants(REF, limit=3, seed=1)]
    assert len(mutants(REF, limit=3)) == 3


def test_compare_labels_arithmetic():
    gt: Labels = {"a": {"s1": True, "s2": False, "s3": False, "s4": True}, "b": {"s5": False}, "c": {"s6": True}}
    syn: Labels = {"a": {"s1": True, "s2": True, "s3": False, "s4": False}, "b": {"s5": False}}
    m = compare_labels(gt, syn)
    assert (m.problems, m.covered, m.samples, m.agree) == (3, 2, 5, 3)
    assert (m.gt_pass, m.gt_fail, m.false_pass, m.false_fail, m.syn_pass) == (2, 3, 1, 1, 2)
    assert m.false_pass_rate == 1 / 3 and m.false_fail_rate == 1 / 2 and m.agreement == 3 / 5
    assert m.wrong_among_synthetic_passes == 1 / 2 and m.coverage == 2 / 3
    assert compare_labels({}, {}).to_json()["agreement"] == 0.0


def test_measure_end_to_end(runner):
    gt_tests = [TestCase("call", args=([1, 5, 2], 3), expected=6), TestCase("call", args=([], 3), expected=0),
                TestCase("call", args=([3, 4], 3), expected=6), TestCase("call", args=([-1, 7], 0), expected=-1)]
    prob = Problem("q/clip", "clip and sum", prompt=None, entry_point="clip_sum", reference_solution=REF,
                   tests=gt_tests)
    right = REF
    no_clip = "def clip_sum(xs, hi):\n    return sum(xs)\n"
    off_by_one = "def clip_sum(xs, hi):\n    return sum(min(x, hi) for x in xs) + (1 if xs else 0)\n"
    ge_bug = "def clip_sum(xs, hi):\n    return sum(hi if x >= hi else x for x in xs)\n"  # equivalent: passes gt
    samples = [Sample("q/clip", f"q/clip#{i}", c) for i, c in enumerate([right, no_clip, off_by_one, ge_bug])]
    q = quality.prepare([prob], samples, runner, mutants_per_problem=20, seed=0)
    assert q.gt_labels == {"q/clip": {"q/clip#0": True, "q/clip#1": False, "q/clip#2": False, "q/clip#3": True}}
    assert q.mutation is not None and q.mutation.generated == len(mutants(REF)) == 6
    n_gt_killed = sum(len(v) for v in q.mutation.killed_by_gt.values())
    assert n_gt_killed + q.mutation.survived_gt == 6 and n_gt_killed > 0

    # weak synthetic tests: only the empty list -> cannot tell no_clip from right
    weak = [Problem("q/clip", "", entry_point="clip_sum", tests=[TestCase("assert", code="assert clip_sum([], 1) == 0")])]
    r = quality.measure(q, weak, runner)
    lab = r["labels"]
    assert (lab["samples"], lab["false_pass"], lab["gt_fail"], lab["false_fail"]) == (4, 2, 2, 0)
    assert lab["false_pass_rate"] == 1.0 and lab["agreement"] == 0.5
    weak_kill = r["mutation"]["kill_rate"]

    # strong synthetic tests: clipping and the non-empty case covered
    strong = [Problem("q/clip", "", entry_point="clip_sum", tests=[
        TestCase("assert", code="assert clip_sum([1, 5, 2], 3) == 6"),
        TestCase("call", args=([2, 2], 5), expected=4), TestCase("call", args=([], 1), expected=0)])]
    r = quality.measure(q, strong, runner)
    assert r["labels"]["agreement"] == 1.0 and r["labels"]["false_pass_rate"] == 0.0
    assert r["mutation"]["mutants"] == n_gt_killed
    assert r["mutation"]["kill_rate"] > weak_kill

    # a problem without synthetic tests is uncovered, not counted as agreeing
    r = quality.measure(q, [], runner)
    assert r["labels"]["covered"] == 0 and r["labels"]["samples"] == 0
    assert r["mutation"]["uncovered_mutants"] == n_gt_killed
