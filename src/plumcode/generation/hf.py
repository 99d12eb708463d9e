"""Hugging Face transformers in-process backend (CPU or GPU), the on-policy sampler.

Why it is fast on CPU at batch > 1: all ``len(prompts) * n`` sequences are sorted by prompt length
and generated in left-padded batches with the KV cache under ``torch.inference_mode``, so padding is
small and each decode step is one matmul over the whole batch; a batch ends as soon as every
sequence hit EOS or a stop string. A LoRA adapter is merged into the weights (no extra matmuls per
step) and can be swapped in place (unmerge, load, merge) for the online loop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plumcode.generation.base import Completion, Prompt, SamplingParams

log = logging.getLogger(__name__)

CKPT_META = "plumcode_checkpoint.json"  # written by plumcode.training next to model/ or adapter/


class GenerationError(RuntimeError):
    """A backend could not generate (bad model, unreachable server, ...): the message says why."""


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            while b := f.read(1 << 22):
                h.update(b)
    return h.hexdigest()


def weights_sha256(model: str) -> str | None:
    """Content hash of a model's weights (registry pin, a file, or a folder's weight files), so the
    same weights get the same policy id in every engine that serves them."""
    from plumcode.models.registry import get_entry, is_registered

    if is_registered(model):
        return get_entry(model).sha256
    p = Path(model).expanduser()
    if p.is_file():
        return _hash_files([p])
    if p.is_dir():
        files = [f for f in p.iterdir() if f.suffix in (".safetensors", ".bin") or f.name == "config.json"]
        return _hash_files(files) if files else None
    return None


def adapter_dir(path: str | os.PathLike) -> Path:
    """The PEFT adapter directory of ``path``: itself, or a plumcode checkpoint's ``adapter/``."""
    p = Path(path).expanduser()
    if (p / "adapter_config.json").is_file():
        return p
    if (p / "adapter" / "adapter_config.json").is_file():
        return p / "adapter"
    raise GenerationError(f"{p} is not a LoRA adapter (no adapter_config.json in it or in {p}/adapter)")


def adapter_sha256(path: str | os.PathLike) -> str:
    """Content hash of an adapter (weights + config): the policy id for on-policy bookkeeping."""
    d = adapter_dir(path)
    files = [f for f in d.iterdir() if f.is_file() and (f.suffix in (".safetensors", ".bin")
                                                        or f.name == "adapter_config.json")]
    return _hash_files(files)


def cpu_has_fast_bf16() -> bool:
    """Native bf16 matmul on this CPU (AVX512-BF16 or AMX), where bf16 beats fp32 by ~2x."""
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - older torch / no oneDNN: assume not
        return False


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


