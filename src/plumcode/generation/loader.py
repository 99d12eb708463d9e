"""``load_backend(spec)``: one string picks the engine, so configs and CLIs name a policy the same way.

Spec forms (options after ``?`` as ``key=value&...``; keyword options override them)::

    default                                   embedded Qwen2.5-Coder-0.5B-Instruct, transformers in-process
    hf:<dir | hub id | file.gguf | name>      transformers in-process  (?adapter=<dir>&dtype=bf16&batch_size=16)
    openai:<base_url>#<model>                 OpenAI-compatible server (?adapter=<dir>&concurrency=32)
    llama-cpp:<file.gguf | name>              llama.cpp in-process     (?n_ctx=4096&threads=8)
    vllm:<dir | hub id>                       vLLM in-process          (?adapter=<dir>)
    multi:<spec>|<spec>|...                   data-parallel over replicas of one policy (least-loaded,
                                              health-checked; plumcode.distributed.MultiBackend)
    managed:<vllm | plumcode>:<model>         a server the caller owns: started on a free loopback port,
                                              waited for, stopped (whole process group) by close()
                                              (?adapter=<dir>&log_dir=<dir>; vllm: tensor_parallel_size,
                                              gpu_memory_utilization, max_model_len, ...; plumcode:
                                              threads, dtype, batch_size)

A bare path or hub id means ``hf:``. The API key for ``openai:`` comes from ``PLUMCODE_API_KEY``
or ``OPENAI_API_KEY``.

``multi:`` and ``managed:`` are parsed here but built by ``plumcode.distributed``, which builds on
this package: it registers them with :func:`register_spec` when imported. The loader imports it
by name on the first such spec, never at module level, so there is no import cycle.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from plumcode.generation.base import Backend
from plumcode.generation.hf import GenerationError

KINDS = ("hf", "openai", "llama-cpp", "vllm", "managed")
_ALIASES = {"transformers": "hf", "llamacpp": "llama-cpp", "llama_cpp": "llama-cpp", "gguf": "llama-cpp",
            "oai": "openai"}
# spec prefix -> load(spec, **opts), filled by the packages that build those backends
_REGISTERED: dict[str, Callable[..., Backend]] = {}
# where a registered prefix comes from: imported on first use, so a library caller's
# load_backend("managed:...") works without knowing the plugin, and the loader still does not import
# it at module level (no import cycle)
_REGISTERED_BY = {"multi": "plumcode.distributed", "managed": "plumcode.distributed"}


def register_spec(prefix: str, load: Callable[..., Backend]) -> None:
    """Have ``load_backend("<prefix>:...", **opts)`` return ``load(spec, **opts)``: how a package
    that builds on generation adds a spec form without the loader importing it."""
    _REGISTERED[prefix.lower()] = load


@dataclass
class BackendSpec:
    kind: str
    target: str
    model: str | None = None  # openai: the served model name
    options: dict[str, Any] = field(default_factory=dict)


def _coerce(v: str) -> Any:
    low = v.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def parse_spec(spec: str) -> BackendSpec:
    """Split a backend spec string into kind, target, served model and options."""
    s = spec.strip()
    if not s:
        raise ValueError("empty model spec")
    s, _, query = s.partition("?") if not s.startswith(("openai:", "http")) else _split_query_url(s)
    opts = {k: _coerce(v) for k, v in parse_qsl(query, keep_blank_values=True)}
    if s.startswith(("http://", "https://")):
        s = "openai:" + s
    kind, sep, rest = s.partition(":")
    kind = _ALIASES.get(kind.lower(), kind.lower()) if sep else ""
    if kind not in KINDS:
        kind, rest = "hf", s  # no scheme: transformers on that path, hub id or registered name
    if kind == "openai":
        url, _, model = rest.partition("#")
        return BackendSpec("openai", url, model or None, opts)
    if kind == "managed":  # managed:<engine>:<model>: target is the engine, model the weights
        engine, _, model = rest.partition(":")
        if not model:
            raise ValueError(f"model spec {spec!r}: write managed:<vllm|plumcode>:<model>")
        return BackendSpec("managed", engine.lower(), model, opts)
    if not rest:
        raise ValueError(f"model spec {spec!r} names no model after '{kind}:'")
    return BackendSpec(kind, rest, None, opts)


def _split_query_url(s: str) -> tuple[str, str, str]:
    """``openai:http://h/v1#m?adapter=x`` -> (``openai:http://h/v1#m``, ``?``, ``adapter=x``)."""
    head, sep, query = s.rpartition("?")
    if not sep or "=" not in query:
        return s, "", ""
    return head, sep, query


def multi_replicas(spec: str) -> list[str]:
    """The replica specs of a ``multi:a|b|...`` spec (each with its own options)."""
    replicas = [r.strip() for r in spec.strip().removeprefix("multi:").split("|") if r.strip()]
    if not replicas:
        raise ValueError(f"model spec {spec!r} names no replica after 'multi:'")
    if any(r.startswith("multi:") for r in replicas):
        raise ValueError(f"model spec {spec!r}: a multi: replica cannot itself be multi:")
    return replicas


def load_backend(spec: str, **opts: Any) -> Backend:
    """Build the backend a spec names (see module doc). Raises GenerationError with a clear message.

    Options in the spec must exist for that backend (a typo is an error); keyword ``opts`` that the
    backend does not take (``batch_size`` for a server) are dropped, so callers can pass them always.
    """
    head, sep, _ = spec.strip().partition(":")
    prefix = head.lower() if sep else ""
    if prefix in _REGISTERED:
        return _REGISTERED[prefix](spec, **opts)
    if prefix in _REGISTERED_BY:
        import importlib

        importlib.import_module(_REGISTERED_BY[prefix])
        if prefix in _REGISTERED:
            return _REGISTERED[prefix](spec, **opts)
        raise GenerationError(f"model spec {spec!r}: {_REGISTERED_BY[prefix]} did not register {prefix}: specs")
    ps = parse_spec(spec)
    if ps.kind == "hf":
        from plumcode.generation.hf import TransformersBackend as cls
    elif ps.kind == "openai":
        from plumcode.generation.openai_http import OpenAIBackend as cls  # type: ignore[assignment]
    elif ps.kind == "llama-cpp":
        from plumcode.generation.llamacpp import LlamaCppBackend as cls  # type: ignore[assignment]
    elif ps.kind == "vllm":
        from plumcode.generation.vllm_backend import VLLMBackend as cls  # type: ignore[assignment]
    else:
        raise ValueError(f"unknown backend kind {ps.kind!r} (one of {', '.join(KINDS)})")
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    allowed = [k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    bad = [k for k in ps.options if k not in allowed and not takes_any]
    if bad:
        if ps.kind == "llama-cpp" and "adapter" in bad:
            raise GenerationError("llama-cpp cannot apply a LoRA adapter in process; merge and convert it, or "
                                  "use hf: / openai:")
        raise ValueError(f"unknown option(s) {', '.join(bad)} in spec {spec!r}; {ps.kind} takes: "
                         f"{', '.join(allowed)}")
    options = dict(ps.options)
    options.update({k: v for k, v in opts.items() if v is not None and (k in allowed or takes_any)})
    if ps.kind == "openai":
        return cls(ps.target, ps.model, **options)
    return cls(ps.target, **options)

