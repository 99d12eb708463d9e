"""KTO, DPO, SimPO and SFT losses on per-sequence completion log-probs (TRL 1.x formulas).

Pure tensor functions so they can be checked against TRL on a hand-computed batch. Each returns
``(loss, metrics)``; metrics are floats for logging (rewards are ``beta * log-ratio``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, ref_chosen_logps: torch.Tensor,
             ref_rejected_logps: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Sigmoid DPO (TRL ``loss_type="sigmoid"``): ``-logsigmoid(beta * (dlogr_chosen - dlogr_rejected))``."""
    chosen_lr = chosen_logps - ref_chosen_logps
    rejected_lr = rejected_logps - ref_rejected_logps
    loss = -F.logsigmoid(beta * (chosen_lr - rejected_lr)).mean()
    rc, rr = beta * chosen_lr.detach(), beta * rejected_lr.detach()
    return loss, {
        "loss": loss.item(), "rewards/chosen": rc.mean().item(), "rewards/rejected": rr.mean().item(),
        "rewards/margins": (rc - rr).mean().item(), "rewards/accuracies": (rc > rr).float().mean().item(),
        "logps/chosen": chosen_logps.detach().mean().item(), "logps/rejected": rejected_logps.detach().mean().item(),
    }


def simpo_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, chosen_tokens: torch.Tensor,
               rejected_tokens: torch.Tensor, beta: float, gamma: float) -> tuple[torch.Tensor, dict[str, float]]:
    """SimPO (TRL CPO ``loss_type="simpo"``, ``cpo_alpha=0``): ``-logsigmoid(beta * (avg_c - avg_r) - gamma)``
    on the average per-token log-probs, no reference. Rewards are ``beta`` times the averages."""
    ac = chosen_logps / chosen_tokens.clamp(min=1)
    ar = rejected_logps / rejected_tokens.clamp(min=1)
    loss = -F.logsigmoid(beta * (ac - ar - gamma / beta)).mean()
    rc, rr = beta * ac.detach(), beta * ar.detach()
    return loss, {
        "loss": loss.item(), "rewards/chosen": rc.mean().item(), "rewards/rejected": rr.mean().item(),
        "rewards/margins": (rc - rr).mean().item(), "rewards/accuracies": (rc > rr).float().mean().item(),
        "logps/chosen": ac.detach().mean().item(), "logps/rejected": ar.detach().mean().item(),
    }


def kto_kl(kl_logps: torch.Tensor | None, ref_kl_logps: torch.Tensor | None) -> torch.Tensor:
    """KTO's reference point: batch mean of mismatched-pair log-ratios, clamped at 0, no gradient."""
    if kl_logps is None or ref_kl_logps is None:
        return torch.zeros(())
    return (kl_logps - ref_kl_logps).mean().detach().clamp(min=0)


def kto_loss(logps: torch.Tensor, ref_logps: torch.Tensor, labels: torch.Tensor, kl: torch.Tensor, beta: float,
             desirable_weight: float = 1.0, undesirable_weight: float = 1.0
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """KTO (TRL ``loss_type="kto"``, KTO paper Eq. 7): per example ``1 - sigmoid(beta * (r - z0))`` for
    desirable, ``1 - sigmoid(beta * (z0 - r))`` for undesirable, class-weighted, averaged over the batch."""
    lab = labels.to(torch.bool)
    lr = logps - ref_logps
    kl = kl.to(lr.device, lr.dtype)
    chosen_losses = 1 - torch.sigmoid(beta * (lr[lab] - kl))
    rejected_losses = 1 - torch.sigmoid(beta * (kl - lr[~lab]))
    loss = torch.cat((desirable_weight * chosen_losses, undesirable_weight * rejected_losses)).nanmean()
    rewards = beta * lr.detach()
    m: dict[str, float] = {"loss": loss.item(), "kl": float(kl)}
    if lab.any():
        m["rewards/chosen"] = rewards[lab].mean().item()
        m["logps/chosen"] = logps.detach()[lab].mean().item()
    if (~lab).any():
        m["rewards/rejected"] = rewards[~lab].mean().item()
        m["logps/rejected"] = logps.detach()[~lab].mean().item()
    if lab.any() and (~lab).any():
        m["rewards/margins"] = m["rewards/chosen"] - m["rewards/rejected"]
    return loss, m


def with_sft(loss: torch.Tensor, metrics: dict[str, float], token_logps_sum: torch.Tensor, n_tokens: torch.Tensor,
             weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """``loss + weight * NLL`` of the given (desirable/chosen) completions, mean per token as in TRL's
    ``"sft"`` DPO loss term; no change when ``weight`` is 0 or there is no such completion."""
    if not weight or token_logps_sum.numel() == 0:
        return loss, metrics
    nll, _ = sft_loss(token_logps_sum, n_tokens)
    loss = loss + weight * nll
    return loss, {**metrics, "loss": loss.item(), "nll": nll.item()}


def sft_loss(token_logps_sum: torch.Tensor, n_tokens: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Rejection-sampling fine-tuning: mean negative log-likelihood per completion token."""
    loss = -token_logps_sum.sum() / n_tokens.sum().clamp(min=1)
    return loss, {"loss": loss.item(), "logps/chosen": (token_logps_sum.detach() / n_tokens.clamp(min=1)).mean().item()}
