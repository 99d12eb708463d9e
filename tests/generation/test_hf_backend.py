"""The transformers backend on the tiny random Qwen2 model (real generation, no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plumcode.generation import SamplingParams, load_backend
from plumcode.generation.hf import GenerationError, TransformersBackend

PROMPTS = ["def add(a, b):\n", "Write a Python function that returns the sum", [{"role": "user", "content": "hi"}]]


def texts(rows):
    return [[c.text for c in r] for r in rows]


def test_n_samples_tokens_and_finish(tiny_backend: TransformersBackend) -> None:
    rows = tiny_backend.generate(PROMPTS, SamplingParams(n=3, max_tokens=12, seed=0))
    assert [len(r) for r in rows] == [3, 3, 3]
    for r in rows:
        for c in r:
            assert 1 <= c.n_tokens <= 12 + 1 and c.prompt_tokens > 0
            assert c.finish_reason in ("stop", "length")
            if c.finish_reason == "length":
                assert c.n_tokens == 12
    # the chat prompt went through the ChatML template: far more prompt tokens than "hi"
    assert rows[2][0].prompt_tokens > 5


def test_seed_reproducible_and_varies(tiny_backend: TransformersBackend) -> None:
    p = SamplingParams(n=4, max_tokens=10, seed=123, temperature=1.0)
    a = texts(tiny_backend.generate(PROMPTS[:2], p))
    b = texts(tiny_backend.generate(PROMPTS[:2], p))
    c = texts(tiny_backend.generate(PROMPTS[:2], SamplingParams(n=4, max_tokens=10, seed=7, temperature=1.0)))
    assert a == b
    assert a != c
    assert len(set(a[0])) > 1  # n samples of one prompt differ


def test_batched_greedy_equals_unbatched(tiny_model: Path) -> None:
    """Left padding + attention mask must not change what a sequence generates."""
    prompts = ["def f(x):\n    return", "class Solution:\n    def twoSum(self, nums, target):\n", "import math\n"]
    greedy = SamplingParams(n=1, max_tokens=12, temperature=0.0)
    one = TransformersBackend(str(tiny_model), batch_size=1)
    many = TransformersBackend(str(tiny_model), batch_size=8)
    assert texts(one.generate(prompts, greedy)) == texts(many.generate(prompts, greedy))


def test_stop_strings_truncate_and_end_early(tiny_backend: TransformersBackend) -> None:
    greedy = SamplingParams(n=1, max_tokens=24, temperature=0.0)
    full = tiny_backend.generate(["def add(a, b):\n"], greedy)[0][0]
    assert full.finish_reason == "length" and len(full.text) > 6
    stop = full.text[3:6]
    cut = tiny_backend.generate(["def add(a, b):\n"], SamplingParams(n=1, max_tokens=24, temperature=0.0,
                                                                     stop=(stop,)))[0][0]
    assert cut.text == full.text[: full.text.find(stop)]
    assert cut.finish_reason == "stop" and cut.n_tokens < full.n_tokens


def test_prompt_longer_than_context_is_a_clear_error_completion(tiny_model: Path) -> None:
    b = TransformersBackend(str(tiny_model), max_context=32)
    rows = b.generate(["x = 1\n" * 40, "def f():\n"], SamplingParams(n=2, max_tokens=8, seed=0))
    assert [c.finish_reason for c in rows[0]] == ["error", "error"]
    assert "context is 32" in rows[0][0].meta["error"]
    assert all(c.finish_reason != "error" for c in rows[1])  # other prompts still served


def test_adapter_changes_policy_and_swaps(tiny_model: Path, tiny_adapter: Path, tiny_adapter2: Path) -> None:
    greedy = SamplingParams(n=1, max_tokens=16, temperature=0.0)
    b = TransformersBackend(str(tiny_model))
    base = texts(b.generate(PROMPTS, greedy))
    assert b.identity()["adapter_sha256"] is None
    sha1 = b.load_adapter(tiny_adapter)
    with_a1 = texts(b.generate(PROMPTS, greedy))
    assert with_a1 != base and b.identity()["adapter_sha256"] == sha1
    sha2 = b.load_adapter(tiny_adapter2)  # hot swap: unmerge a1, merge a2
    assert sha2 != sha1
    with_a2 = texts(b.generate(PROMPTS, greedy))
    assert with_a2 != with_a1
    # merged a2 == a fresh backend with a2 applied unmerged (the swap left no residue of a1)
    fresh = TransformersBackend(str(tiny_model), adapter=str(tiny_adapter2), merge_adapter=False)
    assert texts(fresh.generate(PROMPTS, greedy)) == with_a2
    b.unload_adapter()
    assert texts(b.generate(PROMPTS, greedy)) == base


def test_spec_with_adapter_query(tiny_model: Path, tiny_adapter: Path) -> None:
    b = load_backend(f"hf:{tiny_model}?adapter={tiny_adapter}&batch_size=4")
    ident = b.identity()
    assert ident["adapter"] == str(tiny_adapter) and ident["backend"] == "hf"
    assert b.batch_size == 4
    # a bare adapter dir names its base in adapter_config.json
    b2 = load_backend(str(tiny_adapter))
    assert b2.identity()["adapter_sha256"] == ident["adapter_sha256"]


def test_bad_model_and_bad_adapter_messages(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(GenerationError, match="cannot load model"):
        load_backend(f"hf:{tmp_path / 'nope'}")
    with pytest.raises(GenerationError, match="not a LoRA adapter"):
        TransformersBackend(str(tiny_model)).load_adapter(tmp_path)
    with pytest.raises(ValueError, match="unknown option"):
        load_backend(f"hf:{tiny_model}?batchsize=3")


def test_prefix_sharing_matches_separate_prefill(tiny_model: Path) -> None:
    """n copies of a prompt prefilled once (KV cache repeated) == each copy prefilled alone."""
    prompts = ["def f(x):\n    return", "import math\n", [{"role": "user", "content": "Sort a list."}]]
    greedy = SamplingParams(n=3, max_tokens=12, temperature=0.0)
    shared = TransformersBackend(str(tiny_model), batch_size=8)
    plain = TransformersBackend(str(tiny_model), batch_size=8, share_prefix=False)
    a, b = texts(shared.generate(prompts, greedy)), texts(plain.generate(prompts, greedy))
    assert a == b and all(len(set(r)) == 1 for r in a)
    sampled = SamplingParams(n=5, max_tokens=12, temperature=1.0, seed=3)
    rows = shared.generate(prompts, sampled)  # n=5 over batch 2: copies split over batches
    assert [len(r) for r in rows] == [5, 5, 5] and all(len(set(r)) > 1 for r in texts(rows))
    assert texts(TransformersBackend(str(tiny_model), batch_size=2).generate(prompts, greedy)) == a


def test_fast_top_p_equals_transformers_warper() -> None:
    import torch
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    from plumcode.generation.hf import _TempTopP

    g = torch.Generator().manual_seed(0)
    peaked = torch.randn(6, 5000, generator=g) * 8  # nucleus of a few tokens (top-k path)
    flat = torch.randn(4, 5000, generator=g) * 0.1  # nucleus of thousands (full-sort fallback)
    for scores in (peaked, flat):
        for t, p in ((0.8, 0.95), (1.0, 0.5), (0.2, 0.99)):
            ref = TopPLogitsWarper(p)(None, TemperatureLogitsWarper(t)(None, scores.clone()))
            got = _TempTopP(t, p, k=64)(None, scores.clone())
            assert torch.equal(torch.isinf(ref), torch.isinf(got))
            assert torch.allclose(ref[~torch.isinf(ref)], got[~torch.isinf(got)])


def test_bf16_swaps_restore_exact_base(tiny_model: Path, tiny_adapter: Path, tiny_adapter2: Path) -> None:
    """Unmerging in bf16 is lossy; swaps must restore the exact base so rounds do not drift."""
    greedy = SamplingParams(n=1, max_tokens=16, temperature=0.0)
    b = TransformersBackend(str(tiny_model), dtype="bfloat16")
    assert b.identity()["dtype"] == "bfloat16"
    base_w = {n: p.clone() for n, p in b.model.named_parameters()}
    b.load_adapter(tiny_adapter)
    b.load_adapter(tiny_adapter2)
    fresh = TransformersBackend(str(tiny_model), dtype="bfloat16", adapter=str(tiny_adapter2))
    assert texts(b.generate(PROMPTS, greedy)) == texts(fresh.generate(PROMPTS, greedy))
    b.unload_adapter()
    assert all(__import__("torch").equal(p, base_w[n]) for n, p in b.model.named_parameters())


def test_lm_head_gets_contiguous_input_with_and_without_adapter(tiny_model: Path, tiny_adapter: Path) -> None:
    """generate's last-position slice is a strided view; torch's CPU bf16 linear with a frozen weight
    then computes over the whole prompt (20 s and 8 GB more per batch on the 0.5B model). The backend
    hands the head a contiguous input, through adapter loads, swaps and unloads."""
    b = TransformersBackend(str(tiny_model))
    head = b.model.get_output_embeddings()
    seen: list[bool] = []
    head.register_forward_pre_hook(lambda m, a: seen.append(a[0].is_contiguous()))  # runs after the backend's
    greedy = SamplingParams(n=1, max_tokens=3, temperature=0.0)
    b.generate(PROMPTS, greedy)
    b.load_adapter(tiny_adapter)
    assert not head.weight.requires_grad  # the frozen-weight case that takes torch's slow path
    b.generate(PROMPTS, greedy)
    b.generate(PROMPTS[:1], SamplingParams(n=3, max_tokens=3, temperature=0.8))  # shared-prefix prefill
    b.unload_adapter()
    b.generate(PROMPTS, greedy)
    assert len(seen) >= 4 * 3 and all(seen)
