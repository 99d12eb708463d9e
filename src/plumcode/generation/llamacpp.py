"""llama.cpp in-process backend (``pip install plumcode[llama-cpp]``): fast CPU sampling of a GGUF.

Sequences are generated one at a time (llama-cpp-python has no batched sampling API); the KV
prefix of the previous call is reused, so the ``n`` samples of one prompt share its prefill.
Chat prompts are rendered with the chat template stored in the GGUF metadata, the same template
the transformers backend reads from the tokenizer, so both backends see identical text.
Sampling is plain temperature + top-p (top-k and min-p off) to match the other backends.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plumcode.generation.base import Completion, Prompt, SamplingParams
from plumcode.generation.hf import GenerationError, default_threads


class LlamaCppBackend:
    name = "llama-cpp"

    def __init__(self, model: str = "default", *, n_ctx: int = 4096, threads: int | None = None,
                 n_batch: int = 512, seed: int = 0, n_gpu_layers: int = 0):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise GenerationError("llama-cpp-python is not installed: pip install 'plumcode[llama-cpp]'") from None
        from plumcode.models import ensure_model
        from plumcode.models.fetch import ModelError
        from plumcode.models.registry import is_registered

        try:
            path = ensure_model(model) if is_registered(model) else Path(model).expanduser()
        except ModelError as e:
            raise GenerationError(str(e)) from None
        if not Path(path).is_file():
            raise GenerationError(f"GGUF file not found: {path}")
        self.path = Path(path)
        self.model_spec = model
        self.llm: Any = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads or default_threads(),
                              n_batch=n_batch, seed=seed, n_gpu_layers=n_gpu_layers, verbose=False)
        meta = self.llm.metadata or {}
        self.chat_template = meta.get("tokenizer.chat_template")
        vocab = self.llm._model  # noqa: SLF001 - token text for BOS/EOS names
        self._bos = self._token_text(vocab, self.llm.token_bos())
        self._eos = self._token_text(vocab, self.llm.token_eos())
        self.n_ctx = n_ctx

    @staticmethod
    def _token_text(model: Any, tid: int) -> str:
        try:
            return model.token_get_text(tid) if tid >= 0 else ""
        except Exception:  # noqa: BLE001 - cosmetic only
            return ""

    def render(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        if not self.chat_template:
            raise GenerationError(f"{self.path} has no chat template in its metadata; use completion prompts")
        from plumcode.generation.prompts import render_chat_template

        return render_chat_template(self.chat_template, list(prompt), bos_token=self._bos, eos_token=self._eos)

    def identity(self) -> dict:
        from plumcode.models.registry import get_entry, is_registered

        sha = get_entry(self.model_spec).sha256 if is_registered(self.model_spec) else None
        return {"backend": self.name, "model": self.model_spec, "model_sha256": sha, "adapter": None,
                "adapter_sha256": None, "path": os.fspath(self.path)}

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        out: list[list[Completion]] = []
        for i, pr in enumerate(prompts):
            text = self.render(pr)
            ids = self.llm.tokenize(text.encode(), add_bos=isinstance(pr, str), special=True)
            if len(ids) >= self.n_ctx:
                msg = f"prompt has {len(ids)} tokens but the context is {self.n_ctx} (n_ctx)"
                out.append([Completion("", 0, "error", len(ids), {"error": msg}) for _ in range(params.n)])
                continue
            row = []
            for k in range(params.n):
                seed = None if params.seed is None else params.seed + i * 1000 + k
                r = self.llm.create_completion(
                    ids, max_tokens=min(params.max_tokens, self.n_ctx - len(ids)),
                    temperature=max(0.0, params.temperature), top_p=params.top_p if not params.greedy else 1.0,
                    top_k=0 if not params.greedy else 1, min_p=0.0, repeat_penalty=1.0,
                    stop=list(params.stop) or None, seed=seed)
                ch = r["choices"][0]
                row.append(Completion(ch["text"], int(r["usage"]["completion_tokens"]),
                                      "length" if ch.get("finish_reason") == "length" else "stop", len(ids)))
            out.append(row)
        return out

    def close(self) -> None:
        if getattr(self, "llm", None) is not None:
            self.llm.close() if hasattr(self.llm, "close") else None
            self.llm = None
