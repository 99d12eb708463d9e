"""Preference records from executed samples: formats, pairing, dedup, one-sided problems, balance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plumcode.io import DataError, load_jsonl
from plumcode.preference import PreferenceConfig, build_preferences, normalize_code

PROMPT = [{"role": "user", "content": "Write add."}]


def _s(pid: str, k: int, code: str, prompt=PROMPT) -> dict:
    return {"problem_id": pid, "sample_id": f"{pid}#{k}", "code": code, "completion": f"```python\n{code}```",
            "prompt": prompt, "policy": {}, "params": {}}


def _v(pid: str, k: int, n_pass: int, n_tests: int = 4, status: str | None = None) -> dict:
    passed = n_pass == n_tests
    tests = [{"status": "pass" if i < n_pass else "fail", "message": "", "duration_s": 0.0} for i in range(n_tests)]
    return {"problem_id": pid, "sample_id": f"{pid}#{k}", "passed": passed,
            "status": status or ("pass" if passed else "fail"), "tests": tests, "n_passed": n_pass,
            "n_tests": n_tests}


def _problem(pid: str, fracs: list[int], prompt=PROMPT) -> tuple[list[dict], list[dict]]:
    """One sample per entry; entry = tests passed out of 4; code differs per sample."""
    s = [_s(pid, k, f"def add(a, b):\n    return a + b + {k} * 0\n" if n == 4 else
            f"def add(a, b):\n    return a - b + {k}\n", prompt) for k, n in enumerate(fracs)]
    return s, [_v(pid, k, n) for k, n in enumerate(fracs)]


def test_unpaired_conversational_records_and_summary():
    s, v = _problem("P", [4, 4, 1, 0])
    recs, summ = build_preferences(s, v, PreferenceConfig(balance="none"))
    assert [r["label"] for r in recs] == [True, True, False, False]
    r = recs[0]
    assert r["prompt"] == PROMPT and r["completion"] == [{"role": "assistant", "content": s[0]["completion"]}]
    assert recs[2]["pass_fraction"] == 0.25 and recs[2]["reason"] == "fail" and recs[0]["reason"] == ""
    assert summ.problems_with_signal == 1 and summ.desirable == 2 and summ.undesirable == 2
    assert summ.reasons == {"fail": 2}


def test_standard_string_prompts_stay_strings():
    s, v = _problem("P", [4, 0], prompt="def add(a, b):\n")
    recs, _ = build_preferences(s, v, PreferenceConfig(format="paired"))
    assert recs[0]["prompt"] == "def add(a, b):\n" and isinstance(recs[0]["chosen"], str)


def test_paired_all_is_capped_and_spreads_over_samples():
    s, v = _problem("P", [4, 4, 4, 0, 0, 0])
    recs, summ = build_preferences(s, v, PreferenceConfig(format="paired", max_pairs_per_problem=3))
    assert summ.pairs == 3 == len(recs)
    # the cap picks a diagonal: each chosen and each rejected sample appears once
    assert len({r["chosen_id"] for r in recs}) == 3 and len({r["rejected_id"] for r in recs}) == 3
    full, _ = build_preferences(s, v, PreferenceConfig(format="paired", max_pairs_per_problem=100))
    assert len(full) == 9 and len({(r["chosen_id"], r["rejected_id"]) for r in full}) == 9


def test_paired_random_k_is_seeded():
    s, v = _problem("P", [4, 4, 4, 0, 0, 0])
    cfg = PreferenceConfig(format="paired", pairing="random", max_pairs_per_problem=4, seed=1)
    a, _ = build_preferences(s, v, cfg)
    b, _ = build_preferences(s, v, cfg)
    assert len(a) == 4 and [(r["chosen_id"], r["rejected_id"]) for r in a] == \
        [(r["chosen_id"], r["rejected_id"]) for r in b]


def test_best_worst_pairs_by_fraction_passed():
    s, v = _problem("P", [4, 4, 3, 2, 0])
    recs, _ = build_preferences(s, v, PreferenceConfig(format="paired", pairing="best_worst",
                                                      max_pairs_per_problem=2))
    assert [r["rejected_pass_fraction"] for r in recs] == [0.0, 0.5]
    assert all(r["chosen_pass_fraction"] == 1.0 for r in recs)
    # no sample passes everything: only with partial credit does a pair exist
    s, v = _problem("Q", [3, 1, 0])
    assert build_preferences(s, v, PreferenceConfig(format="paired", pairing="best_worst"))[0] == []
    recs, _ = build_preferences(s, v, PreferenceConfig(format="paired", pairing="best_worst", partial_credit=True))
    assert (recs[0]["chosen_pass_fraction"], recs[0]["rejected_pass_fraction"]) == (0.75, 0.0)


def test_dedup_normalised_code_and_inconsistent_verdicts():
    assert normalize_code("def f(x):\n    '''doc'''\n    return x  # c\n") == normalize_code("def f(x): return x")
    s = [_s("P", 0, "def add(a, b):\n    return a + b\n"), _s("P", 1, "def add(a,b): return a+b  # same"),
         _s("P", 2, "def add(a, b):\n    return a - b\n"), _s("P", 3, "def add(a, b):\n    return b - a\n"),
         _s("P", 4, "def add(a, b):\n  return b-a\n")]
    v = [_v("P", 0, 4), _v("P", 1, 4), _v("P", 2, 0), _v("P", 3, 0), _v("P", 4, 4)]  # 3 and 4: same code, flaky
    recs, summ = build_preferences(s, v, PreferenceConfig(balance="none"))
    assert [r["sample_id"] for r in recs] == ["P#0", "P#2"]
    assert summ.duplicates_removed == 1 and summ.inconsistent_duplicates == 2
    recs, _ = build_preferences(s, v, PreferenceConfig(balance="none", dedup=False))
    assert len(recs) == 5


def test_one_sided_problems_skip_or_keep():
    s1, v1 = _problem("A", [4, 4])  # all pass
    s2, v2 = _problem("B", [0, 1])  # none pass
    s3, v3 = _problem("C", [4, 0])
    s, v = s1 + s2 + s3, v1 + v2 + v3
    keep, summ = build_preferences(s, v, PreferenceConfig(one_sided="unpaired", balance="none"))
    assert {r["problem_id"] for r in keep} == {"A", "B", "C"} and len(keep) == 6
    assert (summ.problems_all_pass, summ.problems_none_pass, summ.problems_with_signal) == (1, 1, 1)
    skip, _ = build_preferences(s, v, PreferenceConfig(one_sided="skip", balance="none"))
    assert {r["problem_id"] for r in skip} == {"C"}
    pairs, _ = build_preferences(s, v, PreferenceConfig(format="paired"))
    assert {r["problem_id"] for r in pairs} == {"C"}


def test_balance_weights_and_downsample():
    s, v = _problem("P", [4, 0, 0, 0, 1, 2])
    _, summ = build_preferences(s, v, PreferenceConfig(balance="weights"))
    assert (summ.desirable_weight, summ.undesirable_weight) == (5.0, 1.0)
    recs, summ = build_preferences(s, v, PreferenceConfig(balance="downsample", max_ratio=2.0))
    assert summ.desirable == 1 and summ.undesirable == 2 and summ.downsampled == 3 and len(recs) == 3


def test_reason_labels_and_exclusion():
    s = [_s("P", k, f"x = {k}") for k in range(4)]
    v = [_v("P", 0, 2, 2), _v("P", 1, 0, 2, "timeout"), _v("P", 2, 0, 2, "syntax_error"), _v("P", 3, 1, 2, "error")]
    recs, summ = build_preferences(s, v, PreferenceConfig(balance="none"))
    assert summ.reasons == {"timeout": 1, "syntax_error": 1, "error": 1}
    assert {r["reason"] for r in recs if not r["label"]} == {"timeout", "syntax_error", "error"}
    recs, summ = build_preferences(s, v, PreferenceConfig(balance="none", exclude_reasons=("timeout",)))
    assert summ.dropped_excluded_reason == 1 and "timeout" not in {r["reason"] for r in recs}


def test_passed_flag_needs_every_test_and_missing_joins_are_counted():
    s = [_s("P", 0, "a = 1"), _s("P", 1, "a = 2"), _s("P", 2, "a = 3")]
    v = [_v("P", 0, 4), {**_v("P", 1, 3), "passed": True, "status": "pass"}, _v("Q", 9, 4), _v("P", 0, 4)]
    recs, summ = build_preferences(s, v, PreferenceConfig(balance="none"))
    assert [r["label"] for r in recs] == [True, False]  # 3/4 tests claiming "passed" is not a pass
    assert summ.samples_without_verdict == 1 and summ.verdicts_without_sample == 1 and summ.joined == 2
    with pytest.raises(DataError):
        build_preferences([{"problem_id": "P", "sample_id": "x"}], [])


def test_zero_test_verdicts_carry_no_signal():
    s = [_s("P", 0, "a = 1"), _s("P", 1, "a = 2")]
    v = [{**_v("P", 0, 0, 0), "passed": True, "status": "pass"}, _v("P", 1, 0, 2)]
    recs, summ = build_preferences(s, v, PreferenceConfig(balance="none"))
    assert summ.dropped_no_tests == 1 and [r["label"] for r in recs] == [False]


def test_records_load_with_datasets_and_trl_formats(tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    from trl.data_utils import is_conversational

    from plumcode.io import atomic_write_jsonl

    s, v = _problem("P", [4, 4, 0, 1])
    for fmt, cols in (("unpaired", {"prompt", "completion", "label"}), ("paired", {"prompt", "chosen", "rejected"})):
        recs, _ = build_preferences(s, v, PreferenceConfig(format=fmt))
        atomic_write_jsonl(tmp_path / f"{fmt}.jsonl", recs)
        ds = datasets.load_dataset("json", data_files=str(tmp_path / f"{fmt}.jsonl"), split="train")
        assert cols <= set(ds.column_names) and len(ds) == len(recs)
        assert is_conversational(ds[0])


def test_cli_writes_records_and_summary(tmp_path: Path):
    s, v = _problem("P", [4, 0, 0])
    sp, vp = tmp_path / "samples.jsonl", tmp_path / "verdicts.jsonl"
    sp.write_text("".join(json.dumps(x) + "\n" for x in s))
    vp.write_text("".join(json.dumps(x) + "\n" for x in v))
    out = tmp_path / "preferences.jsonl"
    r = subprocess.run([sys.executable, "-m", "plumcode", "preferences", "--samples", str(sp), "--verdicts", str(vp),
                        "--out", str(out), "--format", "paired"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "pairs 2" in r.stdout
    assert len(load_jsonl(out)) == 2
    summ = json.loads((tmp_path / "preferences.summary.json").read_text())
    assert summ["summary"]["pairs"] == 2 and summ["config"]["format"] == "paired"
