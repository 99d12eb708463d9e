"""The sampling stage: resumable appends, record fields, bad input kept apart from good samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plumcode.generation import GenerationError, SamplingParams, load_backend, sample_problems
from plumcode.generation.hf import TransformersBackend
from plumcode.generation.sample import read_samples
from plumcode.problems.schema import Problem, write_problems

PROBS = [
    Problem(id="t/0", instruction="Add two numbers.", prompt='def add(a, b):\n    """Return a + b."""\n',
            entry_point="add"),
    Problem(id="t/1", instruction="Write a function is_even(n).", entry_point="is_even"),
    Problem(id="t/2", instruction="Reverse a string s.", entry_point="reverse"),
]


def ids(path: Path) -> list[str]:
    return [r["sample_id"] for r in read_samples(path)]


def test_records_and_resume(tiny_backend: TransformersBackend, tmp_path: Path) -> None:
    out = tmp_path / "samples.jsonl"
    s1 = sample_problems(PROBS[:2], tiny_backend, SamplingParams(n=2, max_tokens=8, seed=0), out, progress=False)
    assert s1["written"] == 4 and s1["already_done"] == 0
    recs = read_samples(out)
    assert sorted(ids(out)) == ["t/0#0", "t/0#1", "t/1#0", "t/1#1"]
    r = recs[0]
    for k in ("problem_id", "sample_id", "code", "completion", "prompt", "policy", "params", "n_tokens",
              "finish_reason", "prompt_tokens", "extraction", "reason"):
        assert k in r
    assert r["policy"] == tiny_backend.identity() and r["params"]["n"] == 2 and r["params"]["seed"] == 0
    assert r["prompt"][0]["role"] == "user"  # chat template present -> chat prompt
    # random tiny model writes no code: recorded with empty code and a reason, never a crash
    assert all(x["code"] == "" and x["reason"] for x in recs if x["extraction"] == "none")

    # crash mid-append: a torn last line is dropped and regenerated
    with open(out, "a") as f:
        f.write('{"problem_id": "t/2", "sample_id": "t/2#0", "co')
    s2 = sample_problems(PROBS, tiny_backend, SamplingParams(n=3, max_tokens=8, seed=0), out, progress=False)
    assert s2["already_done"] == 4 and s2["written"] == 5  # t/0#2, t/1#2, t/2#0..2
    all_ids = ids(out)
    assert len(all_ids) == len(set(all_ids)) == 9
    s3 = sample_problems(PROBS, tiny_backend, SamplingParams(n=3, max_tokens=8, seed=0), out, progress=False)
    assert s3["written"] == 0 and len(ids(out)) == 9


def test_completion_style_for_base_prompts(tiny_backend: TransformersBackend, tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    sample_problems(PROBS[:1], tiny_backend, SamplingParams(n=1, max_tokens=8, seed=0), out,
                    prompt_style="completion", progress=False)
    r = read_samples(out)[0]
    assert r["prompt"] == PROBS[0].prompt and r["params"]["prompt_style"] == "completion"
    assert "\ndef " in r["params"]["stop"]


def test_other_policy_is_refused(tiny_backend: TransformersBackend, tiny_model: Path, tiny_adapter: Path,
                                 tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    sample_problems(PROBS[:1], tiny_backend, SamplingParams(n=1, max_tokens=4, seed=0), out, progress=False)
    other = TransformersBackend(str(tiny_model), adapter=str(tiny_adapter))
    with pytest.raises(ValueError, match="another policy"):
        sample_problems(PROBS, other, SamplingParams(n=1, max_tokens=4), out, progress=False)
    s = sample_problems(PROBS, other, SamplingParams(n=1, max_tokens=4), out, progress=False,
                        allow_policy_change=True)
    assert s["written"] == 2


def test_too_long_prompt_is_recorded_and_others_go_on(tiny_model: Path, tmp_path: Path) -> None:
    b = TransformersBackend(str(tiny_model), max_context=64)
    long = Problem(id="long", instruction="x " * 400, entry_point="f")
    out = tmp_path / "s.jsonl"
    s = sample_problems([long, PROBS[1]], b, SamplingParams(n=2, max_tokens=4, seed=0), out, progress=False,
                        prompt_style="completion")
    assert s["errors"] == 2 and s["written"] == 4
    bad = [r for r in read_samples(out) if r["problem_id"] == "long"]
    assert all(r["finish_reason"] == "error" and "context is 64" in r["reason"] and r["code"] == "" for r in bad)


def test_unreachable_server_keeps_written_samples(tiny_backend: TransformersBackend, tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    sample_problems(PROBS[:1], tiny_backend, SamplingParams(n=2, max_tokens=4, seed=0), out, progress=False)
    before = out.read_text()
    with pytest.raises(GenerationError, match="cannot reach"):
        load_backend("openai:http://127.0.0.1:9#nothing")
    assert out.read_text() == before


def test_cli_sample_and_errors(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from plumcode.cli import main

    probs = tmp_path / "p.jsonl"
    write_problems(probs, PROBS[:2])
    out = tmp_path / "s.jsonl"
    args = ["sample", "--problems", str(probs), "--model", f"hf:{tiny_model}", "--n", "2", "--max-tokens", "6",
            "--seed", "1", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["written"] == 4 and len(ids(out)) == 4
    assert main(args) == 0  # resume: nothing left to do
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["written"] == 0

    assert main(["sample", "--problems", str(tmp_path / "missing.jsonl"), "--model", f"hf:{tiny_model}",
                 "--out", str(out)]) == 2
    assert "problems file not found" in capsys.readouterr().err
    assert main(["sample", "--problems", str(probs), "--model", f"hf:{tmp_path / 'no-model'}", "--out",
                 str(out)]) == 2
    assert "cannot load model" in capsys.readouterr().err
    assert main(["sample", "--problems", str(probs), "--model", "openai:http://127.0.0.1:9#m", "--out",
                 str(out)]) == 2
    assert "cannot reach" in capsys.readouterr().err
    assert len(ids(out)) == 4
