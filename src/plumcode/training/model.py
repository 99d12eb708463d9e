"""Load the policy to train (HF dir, hub id, GGUF / embedded default, or a previous plumcode
checkpoint) and fingerprint its base so mismatched checkpoints are refused before compute."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CKPT_META = "plumcode_checkpoint.json"


def accelerator_available() -> bool:
    """A GPU (or other torch accelerator) this process can use."""
    import torch

    acc = getattr(torch, "accelerator", None)  # torch >= 2.6: CUDA, ROCm, XPU, MPS, ...
    if acc is not None and hasattr(acc, "is_available"):
        return bool(acc.is_available())
    return bool(torch.cuda.is_available())


def base_fingerprint(model: Any, tokenizer: Any) -> str:
    """Cheap identity of the weights we start from: architecture, shapes, and a slice of every tensor.

    Two different checkpoints of the same architecture differ in the sampled values, so an
    adapter or resume state trained on another base is caught without hashing gigabytes.
    """
    import torch

    h = hashlib.sha256()
    cfg = model.config
    for k in ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size",
              "num_attention_heads", "num_key_value_heads", "tie_word_embeddings"):
        h.update(f"{k}={getattr(cfg, k, None)};".encode())
    for name, p in model.state_dict().items():
        if ".lora_" in name or "modules_to_save" in name:
            continue
        flat = p.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 64)][:64].to(torch.float32).cpu()
        h.update(name.replace("base_model.model.", "").encode())
        h.update(str(tuple(p.shape)).encode())
        h.update(sample.numpy().round(4).tobytes())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    return h.hexdigest()[:24]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    vocab = tokenizer.get_vocab()
    blob = json.dumps(sorted(vocab.items()), ensure_ascii=False) + str(getattr(tokenizer, "chat_template", ""))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_model_tokenizer(model: Any, tokenizer: Any) -> None:
    """A tokenizer from another model family silently trains garbage; refuse it."""
    n_emb = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > n_emb:
        raise ValueError(f"model/tokenizer mismatch: tokenizer has {len(tokenizer)} tokens but the model's "
                         f"embedding has {n_emb} rows (tokenizer from another model?)")
    for name in ("eos_token_id", "pad_token_id"):
        tid = getattr(tokenizer, name, None)
        if tid is not None and tid >= n_emb:
            raise ValueError(f"model/tokenizer mismatch: tokenizer {name}={tid} >= embedding rows {n_emb}")
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has no EOS token: completions could never end")


def _load_dir(path: Path, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    return model, tok


def _merge_adapter(model: Any, adapter_dir: Path) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()


def training_source(spec: str) -> tuple[str, str | None]:
    """``(weights, adapter)`` that a model spec names, so training takes every spec sampling takes.

    ``hf:<dir|hub id|file.gguf|name>``, ``vllm:<dir|hub id>``, ``llama-cpp:<file.gguf|name>`` and
    ``managed:<engine>:<model>`` name weights; ``?adapter=<dir>`` a LoRA adapter on them (other
    ``?`` options are generation settings and do not apply); ``multi:`` replicas hold one policy,
    its first replica's weights; a bare path, hub id or registered name is itself. ``openai:`` names
    a server whose weights plumcode cannot read: refused with what to pass instead.
    """
    from plumcode.generation.loader import multi_replicas, parse_spec

    s = str(spec).strip()
    if s.startswith("multi:"):
        return training_source(multi_replicas(s)[0])
    ps = parse_spec(s)
    if ps.kind == "openai":
        raise ValueError(f"model spec {spec!r} is an OpenAI-compatible server: its weights cannot be trained from "
                         "here; pass the weights it serves (hf:<dir>, a hub id or a .gguf)")
    target = ps.model if ps.kind == "managed" else ps.target
    if not target:
        raise ValueError(f"model spec {spec!r} names no weights")
    ignored = sorted(k for k in ps.options if k != "adapter")
    if ignored:
        log.info("model spec %r: generation option(s) %s do not apply to training", spec, ", ".join(ignored))
    adapter = ps.options.get("adapter")
    return str(target), (str(adapter) if adapter not in (None, "") else None)


def load_policy(spec: Any, dtype: Any = None) -> tuple[Any, Any, dict]:
    """Return ``(model, tokenizer, info)``; ``info`` names the base for checkpoint metadata.

    ``spec``: a ``(model, tokenizer)`` pair; a plumcode checkpoint dir (its merged ``model/`` or
    its base + ``adapter/`` merged, so this round's reference is the previous round's policy); a
    PEFT adapter dir; a transformers model dir; a ``.gguf`` file, a registered name
    (``default``) or a hub id through :func:`plumcode.models.load_hf_model`.
    """
    if isinstance(spec, tuple):
        model, tok = spec
        return model, tok, {"spec": getattr(model, "name_or_path", "<in-memory>"), "base": None}
    if isinstance(spec, str) and (":" in spec.split("/", 1)[0] or "?" in spec) and not Path(spec).exists():
        weights, adapter = training_source(spec)  # hf:, vllm:, llama-cpp:, managed:, multi: specs
        if not adapter:
            return load_policy(weights, dtype)
        ap = Path(adapter).expanduser()
        if not (ap / "adapter_config.json").is_file():
            raise ValueError(f"model spec {spec!r}: {ap} is not a PEFT adapter folder (no adapter_config.json)")
        model, tok, _ = load_policy(weights, dtype)
        # the policy is base + adapter merged; the spec (not the bare base) is what reproduces it
        return _merge_adapter(model, ap), tok, {"spec": str(spec), "base": None}
    p = Path(str(spec)).expanduser()
    meta_path = p / CKPT_META
    if p.is_dir() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if (p / "model" / "config.json").is_file():
            model, tok = _load_dir(p / "model", dtype)
        elif (p / "adapter" / "adapter_config.json").is_file():
            base = meta.get("base_spec")
            if not base:
                raise ValueError(f"{meta_path}: checkpoint records no base model to put its adapter on")
            model, tok, _ = load_policy(base, dtype)
            fp = base_fingerprint(model, tok)
            if meta.get("base_fingerprint") and fp != meta["base_fingerprint"]:
                raise ValueError(f"checkpoint {p} was trained on a different base than {base!r} now holds "
                                 f"(fingerprint {meta['base_fingerprint']} != {fp})")
            model = _merge_adapter(model, p / "adapter")
        else:
            raise ValueError(f"{p} has {CKPT_META} but neither model/ nor adapter/")
        return model, tok, {"spec": str(p), "base": meta.get("base_spec"), "from_checkpoint": True}
    if p.is_dir() and (p / "adapter_config.json").is_file():
        cfg = json.loads((p / "adapter_config.json").read_text())
        base = cfg.get("base_model_name_or_path")
        if not base:
            raise ValueError(f"{p}/adapter_config.json names no base_model_name_or_path")
        model, tok, _ = load_policy(base, dtype)
        return _merge_adapter(model, p), tok, {"spec": str(p), "base": base}
    if p.is_dir() and (p / "config.json").is_file():
        model, tok = _load_dir(p, dtype)
        return model, tok, {"spec": str(p.resolve()), "base": None}
    try:
        from plumcode.models import load_hf_model
    except ImportError:  # generation engineer's module absent: plain transformers
        if p.suffix == ".gguf":
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
            model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=dtype)
            return model, tok, {"spec": str(p), "base": None}
        model, tok = _load_dir(Path(str(spec)), dtype)
        return model, tok, {"spec": str(spec), "base": None}
    model, tok = load_hf_model(str(spec), dtype)
    return model, tok, {"spec": str(spec), "base": None}
