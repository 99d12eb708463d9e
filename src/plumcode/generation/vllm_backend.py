"""vLLM in-process backend (``pip install plumcode[vllm]``, GPU machines): one call, all prompts.

LoRA adapters go through vLLM's ``LoRARequest`` (a new adapter is a new request id), so the
online loop swaps policies without reloading the base model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plumcode.generation.base import Completion, Prompt, SamplingParams
from plumcode.generation.hf import GenerationError, adapter_dir, adapter_sha256


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str, *, adapter: str | None = None, max_lora_rank: int = 64, **engine_kw: Any):
        try:
            from vllm import LLM
        except ImportError:
            raise GenerationError("vLLM is not installed (pip install 'plumcode[vllm]', needs a GPU)") from None
        from plumcode.models.registry import get_entry, is_registered

        self.model_spec = model
        path = get_entry(model).hf_repo if is_registered(model) else model
        self.llm = LLM(model=path, enable_lora=True, max_lora_rank=max_lora_rank, **engine_kw)
        self.adapter: str | None = None
        self._adapter_sha: str | None = None
        self._lora: Any = None
        self._lora_id = 0
        if adapter:
            self.load_adapter(adapter)

    def load_adapter(self, path: str) -> str:
        from vllm.lora.request import LoRARequest

        d = adapter_dir(path)
        sha = adapter_sha256(d)
        self._lora_id += 1
        self._lora = LoRARequest(f"policy-{sha[:12]}", self._lora_id, str(d))
        self.adapter, self._adapter_sha = str(d), sha
        return sha

    def identity(self) -> dict:
        return {"backend": self.name, "model": self.model_spec, "adapter": self.adapter,
                "adapter_sha256": self._adapter_sha}

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        from vllm import SamplingParams as VSP

        sp = VSP(n=params.n, temperature=max(0.0, params.temperature), top_p=params.top_p,
                 max_tokens=params.max_tokens, stop=list(params.stop) or None, seed=params.seed)
        tok = self.llm.get_tokenizer()
        texts = [p if isinstance(p, str) else tok.apply_chat_template(list(p), tokenize=False,
                                                                      add_generation_prompt=True) for p in prompts]
        res = self.llm.generate(texts, sp, lora_request=self._lora, use_tqdm=False)
        return [[Completion(o.text, len(o.token_ids), "length" if o.finish_reason == "length" else "stop",
                            len(r.prompt_token_ids or [])) for o in r.outputs] for r in res]

    def close(self) -> None:
        self.llm = None
