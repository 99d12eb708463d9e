"""Our KTO/DPO losses equal TRL's own trainers' loss on the same batch, policy != reference."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from plumcode.io import load_jsonl
from plumcode.training.data import build_examples
from plumcode.training.logprobs import CompletionLogps, collate
from plumcode.training.losses import dpo_loss, kto_kl, kto_loss, with_sft
from plumcode.training.objectives import kl_seqs as _kl_seqs

trl = pytest.importorskip("trl")


def _models(model_dir: Path, noise: float = 0.05):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    pol = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a policy that differs from its reference, so log-ratios are not zero
        for p in pol.parameters():
            p.add_(noise * torch.randn(p.shape, generator=g))
    return pol.eval(), ref.eval(), tok


def _logps(model, seqs, pad_id):
    with torch.no_grad():
        return CompletionLogps(model)(**collate(seqs, pad_id))


@pytest.mark.parametrize("sft_weight", [0.0, 0.3])
def test_dpo_loss_equals_trl(tiny_model_dir, pref_files, tmp_path, sft_weight):
    """Plain sigmoid DPO, and with the chosen-NLL term (ours: sft_weight; TRL: loss_type sigmoid+sft)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    recs = load_jsonl(pref_files["paired"])[:4]
    pol, ref, tok = _models(tiny_model_dir)
    ex, _ = build_examples(recs, tok, "dpo", 1024)
    col = collate([e.seqs[0] for e in ex], tok.pad_token_id)
    with torch.no_grad():
        ch = CompletionLogps(pol)(**col)
    rj = _logps(pol, [e.seqs[1] for e in ex], tok.pad_token_id)
    rch = _logps(ref, [e.seqs[0] for e in ex], tok.pad_token_id)
    rrj = _logps(ref, [e.seqs[1] for e in ex], tok.pad_token_id)
    ours, m = with_sft(*dpo_loss(ch, rj, rch, rrj, beta=0.1), ch, col["n_completion"], sft_weight)
    assert abs(m["rewards/margins"]) > 1e-3  # non-trivial batch
    assert ("nll" in m) == bool(sft_weight)

    extra = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, sft_weight]} if sft_weight else {}
    args = DPOConfig(output_dir=str(tmp_path / "trl"), per_device_train_batch_size=4, beta=0.1, report_to=[],
                     use_cpu=True, max_length=1024, bf16=False, **extra)
    trainer = DPOTrainer(model=pol, ref_model=ref, args=args, train_dataset=Dataset.from_list(recs),
                         processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        theirs = trainer.compute_loss(trainer.model, batch)
    assert math.isclose(ours.item(), theirs.item(), rel_tol=1e-5, abs_tol=1e-6), (ours.item(), theirs.item())


def test_kto_loss_equals_trl(tiny_model_dir, pref_files, tmp_path):
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    recs = load_jsonl(pref_files["unpaired"])
    recs = [r for r in recs if r["label"]][:3] + [r for r in recs if not r["label"]][:3]
    recs = [recs[0], recs[3], recs[1], recs[4], recs[2], recs[5]]
    pol, ref, tok = _models(tiny_model_dir, noise=0.0)
    ex, _ = build_examples(recs, tok, "kto", 1024)
    seqs = [e.seqs[0] for e in ex]
    kls = _kl_seqs(ex, 1024)
    opt = torch.optim.Adam(pol.parameters(), lr=1e-3)
    for _ in range(3):  # make the policy likelier than the reference on these texts: KL > 0
        opt.zero_grad()
        (-CompletionLogps(pol)(**collate(seqs[:4] + kls, tok.pad_token_id)).mean()).backward()
        opt.step()
    lp, rlp = _logps(pol, seqs, tok.pad_token_id), _logps(ref, seqs, tok.pad_token_id)
    kl = kto_kl(_logps(pol, kls, tok.pad_token_id), _logps(ref, kls, tok.pad_token_id))
    labels = torch.tensor([e.label for e in ex])
    ours, m = kto_loss(lp, rlp, labels, kl, beta=0.1, desirable_weight=1.3, undesirable_weight=0.9)
    assert abs(m["rewards/margins"]) > 1e-3 and float(kl) > 0  # non-trivial batch, KL not clamped away

    args = KTOConfig(output_dir=str(tmp_path / "trl"), per_device_train_batch_size=6, beta=0.1, report_to=[],
                     use_cpu=True, bf16=False, max_length=1024, desirable_weight=1.3, undesirable_weight=0.9)
    trainer = KTOTrainer(model=pol, ref_model=ref, args=args, train_dataset=Dataset.from_list(recs),
                         processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        theirs = trainer.compute_loss(trainer.model, batch)
    assert trainer._metrics["eval"]["kl"][-1] == pytest.approx(float(kl), rel=1e-4, abs=1e-6)
    assert math.isclose(ours.item(), theirs.item(), rel_tol=1e-5, abs_tol=1e-6), (ours.item(), theirs.item())


def test_kto_with_sft_adds_the_desirable_nll_per_token():
    lp = torch.tensor([-10.0, -30.0, -20.0])
    ntok = torch.tensor([5, 10, 4])
    labels = torch.tensor([True, False, True])
    base, _ = kto_loss(lp, lp + 1.0, labels, torch.zeros(()), beta=0.1)
    loss, m = with_sft(base, {"loss": base.item()}, lp[labels], ntok[labels], 0.5)
    assert m["nll"] == pytest.approx(30.0 / 9) and loss.item() == pytest.approx(base.item() + 0.5 * 30.0 / 9)
    same, m0 = with_sft(base, {"loss": base.item()}, lp[labels], ntok[labels], 0.0)
    assert same is base and "nll" not in m0
    none, _ = with_sft(base, {}, lp[torch.zeros(3, dtype=torch.bool)], ntok[:0], 0.5)  # no desirable in batch
    assert none is base


def test_simpo_loss_equals_trl_cpo(tiny_model_dir, pref_files, tmp_path):
    """SimPO: TRL's CPOTrainer with loss_type='simpo' and cpo_alpha=0 (no NLL), on the same batch. CPO's
    legacy tokenizer appends an EOS after the templated answer, one token DPO/KTO (and we) do not add, so
    the formula is checked on CPO's own per-token-averaged log-probs (n_tokens = 1)."""
    from datasets import Dataset

    from plumcode.training.losses import simpo_loss

    try:
        from trl.experimental.cpo import CPOConfig, CPOTrainer
    except ImportError:  # older TRL: CPO at the top level
        from trl import CPOConfig, CPOTrainer

    recs = load_jsonl(pref_files["paired"])[:4]
    pol, _, tok = _models(tiny_model_dir)
    args = CPOConfig(output_dir=str(tmp_path / "trl"), per_device_train_batch_size=4, beta=2.0, loss_type="simpo",
                     cpo_alpha=0.0, simpo_gamma=0.8, report_to=[], use_cpu=True, bf16=False, max_length=1024)
    trainer = CPOTrainer(model=pol, args=args, train_dataset=Dataset.from_list(recs), processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        theirs = trainer.compute_loss(trainer.model, batch)
        ch, rj = trainer.concatenated_forward(trainer.model, batch)[:2]  # averaged per token (simpo)
    one = torch.ones_like(ch)
    ours, m = simpo_loss(ch, rj, one, one, beta=2.0, gamma=0.8)
    assert abs(m["rewards/margins"]) > 1e-3  # non-trivial batch
    assert math.isclose(ours.item(), theirs.item(), rel_tol=1e-5, abs_tol=1e-6), (ours.item(), theirs.item())
    # and our summed log-probs / completion tokens are that average on our own (EOS-less) tokens
    ex, _ = build_examples(recs, tok, "simpo", 1024)
    col = collate([e.seqs[0] for e in ex], tok.pad_token_id)
    with torch.no_grad():
        s = CompletionLogps(pol)(**col)
    full = _per_token_mean(pol, [e.seqs[0] for e in ex])
    assert torch.allclose(s / col["n_completion"], full, atol=1e-5)


def _per_token_mean(model, seqs):
    """Mean completion-token log-prob from the full logits, the plain way."""
    out = []
    with torch.no_grad():
        for sq in seqs:
            ids = torch.tensor([sq.ids])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            tgt = ids[0, 1:]
            tok_lp = logp.gather(-1, tgt[:, None]).squeeze(-1)[sq.n_prompt - 1:]
            out.append(tok_lp.mean())
    return torch.stack(out)
