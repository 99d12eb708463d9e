"""Training health: the two signals that warned of collapse in the headline experiment, checked by the
trainer so a user sees drift before spending an evaluation on it.

1. The desirable/chosen completions' log-prob falling below the reference. Preference losses can
   lower the chosen answers' likelihood together with the rejected ones' (the margin still grows);
   on code that means the policy moves away from its own passing answers (KTO's desirable reward fell
   to -0.92 at beta 0.1, about -9 nats, in the arms that lost 10 points).
2. Answers growing. Greedy answers to a few fixed training prompts, before and after training: the
   degraded arms' answers grew 1.5-2x in mean length.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Health:
    chosen_logratio: float | None = None  # nats, mean over the last tenth of the steps (policy - reference)
    probe_tokens_before: float | None = None
    probe_tokens_after: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def probe_growth(self) -> float | None:
        if not self.probe_tokens_before or self.probe_tokens_after is None:
            return None
        return self.probe_tokens_after / self.probe_tokens_before - 1

    def to_json(self) -> dict:
        return asdict(self) | {"probe_growth": self.probe_growth, "ok": not self.warnings}


def chosen_logratio(history: list[dict], beta: float) -> float | None:
    """Mean log-ratio (policy - reference, nats per completion) of the desirable/chosen completions
    over the last tenth of the logged steps (at least 3): ``rewards/chosen`` is ``beta`` times it."""
    vals = [h["rewards/chosen"] / beta for h in history if "rewards/chosen" in h]
    if not vals:
        return None
    tail = vals[-max(3, len(vals) // 10):]
    return sum(tail) / len(tail)


def check(history: list[dict], beta: float, *, logp_drop: float, probe_before: float | None = None,
          probe_after: float | None = None, growth: float = 0.25) -> Health:
    """Health of a finished (or running) training from its log and optional probe lengths."""
    h = Health(chosen_logratio=chosen_logratio(history, beta), probe_tokens_before=probe_before,
               probe_tokens_after=probe_after)
    if h.chosen_logratio is not None and h.chosen_logratio < -logp_drop:
        h.warnings.append(f"the desirable/chosen completions' log-prob fell {-h.chosen_logratio:.2f} nats below the "
                          f"reference (threshold {logp_drop}): the policy is moving away from its own passing "
                          "answers; lower the learning rate, add training.options.sft_weight, or use fewer epochs")
    g = h.probe_growth
    if g is not None and g > growth:
        h.warnings.append(f"greedy answers to the probe prompts grew {100 * g:.0f}% in mean length "
                          f"({h.probe_tokens_before:.0f} -> {h.probe_tokens_after:.0f} tokens; threshold "
                          f"{100 * growth:.0f}%): length drift; check truncated samples and the learning rate")
    return h


def probe_prompts(records: list[dict], k: int) -> list[Any]:
    """``k`` distinct prompts of the training data, the same ones before and after training (first
    appearance order of the preference file, which the preference stage sorts by problem)."""
    out: list[Any] = []
    seen: set[str] = set()
    for r in records:
        key = repr(r.get("prompt"))
        if key not in seen:
            seen.add(key)
            out.append(r["prompt"])
        if len(out) >= k:
            break
    return out


def probe_tokens(model: Any, tokenizer: Any, prompts: list[Any], max_new_tokens: int, device: Any) -> float | None:
    """Mean number of new tokens in the greedy answers to ``prompts`` (stopping at EOS / end of turn)."""
    import torch

    if not prompts:
        return None
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) if isinstance(p, list)
             else p for p in prompts]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer(texts, return_tensors="pt", padding=True).to(device)
    finally:
        tokenizer.padding_side = side
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
    finally:
        model.train(was_training)
    new = out[:, enc["input_ids"].shape[1]:]
    stops = {t for t in (tokenizer.eos_token_id, tokenizer.pad_token_id,
                         tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab()
                         else None) if t is not None}
    lengths = []
    for row in new.tolist():
        n = next((i + 1 for i, t in enumerate(row) if t in stops), len(row))
        lengths.append(n)
    return sum(lengths) / len(lengths)
