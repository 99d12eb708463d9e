"""The embedded default model writes tests for two real problems (slow: runs a 0.5B model on CPU)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from plumcode.generation import load_backend
from plumcode.problems.loaders import load_benchmark
from plumcode.testgen import TestgenConfig, synthesize_tests

pytestmark = pytest.mark.slow


def test_default_model_writes_valid_tests(runner, data_dir: Path):
    probs = load_benchmark("humaneval+", with_expected=False)[:1] + load_benchmark("mbpp+", with_expected=False)[:1]
    spec = "llama-cpp:default?threads=1" if importlib.util.find_spec("llama_cpp") else "default"
    backend = load_backend(spec)
    try:
        recs = synthesize_tests(probs, backend, TestgenConfig(validate=("reference", "inputs"), max_tokens=192,
                                                              n_tests=6, n_inputs=6), runner=runner)
    finally:
        backend.close()
    for r in recs:
        assert r["funnel"]["generated"] > 0, r["completions"]
        assert r["funnel"]["kept"] > 0, r["tests"]
