"""Preference records -> token ids -> length-sorted, right-padded batches.

Tokenisation follows TRL exactly (chat template with/without the generation prompt; the
completion starts where the prompt and prompt+completion token ids diverge; ``keep_start``
truncation) so our losses are TRL's losses on the same tokens.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plumcode.io import DataError, read_jsonl


@dataclass
class Seq:
    """One prompt+completion sequence; ``n_prompt`` tokens of context, the rest are scored."""

    ids: list[int]
    n_prompt: int

    @property
    def n_completion(self) -> int:
        return len(self.ids) - self.n_prompt


@dataclass
class Example:
    """A training unit: a DPO pair (``seqs=[chosen, rejected]``) or one KTO/SFT completion."""

    seqs: list[Seq]
    label: bool | None = None  # kto/sft
    index: int = 0
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)  # kto: for the KL (mismatched) sequence

    @property
    def n_tokens(self) -> int:
        return sum(len(s.ids) for s in self.seqs)


def load_records(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"preference file not found: {p}")
    recs = [r for _, r in read_jsonl(p)]
    if not recs:
        raise DataError("preference file is empty: nothing to train on (did every problem lack signal? "
                        "see the .summary.json beside it)", p)
    return recs


def kind_of(records: list[dict], path: str | Path = "") -> str:
    """``paired`` or ``unpaired``; mixed files are an error (TRL cannot load them either)."""
    kinds = set()
    for i, r in enumerate(records, 1):
        if "chosen" in r and "rejected" in r:
            kinds.add("paired")
        elif "completion" in r and "label" in r:
            kinds.add("unpaired")
        else:
            raise DataError("record is neither paired {prompt, chosen, rejected} nor unpaired "
                            "{prompt, completion, label}", path, i)
        if "prompt" not in r:
            raise DataError("record lacks 'prompt'", path, i, "prompt")
    if len(kinds) > 1:
        raise DataError("file mixes paired and unpaired records", path)
    return kinds.pop()


def check_objective(records: list[dict], objective: str, path: str | Path = "") -> str:
    """Refuse data the objective cannot learn from, before any model is loaded (its registry entry's check)."""
    from plumcode.training.objectives import get

    return get(objective).check(records, path)


def _tok(tokenizer: Any, x: Any, **kw: Any) -> list[int]:
    if isinstance(x, list):
        out = tokenizer.apply_chat_template(x, tokenize=True, return_dict=True, **kw)["input_ids"]
    else:
        out = tokenizer(text=x)["input_ids"]
    if out and isinstance(out[0], list):
        out = out[0]
    return list(out)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def tokenize_pc(tokenizer: Any, prompt: Any, completion: Any, *, open_end: bool = False
                ) -> tuple[list[int], list[int]]:
    """(prompt_ids, completion_ids) exactly as TRL's DPO/KTO trainers build them.

    ``open_end``: the completion was cut at the token limit, so it gets none of the closing tokens
    (end-of-turn, EOS) the chat template or TRL would add: the model never produced them, and
    scoring them would teach "stop here" (or, for a failing answer, "never stop")."""
    chat = isinstance(prompt, list)
    if chat != isinstance(completion, list):
        raise DataError("prompt and completion must both be chat messages or both be strings")
    if chat:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("conversational preference data but the tokenizer has no chat template")
        p = _tok(tokenizer, prompt, add_generation_prompt=True)
        full = _tok(tokenizer, prompt + completion)
        if open_end:  # what the template closes an assistant turn with: its rendering of an empty one
            closing = _tok(tokenizer, prompt + [{"role": "assistant", "content": ""}])[len(p):]
            if closing and full[-len(closing):] == closing:
                full = full[:-len(closing)]
    else:
        eos = tokenizer.eos_token or ""
        if eos and not completion.endswith(eos) and not open_end:
            completion = completion + eos
        p = _tok(tokenizer, prompt)
        full = _tok(tokenizer, prompt + completion)
    n = _common_prefix(p, full)
    return p[:n], full[n:]


def _seq(prompt_ids: list[int], completion_ids: list[int], max_length: int) -> Seq:
    ids = (prompt_ids + completion_ids)[:max_length] if max_length else prompt_ids + completion_ids
    return Seq(ids, len(prompt_ids))


def build_examples(records: list[dict], tokenizer: Any, objective: str, max_length: int,
                   path: str | Path = "") -> tuple[list[Example], int]:
    """Tokenise; returns examples and how many were dropped (prompt alone fills max_length)."""
    from plumcode.training.objectives import get

    data = get(objective).data
    kind = kind_of(records, path)
    out: list[Example] = []
    dropped = 0
    vocab = len(tokenizer)
    for i, r in enumerate(records):
        if kind == "paired":
            p, c = tokenize_pc(tokenizer, r["prompt"], r["chosen"], open_end=bool(r.get("chosen_truncated")))
            p2, rj = tokenize_pc(tokenizer, r["prompt"], r["rejected"], open_end=bool(r.get("rejected_truncated")))
            if max_length and len(p) >= max_length:
                dropped += 1
                continue
            if data == "paired":
                out.append(Example([_seq(p, c, max_length), _seq(p2, rj, max_length)], None, i))
            else:  # kto/sft from pairs: unpair like TRL's unpair_preference_dataset
                out.append(Example([_seq(p, c, max_length)], True, i, p, c))
                out.append(Example([_seq(p2, rj, max_length)], False, i, p2, rj))
        else:
            p, c = tokenize_pc(tokenizer, r["prompt"], r["completion"], open_end=bool(r.get("truncated")))
            if max_length and len(p) >= max_length:
                dropped += 1
                continue
            out.append(Example([_seq(p, c, max_length)], bool(r["label"]), i, p, c))
    if data == "desirable":
        out = [e for e in out if e.label]
    if not out:
        raise DataError(f"no trainable examples: all {dropped} prompts are at least max_length tokens", path)
    for e in out:
        for s in e.seqs:
            if s.ids and max(s.ids) >= vocab:
                raise ValueError(f"token id {max(s.ids)} >= tokenizer size {vocab}")
    return out, dropped


def make_batches(examples: list[Example], batch_size: int, seed: int, length_sorted: bool = True
                 ) -> list[list[Example]]:
    """Fixed batch composition: length-sorted chunks (little padding), chunk order shuffled.

    The composition stays fixed across epochs so KTO's KL partners (and their precomputed
    reference log-probs) stay valid; only the order of batches changes per epoch.
    """
    rng = random.Random(seed)
    order = list(examples)
    rng.shuffle(order)
    if length_sorted:
        # sort by length *quantile within the label class*: batches stay length-homogeneous (little
        # padding) yet keep both classes in proportion (KTO's KL and margins need mixed batches)
        key: dict[int, float] = {}
        for lab in {e.label for e in order}:
            cls = sorted((e for e in order if e.label == lab), key=lambda e: max(len(s.ids) for s in e.seqs))
            for r, e in enumerate(cls):
                key[id(e)] = (r + 0.5) / len(cls)
        order.sort(key=lambda e: key[id(e)])
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def read_summary_weights(pref_path: str | Path) -> tuple[float | None, float | None]:
    """KTO class weights the preference stage computed, from ``<name>.summary.json`` if present."""
    p = Path(pref_path)
    s = p.with_name(p.name.removesuffix(".jsonl") + ".summary.json")
    if not s.is_file():
        return None, None
    try:
        d = json.loads(s.read_text())["summary"]
        return float(d["desirable_weight"]), float(d["undesirable_weight"])
    except (KeyError, ValueError, TypeError, json.JSONDecodeError):
        return None, None