class TransformersBackend:
    """Sample from a transformers causal LM (optionally with a LoRA adapter merged in).

    ``model``: a registered name (``default``), a local dir / ``.gguf`` / hub id, a plumcode
    checkpoint dir, or a ``(model, tokenizer)`` pair already in memory.
    """

    name = "hf"

    def __init__(self, model: Any = "default", *, adapter: str | None = None, dtype: Any = None,
                 device: str | None = None, batch_size: int | None = None, threads: int | None = None,
                 merge_adapter: bool = True, max_context: int | None = None, share_prefix: bool = True):
        import torch

        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.threads = threads
        self.merge = merge_adapter
        self.share_prefix = share_prefix
        self._lock = threading.RLock()
        self.model_spec = "<in-memory>"
        self._model_sha: str | None = None
        if isinstance(model, tuple):
            self.model, self.tokenizer = model
            self.model_spec = getattr(self.model, "name_or_path", "<in-memory>") or "<in-memory>"
            self.model.to(self.device)
        else:
            self.model_spec = str(model)
            self.model, self.tokenizer = self._load(str(model), dtype)
        self.model.eval()
        self.dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"
        self.eos_ids = self._eos_ids()
        n_params = sum(p.numel() for p in self.model.parameters())
        if self.threads is None and self.device == "cpu" and n_params < 50e6:
            self.threads = 1  # intra-op threads only add barrier overhead on tiny matrices
        if dtype is None and self.device == "cpu" and n_params >= 50e6 and cpu_has_fast_bf16() \
                and not isinstance(model, tuple):
            # bf16 matmuls run ~2.4x faster than fp32 on AVX512-BF16/AMX CPUs (measured); pass
            # dtype=float32 to sample in the exact precision of a float32-trained policy
            self.model = self.model.to(torch.bfloat16)
        self.dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        head = self.model.get_output_embeddings()
        if head is not None:  # stays on the module through adapter loads, merges and unloads
            head.register_forward_pre_hook(_contiguous_input)
        cfg = self.model.config
        self.max_context = max_context or getattr(cfg, "max_position_embeddings", None) or 4096
        self.batch_size = batch_size or (64 if self.device.startswith("cuda") else 32)
        self.adapter: str | None = None
        self._adapter_sha: str | None = None
        adapter = adapter or getattr(self, "_pending_adapter", None)  # checkpoint specs carry one
        if adapter:
            self.load_adapter(adapter)

    # -- loading ---------------------------------------------------------------------------------

    def _load(self, spec: str, dtype: Any) -> tuple[Any, Any]:
        import json

        from plumcode.models import load_hf_model
        from plumcode.models.fetch import ModelError

        if dtype is None:
            dtype = self._torch.bfloat16 if self.device.startswith("cuda") else self._torch.float32
        p = Path(spec).expanduser()
        if p.is_dir() and (p / CKPT_META).is_file():  # plumcode checkpoint
            meta = json.loads((p / CKPT_META).read_text())
            if (p / "model" / "config.json").is_file():
                spec = str(p / "model")
            elif (p / "adapter" / "adapter_config.json").is_file():
                base = meta.get("base_spec")
                if not base:
                    raise GenerationError(f"{p}: checkpoint names no base model for its adapter")
                model, tok = self._load(str(base), dtype)
                self._pending_adapter = str(p)
                return model, tok
        elif p.is_dir() and (p / "adapter_config.json").is_file():  # bare adapter: base + adapter
            cfg = json.loads((p / "adapter_config.json").read_text())
            base = cfg.get("base_model_name_or_path")
            if not base:
                raise GenerationError(f"{p}/adapter_config.json names no base_model_name_or_path")
            model, tok = self._load(str(base), dtype)
            self._pending_adapter = str(p)
            return model, tok
        try:
            model, tok = load_hf_model(spec, dtype, device=self.device)
        except ModelError as e:
            raise GenerationError(str(e)) from None
        return model, tok

    def _eos_ids(self) -> list[int]:
        ids: set[int] = set()
        for src in (getattr(self.model, "generation_config", None), self.model.config):
            e = getattr(src, "eos_token_id", None) if src is not None else None
            if isinstance(e, int):
                ids.add(e)
            elif isinstance(e, (list, tuple)):
                ids.update(int(x) for x in e)
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        for t in ("<|im_end|>", "<|endoftext|>"):
            tid = self.tokenizer.convert_tokens_to_ids(t)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and tid is not None:
                ids.add(tid)
        return sorted(ids)

    def load_adapter(self, path: str | os.PathLike) -> str:
        """Put a LoRA adapter on the base (replacing the current one); returns its sha256."""
        from peft import PeftModel

        d = adapter_dir(path)
        sha = adapter_sha256(d)
        with self._lock:
            self._n_adapters = getattr(self, "_n_adapters", 0) + 1
            name = f"policy_{self._n_adapters}"
            if isinstance(self.model, PeftModel):
                self._unmerge()
                old = list(self.model.peft_config)
                self.model.load_adapter(str(d), adapter_name=name)
                self.model.set_adapter(name)
                for o in old:
                    self.model.delete_adapter(o)
            else:
                if self.merge and self.dtype != "float32":
                    # unmerging in low precision does not give the base back (bf16(W + d) - d != W);
                    # keep the exact base weights so swaps round after round do not drift
                    self._base_snapshot = {n: p.detach().clone() for n, p in self.model.named_parameters()}
                self.model = PeftModel.from_pretrained(self.model, str(d), adapter_name=name)
            if self.merge:
                self.model.merge_adapter()
            self.model.eval()
            self.adapter, self._adapter_sha = str(d), sha
        log.info("adapter %s (sha256 %s…) %s", d, sha[:12], "merged" if self.merge else "applied")
        return sha

    def _unmerge(self) -> None:
        if not self.merge:
            return
        self.model.unmerge_adapter()
        snap = getattr(self, "_base_snapshot", None)
        if snap:
            import torch

            with torch.no_grad():
                for n, p in self.model.get_base_model().named_parameters():
                    key = n.replace(".base_layer.", ".")
                    if "lora_" not in n and key in snap:
                        p.copy_(snap[key])

    def unload_adapter(self) -> None:
        """Back to the bare base model (unmerge and drop the adapter)."""
        from peft import PeftModel

        with self._lock:
            if isinstance(self.model, PeftModel):
                self._unmerge()
                self.model = self.model.unload()
                self.model.eval()
            self.adapter, self._adapter_sha = None, None

    def identity(self) -> dict:
        if self._model_sha is None:
            self._model_sha = self._base_sha()
        return {"backend": self.name, "model": self.model_spec, "model_sha256": self._model_sha,
                "adapter": self.adapter, "adapter_sha256": self._adapter_sha, "dtype": self.dtype}

    def _base_sha(self) -> str | None:

        src = getattr(self.model, "plumcode_source", None)
        if src is None and hasattr(self.model, "get_base_model"):
            src = getattr(self.model.get_base_model(), "plumcode_source", None)
        if src and src.get("sha256"):
            return src["sha256"]  # the pinned GGUF it was dequantised from
        if src and src.get("kind") == "hub":
            return f"hub:{src['path']}@{src.get('revision')}"
        return weights_sha256(self.model_spec)

    # -- generation ------------------------------------------------------------------------------

    def render(self, prompt: Prompt) -> str:
        """The exact text fed to the model (chat template applied to message lists)."""
        if isinstance(prompt, str):
            return prompt
        if not getattr(self.tokenizer, "chat_template", None):
            raise GenerationError(f"model {self.model_spec} has no chat template; use completion prompts "
                                  "(--prompt-style completion)")
        return self.tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)

    def _encode(self, text: str, chat: bool) -> list[int]:
        return self.tokenizer(text, add_special_tokens=not chat)["input_ids"]

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        torch = self._torch
        out: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        jobs: list[tuple[int, int, list[int]]] = []  # (prompt idx, sample idx, token ids)
        for i, pr in enumerate(prompts):
            ids = self._encode(self.render(pr), chat=not isinstance(pr, str))
            room = self.max_context - len(ids)
            if room <= 0:
                msg = (f"prompt has {len(ids)} tokens but the model's context is {self.max_context}; "
                       "shorten the prompt or use a model with a longer context")
                for k in range(params.n):
                    out[i][k] = Completion("", 0, "error", len(ids), {"error": msg})
                continue
            for k in range(params.n):
                jobs.append((i, k, ids))
        jobs.sort(key=lambda j: -len(j[2]))
        if params.seed is not None:
            torch.manual_seed(params.seed)
        prev_threads = torch.get_num_threads()
        with self._lock, torch.inference_mode():
            if self.threads and self.device == "cpu":
                torch.set_num_threads(self.threads)
            try:
                self._run_jobs(jobs, params, out)
            finally:
                torch.set_num_threads(prev_threads)
        return out  # type: ignore[return-value]

    def _run_jobs(self, jobs: list, params: SamplingParams, out: list) -> None:
        """Batch the jobs; with prefix sharing, the copies of one prompt ride in one batch."""
        if not self.share_prefix:
            for b in range(0, len(jobs), self.batch_size):
                batch = jobs[b:b + self.batch_size]
                for (i, k, _), c in zip(batch, self._generate_batch([j[2] for j in batch], 1, params), strict=True):
                    out[i][k] = c
            return
        per_prompt: dict[int, tuple[list[int], list[int]]] = {}
        for i, k, ids in jobs:
            per_prompt.setdefault(i, (ids, []))[1].append(k)
        copies = max(1, min(params.n, self.batch_size))
        units = []  # (copies, prompt idx, sample ids, token ids): same-size units batch together
        for i, (ids, ks) in per_prompt.items():
            for c in range(0, len(ks), copies):
                units.append((len(ks[c:c + copies]), i, ks[c:c + copies], ids))
        units.sort(key=lambda u: (-u[0], -len(u[3])))
        b = 0
        while b < len(units):
            c = units[b][0]
            per_batch = max(1, self.batch_size // c)
            batch = [u for u in units[b:b + per_batch] if u[0] == c]
            b += len(batch)
            comps = self._generate_batch([u[3] for u in batch], c, params)
            for j, (_, i, ks, _) in enumerate(batch):
                for r, k in enumerate(ks):
                    out[i][k] = comps[j * c + r]

    def _cache_kw(self) -> str:
        """transformers >= 5.24 renamed ``past_key_values`` to ``cache`` (old name deprecated)."""
        import inspect

        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"

    def _generate_batch(self, uniq: list[list[int]], copies: int, params: SamplingParams) -> list[Completion]:
        """Generate ``copies`` samples of each prompt in ``uniq`` (rows prompt-major).

        With ``copies > 1`` each prompt is prefilled once and its KV cache repeated, instead of
        prefilling every copy (n=8 with 200-token prompts: the prefill was most of the compute).
        """
        torch = self._torch
        tok = self.tokenizer
        width = max(len(s) for s in uniq)
        pad = tok.pad_token_id
        ids_u = torch.full((len(uniq), width), pad, dtype=torch.long)
        mask_u = torch.zeros((len(uniq), width), dtype=torch.long)
        for r, s in enumerate(uniq):
            ids_u[r, width - len(s):] = torch.tensor(s, dtype=torch.long)
            mask_u[r, width - len(s):] = 1
        dev = self.model.device
        max_new = max(1, min(params.max_tokens, self.max_context - width))
        kw: dict[str, Any] = {"max_new_tokens": max_new, "eos_token_id": self.eos_ids, "pad_token_id": pad,
                              "repetition_penalty": 1.0}
        if copies > 1 and width > 1:
            from transformers import DynamicCache

            pos = mask_u.cumsum(-1) - 1
            pos.masked_fill_(mask_u == 0, 1)
            cache = DynamicCache()
            ck = self._cache_kw()
            self.model(input_ids=ids_u[:, :-1].to(dev), attention_mask=mask_u[:, :-1].to(dev),
                       position_ids=pos[:, :-1].to(dev), use_cache=True, logits_to_keep=1, **{ck: cache})
            cache.batch_repeat_interleave(copies)
            kw[ck] = cache
        input_ids = ids_u.repeat_interleave(copies, dim=0)
        attn = mask_u.repeat_interleave(copies, dim=0)
        seqs = [s for s in uniq for _ in range(copies)]
        if params.greedy:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            from transformers import LogitsProcessorList

            # temperature + nucleus done by _TempTopP (top-k first, full sort only when needed):
            # transformers' top-p sorts the whole 152k vocab per row per step, which cost as much as
            # the forward pass on CPU
            kw.update(do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                      logits_processor=LogitsProcessorList([_TempTopP(params.temperature, params.top_p)]))
        if params.stop:
            from transformers import StoppingCriteriaList

            kw["stopping_criteria"] = StoppingCriteriaList([_StopOnStrings(tok, params.stop, width)])
        t0 = time.perf_counter()
        gen = self.model.generate(input_ids=input_ids.to(self.model.device), attention_mask=attn.to(self.model.device),
                                  **kw)
        new = gen[:, width:].cpu().tolist()
        dt = time.perf_counter() - t0
        res = []
        eos = set(self.eos_ids)
        for s, toks in zip(seqs, new, strict=True):
            # n_tokens = tokens actually generated: up to EOS (counted), or up to the filler padding
            # after a stop-string hit, or all of them when max_tokens ran out
            n, finish, n_tok = len(toks), "length", len(toks)
            for idx, t in enumerate(toks):
                if t in eos:
                    n, finish, n_tok = idx, "stop", idx + 1
                    break
                if t == pad:
                    n, n_tok = idx, idx
                    break
            text = tok.decode(toks[:n], skip_special_tokens=True)
            if params.stop:
                cut = min((p for p in (text.find(st) for st in params.stop) if p >= 0), default=-1)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
            res.append(Completion(text, n_tok, finish, len(s), {"batch_s": round(dt, 4)}))
        return res

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
        import gc

        gc.collect()


def _contiguous_input(module: Any, args: tuple) -> tuple | None:
    """Hand the LM head a contiguous input. ``generate`` slices the last position of the hidden
    states (``logits_to_keep=1``), a strided view, and torch 2.13's CPU bf16 ``F.linear`` with a
    frozen weight (any loaded adapter freezes the base) then computes over the whole prompt: one
    batch of 32 HumanEval prompts took 20 s and 8 GB more for that one matmul instead of 0.05 s. It
    made every evaluation of a trained policy slower and OOM-killed one (docs/experiment.md)."""
    x = args[0] if args else None
    if x is not None and hasattr(x, "is_contiguous") and not x.is_contiguous():
        return (x.contiguous(), *args[1:])
    return None


class _StopOnStrings:
    """Per-sequence stop when the *generated* text (never the prompt's tail) contains a stop string.

    transformers' own ``stop_strings`` also matches across the prompt boundary (a prompt ending in
    a newline plus one generated newline hits ``"\\n\\n"``), which would end samples before they start.
    """

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_width: int):
        self.tok, self.stops, self.start = tokenizer, tuple(stops), prompt_width
        self.window = max(len(s) for s in stops) + 8  # tokens are >= 1 char, except split UTF-8 bytes

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        gen = input_ids[:, self.start:]
        tail = gen[:, -self.window:].tolist()
        texts = self.tok.batch_decode(tail, skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in texts], dtype=torch.bool,
                            device=input_ids.device)


