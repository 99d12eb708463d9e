"""Type-aware input augmentation: the pure mutator, and its hook in the inputs mode (real sandbox)."""

from __future__ import annotations

import json

import pytest

from plumcode.problems.schema import Problem
from plumcode.testgen import TestgenConfig, synthesize_tests
from plumcode.testgen.augment import Domain, augment_inputs, input_key, output_type_matches

SEEDS = [([3, 1, 2], "abc", 2, 1.5, True, (1, "x"), {"a": 1}, {4, 5}),
         ([7, 0], "ba", 5, 0.25, False, (2, "y"), {"b": 2, "c": 3}, {6})]


def test_every_argument_keeps_its_type_and_element_types():
    out = augment_inputs(SEEDS, 60, seed=1)
    assert len(out) == 60
    for args in out:
        assert len(args) == len(SEEDS[0])
        for a, s in zip(args, SEEDS[0], strict=True):
            assert type(a) is type(s)
        assert all(type(x) is int for x in args[0])
        assert all(type(x) is int for x in args[7])
        assert all(type(k) is str and type(x) is int for k, x in args[6].items())
        if args[5]:
            assert len(args[5]) == 2 and type(args[5][0]) is int and type(args[5][1]) is str
    # mutation did explore: every argument took a value neither seed has (the seeds hold both bools)
    for i in (0, 1, 2, 3, 5, 6, 7):
        assert any(all(a[i] != s[i] for s in SEEDS) for a in out), i
    assert any(a[0] is False for a in augment_inputs([(True, 1)], 10))


def test_arity_of_each_seed_is_kept():
    seeds = [(4,), (2, 3)]  # a function with a default argument: both call shapes are valid
    out = augment_inputs(seeds, 20, seed=0)
    assert {len(a) for a in out} == {1, 2}
    assert all(type(x) is int for a in out for x in a)
    assert augment_inputs([()], 5) == []  # nothing to mutate for a function without arguments


def test_deterministic_given_the_seed():
    assert augment_inputs(SEEDS, 30, seed=7) == augment_inputs(SEEDS, 30, seed=7)
    assert augment_inputs(SEEDS, 30, seed=7) != augment_inputs(SEEDS, 30, seed=8)


def test_no_duplicates_no_seed_no_excluded():
    seeds = [([1, 2],), ([2, 1],)]
    first = augment_inputs(seeds, 10, seed=0)
    keys = [input_key(a) for a in first]
    assert len(set(keys)) == len(keys)
    assert not {input_key(s) for s in seeds} & set(keys)
    again = augment_inputs(seeds, 10, seed=0, exclude=keys[:5])
    assert not set(keys[:5]) & {input_key(a) for a in again}
    assert input_key((1, True)) != input_key((1, 1))  # bool and int are different inputs


def test_domain_guard_stays_where_the_seeds_are():
    seeds = [("0110", 3, (1, 2)), ("10", 0, (5, 6))]
    out = augment_inputs(seeds, 40, seed=0)
    assert all(set(a[0]) <= {"0", "1"} for a in out)  # binary strings stay binary
    assert all(a[1] >= 0 for a in out)  # counts never seen negative stay non-negative
    assert all(len(a[2]) == 2 for a in out)  # pairs stay pairs
    loose = augment_inputs(seeds, 40, seed=0, guard=False)  # a contract guards instead
    assert any(a[1] < 0 for a in loose) and any(len(a[2]) != 2 for a in loose)
    words = [("abc",), ("ba",)]  # case swap leaves a lower-case-only domain unless a contract guards
    assert not any(a[0] != a[0].lower() for a in augment_inputs(words, 20))
    assert any(a[0] != a[0].lower() for a in augment_inputs(words, 20, guard=False))
    d = Domain(seeds)
    assert d.fits("0", (0,)) and not d.fits("2", (0,)) and not d.fits(10**9, (1,))


def test_output_type_guard():
    assert output_type_matches(3, [1, 2]) and output_type_matches(2, [0.5])
    assert not output_type_matches(None, [1, 2]) and not output_type_matches(True, [1])
    assert output_type_matches([1], [[], [2, 3]]) and output_type_matches([], [[2]])
    assert not output_type_matches(["a"], [[2]]) and not output_type_matches(1, [])


INV_REF = "def inv(x):\n    return 100 // x\n"


