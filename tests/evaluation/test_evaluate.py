"""evaluate() end to end through the real sandbox (small problem sets; seconds, not minutes)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from plumcode.evaluation import EvalConfig, canonical_samples, evaluate
from plumcode.problems import Problem, TestCase, load_benchmark
from plumcode.sandbox.types import Sample

CFG = EvalConfig(workers=2)


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUMCODE_CACHE_DIR", str(tmp_path / "cache"))


def _call(a: int, e: int) -> TestCase:
    return TestCase("call", args=(a,), expected=e)


def test_base_plus_split_and_pass_at_k() -> None:
    p = Problem("t/0", "double x", entry_point="f", tests=[_call(1, 2), _call(2, 4), _call(3, 6), _call(100, 200)],
                source="humaneval+", metadata={"n_base_tests": 2})
    q = Problem("t/1", "x + 1", entry_point="g", tests=[_call(1, 2), _call(5, 6)], source="humaneval+",
                metadata={"n_base_tests": 1})
    samples = [Sample("t/0", "a", "def f(x):\n    return 2 * x\n"),
               Sample("t/0", "b", "def f(x):\n    return 2 * x if x < 3 else 0\n"),  # base only
               Sample("t/0", "c", "def f(x):\n    return x\n"),
               Sample("t/1", "d", "def g(x):\n    return x + 1\n"),
               Sample("t/1", "e", "def g(x):\n    raise ValueError('no')\n"),
               Sample("t/1", "f", "def g(x:\n"),
               Sample("nope/9", "z", "pass")]  # unknown problem: ignored
    r = evaluate([p, q], samples, CFG, benchmark="humaneval+")
    assert list(r.pass_at_k) == ["humaneval", "humaneval+"]
    assert r.pass_at_k["humaneval"]["pass@1"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert r.pass_at_k["humaneval+"]["pass@1"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert "pass@10" not in r.pass_at_k["humaneval+"]
    by_id = {pr.problem_id: pr for pr in r.problems}
    assert (by_id["t/0"].n, by_id["t/0"].n_correct, by_id["t/0"].n_base_correct) == (3, 1, 2)
    samp = {s.sample_id: s for pr in r.problems for s in pr.samples}
    assert samp["b"].base_passed and not samp["b"].passed and samp["b"].status == "fail"
    assert samp["e"].status == "error" and "ValueError" in samp["e"].message
    assert samp["f"].status == "syntax_error"
    assert r.n_samples == 6 and r.status_counts["pass"] == 2
    js = r.to_json()
    assert js["pass_at_k"]["humaneval+"]["pass@1"] == pytest.approx(1 / 3)
    assert js["problems"][0]["pass_at_k"]["pass@1"] == pytest.approx(1 / 3)
    table = r.table()
    assert "humaneval+" in table and "2/2" in table
    assert r._solved("humaneval+") == 2 and r._solved("humaneval") == 2


def test_missing_problems_reported() -> None:
    p = Problem("m/0", "x", entry_point="f", tests=[_call(1, 1)])
    q = Problem("m/1", "y", entry_point="f", tests=[_call(1, 1)])
    r = evaluate([p, q], [Sample("m/0", "s", "def f(x):\n    return x\n")], CFG, benchmark="mine")
    assert r.missing == ["m/1"] and r.pass_at_k["mine"] == {"pass@1": 1.0}
    assert "no samples" in r.table()


def test_mbpp_canonical_and_wrong(data_dir: Path) -> None:
    ps = load_benchmark("mbpp")[:6]
    wrong = [Sample(p.id, p.id + "#wrong", "def nothing():\n    pass\n") for p in ps]
    r = evaluate(ps, canonical_samples(ps) + wrong, CFG)
    assert r.benchmark == "mbpp" and r.n_problems == 6
    assert all(pr.n_correct == 1 and pr.n == 2 for pr in r.problems)
    assert r.pass_at_k["mbpp"]["pass@1"] == pytest.approx(0.5)


LCB_SOLUTIONS = {
    "abc381_b": ("s = input().strip()\nok = len(s) % 2 == 0 and all(s[2*i] == s[2*i+1] for i in range(len(s)//2)) "
                 "and all(s.count(c) == 2 for c in set(s))\nprint('Yes' if ok else 'No')\n"),
    "abc368_a": ("n, k = map(int, input().split())\na = input().split()\nprint(' '.join(a[n-k:] + a[:n-k]))\n"),
    "3567": ("class Solution:\n    def convertDateToBinary(self, date: str) -> str:\n"
             "        return '-'.join(bin(int(x))[2:] for x in date.split('-'))\n"),
    "3626": ("class Solution:\n    def smallestNumber(self, n: int, t: int) -> int:\n        while True:\n"
             "            p = 1\n            for d in str(n):\n                p *= int(d)\n"
             "            if p % t == 0:\n                return n\n            n += 1\n"),
}
LCB_WRONG = {
    "abc381_b": "print('Yes')\n",
    "abc368_a": "input()\nprint(input())\n",
    "3567": "class Solution:\n    def convertDateToBinary(self, date: str) -> str:\n        return date\n",
    "3626": "class Solution:\n    def smallestNumber(self, n: int, t: int) -> int:\n        return n\n",
}


def test_livecodebench_both_styles_run(data_dir: Path) -> None:
    ps = [p for p in load_benchmark("livecodebench") if p.id in LCB_SOLUTIONS]
    assert {p.metadata["style"] for p in ps} == {"stdin", "functional"}
    samples = [Sample(pid, pid + "#ok", code) for pid, code in LCB_SOLUTIONS.items()]
    samples += [Sample(pid, pid + "#bad", code) for pid, code in LCB_WRONG.items()]
    r = evaluate(ps, samples, CFG, benchmark="livecodebench")
    res = {s.sample_id: s for pr in r.problems for s in pr.samples}
    for pid in LCB_SOLUTIONS:
        assert res[pid + "#ok"].passed, res[pid + "#ok"]
        assert not res[pid + "#bad"].passed
    assert r.pass_at_k["livecodebench"]["pass@1"] == pytest.approx(0.5)
    assert set(r.by_difficulty) <= {"easy", "medium", "hard"} and r.by_difficulty
    assert sum(int(v["n_problems"]) for v in r.by_difficulty.values()) == 4


def _truncated_plus(src: Path, ids: dict[str, int], out: Path) -> Path:
    """A small HumanEval+/MBPP+ file: the real records of ``ids``, plus inputs cut to N."""
    recs = []
    with gzip.open(src, "rt") as f:
        for line in f:
            r = json.loads(line)
            if r["task_id"] in ids:
                r["plus_input"] = r["plus_input"][: ids[r["task_id"]]] if r["plus_input"] else []
                recs.append(r)
    out.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return out


def test_evalplus_special_oracles(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plumcode.problems import evalplus as ep

    he = _truncated_plus(data_dir / "HumanEvalPlus-v0.1.10.jsonl.gz",
                         {"HumanEval/32": 15, "HumanEval/2": 10, "HumanEval/139": 3}, tmp_path / "he.jsonl")
    calls: list[str] = []
    real = ep.call_reference

    def counting(program, entry_point, args_list, **kw):
        calls.append(entry_point)
        return real(program, entry_point, args_list, **kw)

    monkeypatch.setattr(ep, "call_reference", counting)
    ps = load_benchmark("humaneval+", he)
    assert calls  # computed once ...
    n_calls = len(calls)
    again = load_benchmark("humaneval+", he)
    assert len(calls) == n_calls  # ... then read from the cache
    assert [p.to_json() for p in again] == [p.to_json() for p in ps]
    fz = next(p for p in ps if p.id == "HumanEval/32")
    assert fz.metadata["special_oracle"] == "find_zero" and all(t.kind == "assert" for t in fz.tests)
    assert fz.metadata["n_base_tests"] == fz.metadata["n_base_inputs"] and len(fz.tests) == fz.metadata[
        "n_base_inputs"] + 15
    trunc = next(p for p in ps if p.id == "HumanEval/2")  # float outputs: EvalPlus's 1e-6 tolerance
    assert all(t.kind == "call" and t.atol == 1e-6 and t.timeout_s >= 1.0 for t in trunc.tests)
    big = next(p for p in ps if p.id == "HumanEval/139")  # >4300-digit integers survive the round trip
    assert "n_dropped_inputs" not in big.metadata
    wrong = {"HumanEval/32": "def find_zero(xs):\n    return 0.0\n",
             "HumanEval/2": "def truncate_number(number):\n    return round(number % 1.0, 3)\n",
             "HumanEval/139": "def special_factorial(n):\n    return n\n"}
    samples = canonical_samples(ps) + [Sample(pid, pid + "#w", c) for pid, c in wrong.items()]
    r = evaluate(ps, samples, CFG, benchmark="humaneval+")
    for pr in r.problems:
        ok = {s.sample_id: s.passed for s in pr.samples}
        assert ok[pr.problem_id + "#canonical"] and not ok[pr.problem_id + "#w"], pr

    mp = _truncated_plus(data_dir / "MbppPlus-v0.2.0.jsonl.gz",
                         {"Mbpp/2": 10, "Mbpp/737": 10, "Mbpp/88": 10, "Mbpp/581": 10, "Mbpp/793": 0},
                         tmp_path / "mp.jsonl")
    ps = load_benchmark("mbpp+", mp)
    kinds = {p.id: p.metadata.get("special_oracle") for p in ps}
    assert kinds == {"Mbpp/2": "set_eq", "Mbpp/737": "not_none", "Mbpp/88": None, "Mbpp/581": "surface_Area",
                     "Mbpp/793": None}
    assert all("n_dropped_inputs" not in p.metadata for p in ps)  # Counter outputs are kept (as dicts)
    wrong = {"Mbpp/2": "def similar_elements(a, b):\n    return tuple(set(a) | set(b))\n",
             "Mbpp/737": "def check_str(s):\n    return None\n",
             "Mbpp/88": "def freq_count(l):\n    return {}\n",
             "Mbpp/581": "def surface_Area(b, s):\n    return 0\n",
             "Mbpp/793": "def last(arr, x):\n    return -7\n"}
    # order-insensitive answers pass set_eq; a Match object passes not_none
    also_ok = {"Mbpp/2": "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b), reverse=True))\n",
               "Mbpp/737": "import re\ndef check_str(s):\n    return re.match('^[aeiouAEIOU][A-Za-z0-9_]*', s)\n",
               "Mbpp/88": "def freq_count(l):\n    d = {}\n    for x in l:\n        d[x] = d.get(x, 0) + 1\n"
                          "    return d\n"}
    samples = (canonical_samples(ps) + [Sample(pid, pid + "#w", c) for pid, c in wrong.items()]
               + [Sample(pid, pid + "#alt", c) for pid, c in also_ok.items()])
    r = evaluate(ps, samples, CFG, benchmark="mbpp+")
    for pr in r.problems:
        ok = {s.sample_id: s.passed for s in pr.samples}
        assert ok[pr.problem_id + "#canonical"], pr
        assert not ok[pr.problem_id + "#w"], pr
        if pr.problem_id + "#alt" in ok:
            assert ok[pr.problem_id + "#alt"], pr


def test_evaluate_cli(data_dir: Path, tmp_path: Path) -> None:
    from plumcode.cli import main

    out = tmp_path / "res.json"
    assert main(["evaluate", "--benchmark", "mbpp", "--samples", "canonical", "--limit", "4", "--workers", "2",
                 "--out", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert res["n_problems"] == 4 and res["pass_at_k"]["mbpp"]["pass@1"] == 1.0
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"problem_id": f"HumanEval/{i}", "sample_id": f"{i}-{j}",
                                           "code": "def f(): pass"}) + "\n" for i in range(2) for j in range(2)))
    assert main(["evaluate", "--benchmark", "humaneval", "--samples", str(samples), "--limit", "2",
                 "--out", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert res["pass_at_k"]["humaneval"] == {"pass@1": 0.0} and res["n_samples"] == 4
    assert main(["evaluate", "--benchmark", "livecodebench", "--samples", "canonical"]) == 2  # no references


def test_humaneval_prompt_imports_and_helpers_are_available(data_dir: Path) -> None:
    ps = [p for p in load_benchmark("humaneval") if p.id in ("HumanEval/0", "HumanEval/38")]
    body0 = ("def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
             "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n")
    body38 = "def decode_cyclic(s: str):\n    return encode_cyclic(encode_cyclic(s))\n"  # uses the prompt's helper
    fut = "from __future__ import annotations\n" + body0
    r = evaluate(ps, [Sample("HumanEval/0", "a", body0), Sample("HumanEval/38", "b", body38),
                      Sample("HumanEval/0", "c", fut), Sample("HumanEval/0", "d", body0.replace("<", ">"))], CFG)
    got = {s.sample_id: s.passed for pr in r.problems for s in pr.samples}
    assert got == {"a": True, "b": True, "c": True, "d": False}
