"""Per-sequence completion log-probs without full-vocabulary logits for prompt or padding positions.

The backbone runs on the right-padded batch; hidden states are then gathered at the positions
whose *next* token is a completion token, and only those rows go through the LM head (optionally in
chunks that are recomputed in backward, so at most ``chunk x vocab`` logits are ever alive).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from plumcode.training.data import Seq


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers ``*ForCausalLM`` under DDP / PEFT wrappers (PEFT injects LoRA in place)."""
    m = getattr(model, "module", model)
    if hasattr(m, "get_base_model"):
        m = m.get_base_model()
    return m


def collate(seqs: Sequence[Seq], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad; index tensors of scored positions (flattened ``b*T + t`` predicting ``t+1``)."""
    T = max(len(s.ids) for s in seqs)
    B = len(seqs)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    att = torch.zeros((B, T), dtype=torch.long)
    pos, tgt, owner = [], [], []
    for b, s in enumerate(seqs):
        n = len(s.ids)
        ids[b, :n] = torch.tensor(s.ids)
        att[b, :n] = 1
        start = max(s.n_prompt, 1)  # token 0 has no context to be predicted from
        pos.extend(b * T + t - 1 for t in range(start, n))
        tgt.extend(s.ids[start:n])
        owner.extend([b] * (n - start))
    return {"input_ids": ids, "attention_mask": att, "positions": torch.tensor(pos, dtype=torch.long),
            "targets": torch.tensor(tgt, dtype=torch.long), "owner": torch.tensor(owner, dtype=torch.long),
            "n_completion": torch.bincount(torch.tensor(owner, dtype=torch.long), minlength=B)}


def _token_logps(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                 softcap: float | None, scale: float) -> torch.Tensor:
    logits = F.linear(h, weight, bias).float()
    if scale != 1.0:
        logits = logits * scale
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)


class CompletionLogps(nn.Module):
    """``forward(batch) -> per-sequence summed completion log-probs``; wraps the policy so DDP sees one
    module forward per step (calling submodules directly would bypass its gradient hooks)."""

    def __init__(self, model: nn.Module, chunk: int = 0, checkpoint_chunks: bool = False):
        super().__init__()
        self.model = model
        self.chunk = chunk
        self.checkpoint_chunks = checkpoint_chunks

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor,
                targets: torch.Tensor, owner: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        lm = unwrap(self.model)
        backbone = getattr(lm, lm.base_model_prefix)
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        h = hidden.reshape(-1, hidden.size(-1)).index_select(0, positions.to(hidden.device))
        head = lm.get_output_embeddings()
        cfg = lm.config.get_text_config() if hasattr(lm.config, "get_text_config") else lm.config
        softcap = getattr(cfg, "final_logit_softcapping", None)
        scale = float(getattr(cfg, "logit_scale", None) or 1.0)
        tg = targets.to(hidden.device)
        if h.size(0) == 0:
            tok = h.sum(-1)  # keeps the graph connected for an all-empty batch
        elif not self.chunk or h.size(0) <= self.chunk:
            tok = _token_logps(h, head.weight, head.bias, tg, softcap, scale)
        else:
            parts = []
            for i in range(0, h.size(0), self.chunk):
                args = (h[i:i + self.chunk], head.weight, head.bias, tg[i:i + self.chunk], softcap, scale)
                if self.checkpoint_chunks and torch.is_grad_enabled():
                    parts.append(checkpoint(_token_logps, *args, use_reentrant=False))
                else:
                    parts.append(_token_logps(*args))
            tok = torch.cat(parts)
        out = torch.zeros(input_ids.size(0), device=tok.device, dtype=tok.dtype)
        return out.index_add(0, owner.to(tok.device), tok)