def _inv_problem() -> Problem:
    return Problem("t/inv", "Return 100 // x.", prompt='def inv(x):\n    """100 // x"""\n', entry_point="inv",
                   reference_solution=INV_REF)


def _by_origin(rec: dict, origin: str, status: str | None = None) -> list[dict]:
    return [t for t in rec["tests"] if t["origin"] == origin and (status is None or t["status"] == status)]


def test_inputs_mode_adds_augmented_tests_after_the_lm_ones(canned, runner):
    cfg = TestgenConfig(validate=("inputs",), timeout_s=2.0, augment_inputs=12, inputs_from_asserts=False)
    rec = synthesize_tests([_inv_problem()], canned("", "```python\ninv(5)\ninv(3)\n```"), cfg, runner=runner)[0]
    assert rec["config"]["augment_inputs"] == 12
    kept = [t["args"] for t in rec["kept"]]
    assert kept[:2] == [[5], [3]]  # the LM's own proposals first
    aug = _by_origin(rec, "augmented")
    assert len(aug) == 12 and rec["funnel"]["generated"] == 14
    for t in _by_origin(rec, "augmented", "kept"):
        assert t["test"]["kind"] == "call" and t["test"]["expected"] == 100 // t["test"]["args"][0]
    # x = 0 is among the mutants; the reference raises there, so it is dropped, not a test
    zero = [t for t in aug if "inv(0)" in (t["test"].get("code") or "")]
    assert zero and zero[0]["status"] == "rejected" and zero[0]["reason"].startswith("invalid_input")
    assert "ZeroDivisionError" in zero[0]["reason"]
    assert [0] not in kept
    assert rec["funnel"]["rejected_by"].get("invalid_input", 0) >= 1
    by_origin = rec["funnel"]["kept_by_origin"]
    assert by_origin["inputs"] == 2 and by_origin["augmented"] == len(_by_origin(rec, "augmented", "kept"))
    assert sum(by_origin.values()) == rec["funnel"]["kept"]


def test_augmentation_is_off_by_default_and_within_max_candidates(canned, runner):
    be = canned("", "```python\ninv(5)\ninv(3)\n```")
    rec = synthesize_tests([_inv_problem()], be, TestgenConfig(validate=("inputs",), timeout_s=2.0),
                           runner=runner)[0]
    assert not _by_origin(rec, "augmented") and rec["config"]["augment_inputs"] == 0
    cfg = TestgenConfig(validate=("inputs",), timeout_s=2.0, augment_inputs=20, max_candidates=5,
                        inputs_from_asserts=False)
    rec = synthesize_tests([_inv_problem()], be, cfg, runner=runner)[0]
    assert len(_by_origin(rec, "augmented")) == 3  # 5 examined inputs, the 2 LM ones included
    with pytest.raises(ValueError, match="augment_inputs"):
        TestgenConfig(augment_inputs=-1)


def test_augmented_input_with_an_unlike_output_type_is_dropped(canned, runner):
    """No contract: the reference returns None on the empty list (out of its domain)."""
    ref = "def first(xs):\n    if not xs:\n        return None\n    return xs[0]\n"
    p = Problem("t/first", "First element of a non-empty list.", prompt="def first(xs):\n    ...\n",
                entry_point="first", reference_solution=ref)
    cfg = TestgenConfig(validate=("inputs",), timeout_s=2.0, augment_inputs=15, inputs_from_asserts=False)
    rec = synthesize_tests([p], canned("", "```python\nfirst([4, 2])\nfirst([7])\n```"), cfg, runner=runner)[0]
    empty = [t for t in _by_origin(rec, "augmented") if "first([])" in (t["test"].get("code") or "")]
    assert empty and empty[0]["reason"].startswith("output_type")
    assert all(t["args"] != [[]] for t in rec["kept"])
    assert len(_by_origin(rec, "augmented", "kept")) >= 5


def test_stdio_problems_are_not_augmented(canned, stdio_problem, runner):
    cfg = TestgenConfig(validate=("inputs",), timeout_s=2.0, augment_inputs=10)
    rec = synthesize_tests([stdio_problem], canned("", '```python\ninputs = ["2 3"]\n```'), cfg, runner=runner)[0]
    assert rec["kept"] and not _by_origin(rec, "augmented")
    json.dumps(rec)  # the record stays plain JSON
