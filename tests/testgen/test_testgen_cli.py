"""The two subcommands through plumcode's CLI entry point, and the unsandboxed fallback runner."""

from __future__ import annotations

import json

from plumcode.cli import main
from plumcode.io import atomic_write_jsonl, load_jsonl
from plumcode.problems.schema import read_problems, write_problems
from plumcode.testgen import TestgenConfig, synthesize_tests

TESTS = "```python\nassert add(1, 2) == 3\nassert add(2, 2) == 5\nassert add(0, 0) == 0\n```"
INPUTS = "```python\nadd(4, 4)\nadd(-2, 9)\n```"


def test_tests_revalidate_and_quality_cli(tmp_path, canned, add_problem, runner, capsys):
    probs = tmp_path / "problems.jsonl"
    write_problems(probs, [add_problem])
    raw = tmp_path / "raw.jsonl"
    synthesize_tests([add_problem], canned(TESTS, INPUTS), TestgenConfig(validate=(), n_inputs=2,
                     timeout_s=1.0), out=raw, runner=runner)
    # the stored raw output had no inputs prompt: revalidate with reference only
    out = tmp_path / "tests.jsonl"
    po = tmp_path / "synthetic.jsonl"
    assert main(["tests", "--problems", str(probs), "--out", str(out), "--revalidate", str(raw),
                 "--validate", "reference", "--problems-out", str(po)]) == 0
    text = capsys.readouterr().out
    assert "generated 3, parsed 3, valid 3, kept 2" in text and "reference_fail 1" in text
    rec = load_jsonl(out)[0]
    assert [t["code"] for t in rec["kept"]] == ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]
    assert [len(p.tests) for p in read_problems(po)] == [2]

    samples = tmp_path / "samples.jsonl"
    atomic_write_jsonl(samples, [
        {"problem_id": "t/add", "sample_id": "s0", "code": "def add(a, b):\n    return a + b\n"},
        {"problem_id": "t/add", "sample_id": "s1", "code": "def add(a, b):\n    return a * b\n"},
        {"problem_id": "t/add", "sample_id": "s2", "code": "def add(a, b):\n    return abs(a + b)\n"}])
    qout = tmp_path / "quality.json"
    assert main(["test-quality", "--problems", str(probs), "--tests", str(out), "--samples", str(samples),
                 "--mutants", "5", "--out", str(qout)]) == 0
    text = capsys.readouterr().out
    q = json.loads(qout.read_text())
    lab = q["labels"]
    # abs(a + b) is wrong in general but right on every ground-truth input: labelled correct by both
    assert (lab["samples"], lab["gt_pass"], lab["gt_fail"]) == (3, 2, 1)
    assert lab["false_pass"] == 0 and lab["agreement"] == 1.0
    assert "agreement 100.0%" in text and q["mutation"]["mutants"] >= 1


def test_agreement_needs_samples(tmp_path, add_problem, capsys):
    probs = tmp_path / "problems.jsonl"
    write_problems(probs, [add_problem])
    rc = main(["tests", "--problems", str(probs), "--out", str(tmp_path / "o.jsonl"), "--model", "x",
               "--validate", "agreement"])
    assert rc == 2 and "needs --samples" in capsys.readouterr().err