class _TempTopP:
    """Temperature then nucleus (top-p) filtering, exactly as transformers defines them, but fast.

    The nucleus is looked for among the ``k`` most likely tokens (``topk``, no full sort); a row
    whose top-``k`` mass is still below ``top_p`` falls back to a full sort, so the result is
    identical to transformers' ``TopPLogitsWarper`` (keep a token iff the mass of the tokens
    strictly more likely than it is < top_p; at least one token kept).
    """

    def __init__(self, temperature: float, top_p: float, k: int = 256):
        self.t, self.p, self.k = float(temperature), float(top_p), k

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        scores = scores.float() / self.t
        if self.p >= 1.0:
            return scores
        k = min(self.k, scores.shape[-1])
        lse = torch.logsumexp(scores, dim=-1, keepdim=True)
        vals, idx = torch.topk(scores, k, dim=-1)
        probs = (vals - lse).exp()
        before = probs.cumsum(-1) - probs  # mass of strictly more likely tokens (ties: rank order)
        keep = before < self.p
        keep[:, 0] = True
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, idx, torch.where(keep, vals, torch.full_like(vals, float("-inf"))))
        short = (probs.sum(-1) < self.p).nonzero().flatten()
        for r in short.tolist():  # nucleus wider than k tokens: exact full sort for this row
            sv, si = torch.sort(scores[r], descending=True)
            pr = (sv - lse[r]).exp()
            kp = (pr.cumsum(-1) - pr) < self.p
            kp[0] = True
            row = torch.full_like(scores[r], float("-inf"))
            row[si[kp]] = sv[kp]
            out[r] = row
        return out
