"""Registered models (the embedded default policy) and how to fetch, verify and load them."""

from plumcode.models.fetch import (
    ModelError,
    cache_dir,
    ensure_model,
    load_gguf_as_hf,
    load_hf_model,
    model_path,
    verify_model,
)
from plumcode.models.registry import DEFAULT_MODEL, REGISTRY, ModelEntry, get_entry

__all__ = ["DEFAULT_MODEL", "REGISTRY", "ModelEntry", "ModelError", "cache_dir", "ensure_model", "get_entry",
           "load_gguf_as_hf", "load_hf_model", "model_path", "verify_model"]
