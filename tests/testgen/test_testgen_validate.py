"""Each validation mode end to end on small problems: canned LM output, real parsing/execution."""

from __future__ import annotations

import json

import pytest

from plumcode.problems.schema import Problem, TestCase
from plumcode.testgen import (
    TestgenConfig,
    funnel_totals,
    generated_from_record,
    problems_with_synthetic_tests,
    read_records,
    synthesize_tests,
    validate,
)
from plumcode.testgen.synth import best_consensus

TESTS = """Here are the tests:
```python
assert add(1, 2) == 3
assert add(2, 2) == 5
assert add(1, 1) == 2 or 1
assert add(-1, -1) == -2
assert isinstance(add(1, 2), int) or add(0, 0) is None or True
def spin():
    while True:
        pass
assert add(spin(), 1) == 1
try:
    add(1)
except TypeError:
    pass
assert add(1) == 1
```"""
INPUTS = "```python\nadd(5, 7)\nadd(-3, 3)\nadd('a', 'b')\nadd([1], 2)\nadd(x, 1)\nadd(0.5, 0.25)\n```"


def by_status(rec: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in rec["tests"]:
        out.setdefault(t["status"], []).append(t["test"].get("code") or json.dumps(t["test"].get("args")))
    return out


def reason_of(rec: dict, needle: str) -> str:
    return next(t["reason"] for t in rec["tests"] if needle in (t["test"].get("code") or ""))


def test_no_validation_still_rejects_static_trivial_and_nonterminating(canned, add_problem, runner):
    be = canned(TESTS, INPUTS)
    rec = synthesize_tests([add_problem], be, TestgenConfig(validate=(), timeout_s=1.0), runner=runner)[0]
    kept = [t["code"] for t in rec["kept"]]
    assert kept == ["assert add(1, 2) == 3", "assert add(2, 2) == 5", "assert add(-1, -1) == -2"]
    assert reason_of(rec, "== 2 or 1").startswith("trivially_true")
    assert reason_of(rec, "spin()").startswith("timeout")
    assert reason_of(rec, "add(1) == 1").startswith("signature")
    f = rec["funnel"]
    assert (f["generated"], f["parsed"], f["valid"], f["kept"]) == (7, 7, 3, 3)
    assert rec["generator"] == {"backend": "canned", "model": "canned-v1"}
    assert rec["prompt"]["prompt"][0]["role"] == "user" and "def add(a, b)" in rec["prompt"]["prompt"][0]["content"]


def test_reference_mode_drops_tests_the_reference_fails(canned, add_problem, runner):
    rec = synthesize_tests([add_problem], canned(TESTS), TestgenConfig(validate=("reference",), timeout_s=1.0),
                           runner=runner)[0]
    assert [t["code"] for t in rec["kept"]] == ["assert add(1, 2) == 3", "assert add(-1, -1) == -2"]
    assert reason_of(rec, "add(2, 2) == 5").startswith("reference_fail")
    assert rec["funnel"]["valid"] == 3 and rec["funnel"]["kept"] == 2


def test_inputs_mode_expected_values_come_from_the_reference(canned, add_problem, runner):
    cfg = TestgenConfig(validate=("inputs",), timeout_s=1.0)
    be = canned(TESTS, INPUTS)
    rec = synthesize_tests([add_problem], be, cfg, runner=runner)[0]
    # one generate call with both prompts
    assert len(be.calls) == 1 and len(be.calls[0][0]) == 2
    kept = [(tuple(t["args"]), t["expected"]) for t in rec["kept"]]
    # LM-proposed inputs, then inputs reused from the model's asserts (its expectations discarded)
    assert kept[:4] == [((5, 7), 12), ((-3, 3), 0), (("a", "b"), "ab"), ((0.5, 0.25), 0.75)]
    assert ((2, 2), 4) in kept and all(t["kind"] == "call" for t in rec["kept"])
    assert next(t for t in rec["kept"] if t["args"] == [0.5, 0.25])["atol"] > 0
    reasons = [t["reason"] for t in rec["tests"] if t["status"] == "rejected"]
    assert any(r.startswith("invalid_input") and "TypeError" in r for r in reasons)  # add([1], 2)
    assert any(r.startswith("non_literal") for r in reasons)  # add(x, 1)
    assert any(r.startswith("replaced") for r in reasons)  # model-written expectations not kept alone


def test_reference_plus_inputs_keeps_both_kinds(canned, add_problem, runner):
    cfg = TestgenConfig(validate=("reference", "inputs"), timeout_s=1.0, max_tests=4)
    rec = synthesize_tests([add_problem], canned(TESTS, INPUTS), cfg, runner=runner)[0]
    kinds = [t["kind"] for t in rec["kept"]]
    assert kinds == ["assert", "call", "assert", "call"]  # cap alternates origins
    assert any(t["reason"].startswith("cap") for t in rec["tests"])


def test_agreement_mode_keeps_the_best_consensus(canned, add_problem, runner):
    good, bad = "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a * b\n"
    samples = {add_problem.id: [good, good, good, bad, "def add(a, b):\n    return 5\n"]}
    p = Problem(add_problem.id, add_problem.instruction, prompt=add_problem.prompt, entry_point="add")
    cfg = TestgenConfig(validate=("agreement",), timeout_s=1.0)
    rec = synthesize_tests([p], canned(TESTS), cfg, runner=runner, samples=samples)[0]
    # tests passed by the 3 correct samples: 3 samples x 2 tests beats the wrong samples' sets
    assert [t["code"] for t in rec["kept"]] == ["assert add(1, 2) == 3", "assert add(-1, -1) == -2"]
    assert rec["agreement"]["samples"] == [0, 1, 2] and rec["agreement"]["score"] == 6
    assert reason_of(rec, "add(2, 2) == 5").startswith("agreement")
    # no samples for the problem: the mode is skipped, not silently passed
    rec2 = validate([generated_from_record(rec, p)], cfg, runner, samples={})[0]
    assert rec2["skipped"] == ["agreement: no policy samples"] and rec2["funnel"]["kept"] == 3


def test_best_consensus_scoring():
    # samples 0,1 pass tests {0,1}; sample 2 passes {0,1,2}; sample 3 passes nothing
    passes = [[True, True, False], [True, True, False], [True, True, True], [False, False, False]]
    assert best_consensus(passes) == ({0, 1}, {0, 1}, 4)
    assert best_consensus([[False, False]]) == (set(), set(), 0)
    assert best_consensus([[True, False], [False, True]]) == ({0}, {0}, 1)  # tie: the first set


def test_reference_mode_without_reference_is_skipped(canned, add_problem, runner):
    p = Problem("t/noref", add_problem.instruction, prompt=add_problem.prompt, entry_point="add")
    rec = synthesize_tests([p], canned(TESTS, INPUTS), TestgenConfig(validate=("reference", "inputs"),
                                                                            timeout_s=1.0), runner=runner)[0]
    assert rec["skipped"] == ["inputs: no reference solution", "reference: no reference solution"]
    assert rec["funnel"]["kept"] == 3


def test_stdio_problem_reference_and_inputs(canned, stdio_problem, runner):
    tests = '```python\ntests = [("1 2", "3\\n"), ("5 5", "11\\n"), ("0 0\\n", "0")]\n```'
    inputs = '```python\ninputs = ["2 3", "10 -4\\n"]\n```'
    cfg = TestgenConfig(validate=("reference", "inputs"), timeout_s=2.0)
    rec = synthesize_tests([stdio_problem], canned(tests, inputs), cfg, runner=runner)[0]
    kept = {(t["input"], t["output"].strip()) for t in rec["kept"]}
    # the model's "5 5" -> "11" is wrong; its input is reused with the reference's output
    assert kept == {("1 2\n", "3"), ("0 0\n", "0"), ("2 3\n", "5"), ("10 -4\n", "6"), ("5 5\n", "10")}
    assert len(rec["kept"]) == 5
    assert any(t["reason"].startswith("reference_fail") for t in rec["tests"])  # 5 5 -> 11 is wrong


def test_completion_style_prompt_and_prefix(canned, add_problem, runner):
    cfg = TestgenConfig(validate=("reference",), prompt_style="completion", timeout_s=1.0)
    be = canned("1, 2) == 3\nassert add(3, 4) == 7\nassert add(0, 0) == 1")
    rec = synthesize_tests([add_problem], be, cfg, runner=runner)[0]
    prompt = be.calls[0][0][0]
    assert isinstance(prompt, str) and prompt.endswith("assert add(") and '"""Return a + b."""' in prompt
    assert be.calls[0][1].stop  # stop sequences for raw completion
    assert [t["code"] for t in rec["kept"]] == ["assert add(1, 2) == 3", "assert add(3, 4) == 7"]


def test_resume_and_problems_with_synthetic_tests(canned, tmp_path, add_problem, runner):
    out = tmp_path / "tests.jsonl"
    p2 = Problem("t/add2", add_problem.instruction, prompt=add_problem.prompt, entry_point="add",
                 reference_solution=add_problem.reference_solution)
    p3 = Problem("t/none", "x", prompt="def add(a, b):\n    pass\n", entry_point="add", reference_solution=add_problem.reference_solution)
    cfg = TestgenConfig(validate=("reference",), timeout_s=1.0, batch_size=1)
    be = canned({"sum of two": TESTS, "": "no tests here"})
    synthesize_tests([add_problem], be, cfg, out=out, runner=runner)
    assert len(be.calls) == 1
    # rerun with more problems: the first is not generated again
    recs = synthesize_tests([add_problem, p2, p3], be, cfg, out=out, runner=runner)
    assert len(be.calls) == 3 and [r["problem_id"] for r in recs] == ["t/add", "t/add2", "t/none"]
    assert [r["problem_id"] for r in read_records(out)] == ["t/add", "t/add2", "t/none"]
    probs = problems_with_synthetic_tests([add_problem, p2, p3], out)
    assert [p.id for p in probs] == ["t/add", "t/add2"]  # no kept tests -> left out
    assert probs[0].tests == [TestCase("assert", code="assert add(1, 2) == 3"),
                              TestCase("assert", code="assert add(-1, -1) == -2")]
    assert probs[0].reference_solution == add_problem.reference_solution
    tot = funnel_totals(recs)
    assert tot["problems"] == 3 and tot["with_tests"] == 2 and tot["kept"] == 4


def test_config_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown validation mode"):
        TestgenConfig(validate=("oracle",))


def test_inputs_mode_respects_the_input_contract(canned, add_problem, runner):
    p = Problem(add_problem.id, add_problem.instruction, prompt=add_problem.prompt, entry_point="add",
                reference_solution=add_problem.reference_solution,
                metadata={"contract": '\n    assert isinstance(a, int) and a >= 0, "invalid inputs" # $_CONTRACT_$\n'})
    cfg = TestgenConfig(validate=("inputs",), timeout_s=1.0, inputs_from_asserts=False)
    rec = synthesize_tests([p], canned("", INPUTS), cfg, runner=runner)[0]
    assert [tuple(t["args"]) for t in rec["kept"]] == [(5, 7)]  # -3, 'a', [1], 0.5 violate the contract
    rec = synthesize_tests([p], canned("", INPUTS), TestgenConfig(validate=("inputs",), timeout_s=1.0,
                           inputs_from_asserts=False, use_contract=False), runner=runner)[0]
    assert len(rec["kept"]) == 4


def test_inputs_mode_uses_the_benchmarks_output_oracle(canned, runner):
    """EvalPlus set-equality tasks: a reference-computed test compares like the ground truth does."""
    from plumcode.problems import evalplus as ep

    p = Problem("Mbpp/2", "shared elements of two tuples", entry_point="similar_elements", source="mbpp+",
                reference_solution="def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
                setup=ep.ORACLE_HELPERS, metadata={"special_oracle": "set_eq"})
    rec = synthesize_tests([p], canned("", "similar_elements((3, 4, 5), (5, 4, 9))"),
                           TestgenConfig(validate=("inputs",), timeout_s=2.0), runner=runner)[0]
    assert len(rec["kept"]) == 1 and rec["kept"][0]["kind"] == "assert"
    syn = problems_with_synthetic_tests([p], [rec])
    as_list = "def similar_elements(a, b):\n    return list(set(a) & set(b))\n"
    res = runner.run_many([(syn[0], [as_list, "def similar_elements(a, b):\n    return (4,)\n"])])[0]
    assert [r[0].status for r in res] == ["pass", "fail"]
