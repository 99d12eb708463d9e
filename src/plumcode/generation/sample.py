"""The sampling stage: N candidate solutions per problem from the policy, appended to samples.jsonl.

Resumable: ``sample_id = f"{problem_id}#{k}"`` for ``k < n``; a rerun reads the file, generates
only the missing ids and appends line-complete records (``JsonlAppender``), so a crash or a
Ctrl-C loses at most the chunk in flight. Each record::

    {"problem_id", "sample_id", "code" (extracted, "" when none), "completion" (raw), "prompt",
     "policy": backend.identity(), "params": {...}, "n_tokens", "finish_reason",
     "prompt_tokens", "extraction", "reason" ("" or why code is empty/suspect)}

Bad completions (empty, prose only, over-long prompt) are recorded with empty code and a reason,
never a crash; a backend failure (server down) stops the stage with the samples so far kept.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from plumcode.generation.base import Backend, Completion, SamplingParams
from plumcode.generation.prompts import build_prompt, extract, stop_sequences
from plumcode.io import JsonlAppender, read_jsonl
from plumcode.problems.schema import Problem

log = logging.getLogger(__name__)


def sample_id(problem_id: str, k: int) -> str:
    return f"{problem_id}#{k}"


def default_style(backend: Any) -> str:
    """Chat for instruct models (a chat template is known) and servers; completion otherwise."""
    if getattr(backend, "name", "") in ("openai", "vllm"):
        return "chat"
    tok = getattr(backend, "tokenizer", None)
    if tok is not None:
        return "chat" if getattr(tok, "chat_template", None) else "completion"
    return "chat" if getattr(backend, "chat_template", None) else "completion"


def _policy_key(p: dict | None) -> tuple:
    p = p or {}
    return (p.get("model"), p.get("model_sha256"), p.get("adapter_sha256"))


def existing_samples(out_path: str | Path) -> dict[str, dict]:
    """sample_id -> record of what a previous run already wrote (torn last line ignored)."""
    path = Path(out_path)
    if not path.exists():
        return {}
    return {str(r["sample_id"]): r for _, r in read_jsonl(path) if "sample_id" in r}


def sample_problems(problems: Iterable[Problem], backend: Backend, params: SamplingParams, out_path: str | Path,
                    *, batch_size: int | None = None, prompt_style: str | None = None, system: str | None = None,
                    progress: bool = True, allow_policy_change: bool = False) -> dict[str, Any]:
    """Sample ``params.n`` completions per problem into ``out_path`` (resumable); returns a summary.

    ``batch_size``: sequences per generate call (defaults to the backend's own batch size, x2 so its
    length sorting has room). A file written by a different policy is refused unless
    ``allow_policy_change``: mixing policies would make the data silently off-policy.
    """
    problems = list(problems)
    style = prompt_style or default_style(backend)
    ident = backend.identity()
    done = existing_samples(out_path)
    if done and not allow_policy_change:
        other = {_policy_key(r.get("policy")) for r in done.values()} - {_policy_key(ident)}
        if other:
            raise ValueError(f"{out_path} holds samples of another policy {sorted(other)[0]} (now "
                             f"{_policy_key(ident)}); write to a new file or pass --allow-policy-change")
    todo: dict[tuple, list[tuple[Problem, list[int]]]] = {}
    n_missing = 0
    for p in problems:
        ks = [k for k in range(params.n) if sample_id(p.id, k) not in done]
        if ks:
            stops = tuple(dict.fromkeys(params.stop + stop_sequences(p, style)))
            todo.setdefault((len(ks), stops), []).append((p, ks))
            n_missing += len(ks)
    summary: dict[str, Any] = {"problems": len(problems), "already_done": len(problems) * params.n - n_missing,
                               "written": 0, "empty_code": 0, "errors": 0, "tokens": 0, "seconds": 0.0,
                               "out": str(out_path), "prompt_style": style}
    if not n_missing:
        return summary
    seqs_per_call = max(1, 2 * (batch_size or getattr(backend, "batch_size", None)
                                or getattr(backend, "concurrency", None) or 16))
    bar = _bar(n_missing, progress)
    t0 = time.perf_counter()
    param_rec = {k: v for k, v in asdict(params).items() if k != "n"} | {"n": params.n, "prompt_style": style}
    try:
        with JsonlAppender(out_path) as app:
            for (n_k, stops), group in todo.items():
                # servers: enough prompts in flight to fill the connection pool; in-process: ~2 batches
                per_call = seqs_per_call if getattr(backend, "concurrency", None) else max(1, seqs_per_call // n_k)
                for c in range(0, len(group), per_call):
                    chunk = group[c:c + per_call]
                    prompts = [build_prompt(p, style, system) for p, _ in chunk]
                    seed = None if params.seed is None else (params.seed + zlib.crc32(chunk[0][0].id.encode())) % 2**31
                    cp = replace(params, n=n_k, stop=stops, seed=seed)
                    results = backend.generate(prompts, cp)
                    rec_params = param_rec | {"stop": list(stops), "chunk_seed": seed}
                    for (p, ks), prompt, comps in zip(chunk, prompts, results, strict=True):
                        for k, comp in zip(ks, comps, strict=False):
                            rec = _record(p, k, prompt, comp, ident, rec_params)
                            app.write(rec)
                            summary["written"] += 1
                            summary["tokens"] += comp.n_tokens
                            summary["empty_code"] += rec["code"] == ""
                            summary["errors"] += comp.finish_reason == "error"
                            if comp.finish_reason == "error":
                                log.warning("%s: %s", rec["sample_id"], rec["reason"])
                    if bar is not None:
                        bar.update(sum(len(ks) for _, ks in chunk))
                        dt = time.perf_counter() - t0
                        bar.set_postfix_str(f"{summary['tokens'] / max(dt, 1e-9):.1f} tok/s")
    finally:
        if bar is not None:
            bar.close()
        summary["seconds"] = round(time.perf_counter() - t0, 3)
        summary["tokens_per_s"] = round(summary["tokens"] / max(summary["seconds"], 1e-9), 2)
    return summary


def _record(p: Problem, k: int, prompt: Any, comp: Completion, ident: dict, param_rec: dict) -> dict:
    if comp.finish_reason == "error":
        code, method, reason = "", "none", str(comp.meta.get("error") or "generation error")
    else:
        ex = extract(comp.text, p)
        code, method, reason = ex.code, ex.method, ex.reason
        if comp.finish_reason == "length" and reason:
            reason += " (hit max_tokens)"
    return {"problem_id": p.id, "sample_id": sample_id(p.id, k), "code": code, "completion": comp.text,
            "prompt": prompt, "policy": ident, "params": param_rec, "n_tokens": comp.n_tokens,
            "finish_reason": comp.finish_reason, "prompt_tokens": comp.prompt_tokens, "extraction": method,
            "reason": reason}


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="sampling", unit="sample", dynamic_ncols=True)


def read_samples(path: str | Path) -> list[dict]:
    """All sample records of a samples.jsonl (for later stages and tests)."""
    return [r for _, r in read_jsonl(path)]


def completions_by_problem(records: Sequence[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in records:
        out.setdefault(str(r["problem_id"]), []).append(r)
    return out
