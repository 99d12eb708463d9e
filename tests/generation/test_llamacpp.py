"""llama.cpp in-process backend: skipped cleanly when llama-cpp-python is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from plumcode.generation import SamplingParams
from plumcode.generation.hf import GenerationError

llama_cpp = pytest.importorskip("llama_cpp")


def test_missing_gguf_is_a_clear_error(tmp_path: Path) -> None:
    from plumcode.generation.llamacpp import LlamaCppBackend

    with pytest.raises(GenerationError, match="GGUF file not found"):
        LlamaCppBackend(str(tmp_path / "none.gguf"))


@pytest.mark.slow
def test_embedded_default_gguf_chat_sampling() -> None:
    from plumcode.generation.llamacpp import LlamaCppBackend
    from plumcode.generation.prompts import extract_code

    b = LlamaCppBackend("default", n_ctx=1024, threads=1)
    assert b.render([{"role": "user", "content": "hi"}]).startswith("<|im_start|>system")
    rows = b.generate([[{"role": "user", "content": "Write a Python function add(a, b) returning a + b."}]],
                      SamplingParams(n=2, max_tokens=80, temperature=0.0, seed=0))
    assert len(rows[0]) == 2 and rows[0][0].text == rows[0][1].text  # greedy
    ns: dict = {}
    exec(extract_code(rows[0][0].text), ns)
    assert ns["add"](2, 3) == 5
