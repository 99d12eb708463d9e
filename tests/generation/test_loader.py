"""Backend spec strings."""

from __future__ import annotations

import pytest

from plumcode.generation import GenerationError, load_backend, parse_spec


@pytest.mark.parametrize("spec,kind,target,model,opts", [
    ("default", "hf", "default", None, {}),
    ("hf:/m/dir?adapter=/a/b&batch_size=8", "hf", "/m/dir", None, {"adapter": "/a/b", "batch_size": 8}),
    ("Qwen/Qwen2.5-Coder-0.5B-Instruct", "hf", "Qwen/Qwen2.5-Coder-0.5B-Instruct", None, {}),
    ("transformers:./ckpt", "hf", "./ckpt", None, {}),
    ("openai:http://10.0.0.2:8000/v1#Qwen/Qwen2.5-Coder-7B-Instruct", "openai", "http://10.0.0.2:8000/v1",
     "Qwen/Qwen2.5-Coder-7B-Instruct", {}),
    ("openai:http://h:8000#m?adapter=/ck/round-1&concurrency=64", "openai", "http://h:8000", "m",
     {"adapter": "/ck/round-1", "concurrency": 64}),
    ("http://localhost:8080/v1", "openai", "http://localhost:8080/v1", None, {}),
    ("llama-cpp:model.gguf?n_ctx=2048", "llama-cpp", "model.gguf", None, {"n_ctx": 2048}),
    ("vllm:/models/x", "vllm", "/models/x", None, {}),
])
def test_parse_spec(spec, kind, target, model, opts) -> None:
    ps = parse_spec(spec)
    assert (ps.kind, ps.target, ps.model, ps.options) == (kind, target, model, opts)


def test_bad_specs() -> None:
    with pytest.raises(ValueError, match="empty"):
        parse_spec(" ")
    with pytest.raises(ValueError, match="names no model"):
        parse_spec("vllm:")


def test_optional_engines_fail_clearly() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(GenerationError, match="vLLM is not installed"):
            load_backend("vllm:/models/x")
    with pytest.raises(GenerationError, match="cannot apply a LoRA adapter"):
        load_backend("llama-cpp:x.gguf?adapter=/a")
