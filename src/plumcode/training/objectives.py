"""The objective registry: what each training objective learns from, whether it needs reference
log-probs, how one batch becomes a loss, and which preference files it can train on.

The trainer, ``plumcode train``, the preference stage (``strategy: auto``) and the loop read this
table instead of dispatching on the objective's name, so a new objective is one entry here plus its
loss function in :mod:`plumcode.training.losses`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from plumcode.io import DataError

if TYPE_CHECKING:
    from plumcode.training.config import TrainConfig
    from plumcode.training.data import Example, Seq

Data = Literal["paired", "unpaired", "desirable"]


@dataclass
class StepContext:
    """What a step function needs besides its batch: the policy (log-probs of completions, with
    grad), the precomputed reference log-probs, the config and the KTO class weights."""

    policy: Any
    ref: dict[str, list]
    cfg: TrainConfig
    weights: tuple[float, float]
    pad_id: int
    device: Any

    def logps(self, seqs: list[Seq]) -> tuple[Any, Any]:
        """Summed completion log-probs per sequence (with grad) and completion token counts."""
        from plumcode.training.logprobs import collate

        col = {k: v.to(self.device) for k, v in collate(seqs, self.pad_id).items()}
        lp = self.policy(**col)
        return lp, col["n_completion"].to(lp.device)

    def ref_logps(self, batch: list[Example], j: int, like: Any) -> Any:
        import torch

        return torch.tensor([self.ref["seq"][e.index][j] for e in batch], device=like.device, dtype=like.dtype)


StepFn = Callable[[StepContext, "list[Example]"], "tuple[Any, dict[str, float]]"]


@dataclass(frozen=True)
class Objective:
    name: str
    data: Data  # paired: (chosen, rejected) pairs; unpaired: labelled completions; desirable: passing ones
    reference: bool  # needs reference log-probs (computed once per round, before the first update)
    step: StepFn
    summary: str
    kl_pairs: bool = False  # needs KTO's mismatched (prompt, completion) KL sequences

    @property
    def preference_format(self) -> str:
        """What ``plumcode preferences`` writes for it under ``strategy: auto``."""
        return "paired" if self.data == "paired" else "unpaired"

    def untrainable(self, records: list[dict]) -> str | None:
        """Why these (well-formed) records cannot train this objective; None when they can."""
        if not records:
            return "no preference records: no problem had a sample with a verdict"
        paired = all("chosen" in r for r in records)
        if self.data == "paired":
            return None if paired else (f"no pairs: {self.name.upper()} needs paired records {{prompt, chosen, "
                                        "rejected}}, from problems with both a pass and a fail")
        if paired:  # unpaired objectives learn from pairs too (TRL's unpair_preference_dataset)
            return None
        labels = {bool(r.get("label")) for r in records}
        if self.data == "unpaired" and len(labels) < 2:
            return (f"one-sided data: all {len(records)} records are "
                    + ("desirable (passing)" if labels == {True} else "undesirable (failing)"))
        if self.data == "desirable" and True not in labels:
            return "no desirable (passing) records to fine-tune on"
        return None

    def check(self, records: list[dict], path: str | Path = "") -> str:
        """Refuse data this objective cannot learn from, before any model is loaded; returns the kind."""
        from plumcode.training.data import kind_of

        kind = kind_of(records, path)
        why = self.untrainable(records)
        if why:
            hint = {"paired": "rebuild with `plumcode preferences --format paired` or train with --objective kto",
                    "unpaired": "use --objective sft for passing-only data, or sample more per problem",
                    "desirable": "sample more per problem"}[self.data]
            raise DataError(f"{why} ({hint})", path)
        return kind


# -- step functions: one batch of examples -> (loss, metrics) -------------------------------------------

def kl_seqs(batch: list[Example], max_length: int) -> list[Seq]:
    """TRL's KTO KL pairs: completions rotated by one within the batch, (x_i, y_{i-1})."""
    from plumcode.training.data import _seq

    comps = [e.completion_ids for e in batch]
    comps = [comps[-1]] + comps[:-1]
    return [_seq(e.prompt_ids, c, max_length) for e, c in zip(batch, comps, strict=True)]


def _pair_logps(s: StepContext, batch: list[Example]) -> tuple[Any, Any, Any, Any]:
    n = len(batch)
    lp, ntok = s.logps([e.seqs[0] for e in batch] + [e.seqs[1] for e in batch])
    return lp[:n], lp[n:], ntok[:n], ntok[n:]


def _dpo(s: StepContext, batch: list[Example]) -> tuple[Any, dict[str, float]]:
    from plumcode.training.losses import dpo_loss, with_sft

    ch, rj, n_ch, _ = _pair_logps(s, batch)
    loss = dpo_loss(ch, rj, s.ref_logps(batch, 0, ch), s.ref_logps(batch, 1, ch), s.cfg.beta)
    return with_sft(*loss, ch, n_ch, s.cfg.sft_weight)


def _simpo(s: StepContext, batch: list[Example]) -> tuple[Any, dict[str, float]]:
    from plumcode.training.losses import simpo_loss, with_sft

    ch, rj, n_ch, n_rj = _pair_logps(s, batch)
    return with_sft(*simpo_loss(ch, rj, n_ch, n_rj, s.cfg.beta, s.cfg.simpo_gamma), ch, n_ch, s.cfg.sft_weight)


def _kto(s: StepContext, batch: list[Example]) -> tuple[Any, dict[str, float]]:
    import torch

    from plumcode.training.losses import kto_kl, kto_loss, with_sft

    lp, ntok = s.logps([e.seqs[0] for e in batch])
    kl_lp = ref_kl = None
    if s.cfg.kto_kl:
        with torch.no_grad():
            kl_lp = s.logps(kl_seqs(batch, s.cfg.max_length))[0].float()
        ref_kl = torch.tensor([s.ref["kl"][e.index] for e in batch], device=kl_lp.device)
    labels = torch.tensor([bool(e.label) for e in batch], device=lp.device)
    loss = kto_loss(lp, s.ref_logps(batch, 0, lp), labels, kto_kl(kl_lp, ref_kl), s.cfg.beta, *s.weights)
    return with_sft(*loss, lp[labels], ntok[labels], s.cfg.sft_weight)


def _sft(s: StepContext, batch: list[Example]) -> tuple[Any, dict[str, float]]:
    from plumcode.training.losses import sft_loss

    return sft_loss(*s.logps([e.seqs[0] for e in batch]))


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("kto", "unpaired", True, _kto, "KTO (PLUM's main objective): passing vs failing completions, "
              "unpaired", kl_pairs=True),
    Objective("dpo", "paired", True, _dpo, "DPO: a passing and a failing completion of the same prompt"),
    Objective("simpo", "paired", False, _simpo, "SimPO: reference-free, length-normalised pairs (TRL CPO "
              "loss_type='simpo', cpo_alpha=0); the average per-token log-prob cannot be raised by length"),
    Objective("sft", "desirable", False, _sft, "rejection-sampling fine-tuning: NLL of the passing completions"),
)}


def get(name: str) -> Objective:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}") from None
