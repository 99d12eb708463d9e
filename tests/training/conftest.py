"""Shared fixtures: the lead's tiny random Qwen2 chat model and synthetic executed samples."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

GOOD = ["def add(a, b):\n    return a + b\n", "def add(x, y):\n    return x + y\n",
        "def add(a, b):\n    s = a\n    s += b\n    return s\n"]
BAD = ["def add(a, b):\n    return a - b\n", "def add(a, b):\n    return a * b\n",
       "def add(a, b)\n    return a\n", "def add(a, b):\n    while True:\n        pass\n"]


def write_samples(d: Path, n_problems: int = 6, per_problem: int = 6, seed: int = 0) -> tuple[Path, Path]:
    """samples.jsonl + verdicts.jsonl in the documented formats; problems 0..n-3 mix pass and fail,
    n-2 is all-pass, n-1 is none-pass."""
    rng = random.Random(seed)
    s_path, v_path = d / "samples.jsonl", d / "verdicts.jsonl"
    with open(s_path, "w") as S, open(v_path, "w") as V:
        for p in range(n_problems):
            prompt = [{"role": "user", "content": f"Write a Python function add (task {p})."}]
            for k in range(per_problem):
                if p == n_problems - 2:
                    ok = True
                elif p == n_problems - 1:
                    ok = False
                else:
                    ok = k % 2 == 0
                code = rng.choice(GOOD) if ok else BAD[k % len(BAD)]
                status = "pass" if ok else ("syntax_error" if "(a, b)\n" in code else
                                            "timeout" if "while" in code else "fail")
                sid = f"P{p}#{k}"
                S.write(json.dumps({"problem_id": f"P{p}", "sample_id": sid, "code": code,
                                    "completion": f"```python\n{code}```", "prompt": prompt,
                                    "policy": {"model": "tiny"}, "params": {"temperature": 0.8}}) + "\n")
                n_pass = 3 if ok else k % 3
                tests = [{"status": "pass" if i < n_pass else "fail", "message": "", "duration_s": 0.001}
                         for i in range(3)]
                V.write(json.dumps({"problem_id": f"P{p}", "sample_id": sid, "passed": ok, "status": status,
                                    "tests": tests, "n_passed": n_pass, "n_tests": 3}) + "\n")
    return s_path, v_path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plumcode.testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plumcode.testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny2") / "model", seed=1)


@pytest.fixture
def pref_files(tmp_path: Path) -> dict[str, Path]:
    """Unpaired and paired preference files built by the preference stage from synthetic samples."""
    from plumcode.io import atomic_write_jsonl, load_jsonl
    from plumcode.preference import PreferenceConfig, build_preferences

    s, v = write_samples(tmp_path)
    out = {}
    for fmt in ("unpaired", "paired"):
        recs, _ = build_preferences(load_jsonl(s), load_jsonl(v), PreferenceConfig(format=fmt, balance="none"))
        out[fmt] = tmp_path / f"{fmt}.jsonl"
        atomic_write_jsonl(out[fmt], recs)
    return out
