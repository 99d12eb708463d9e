"""Training on the tiny model: margins move the right way, checkpoints load, resume is exact,
bad inputs fail before compute, and the memory-saving path computes the same numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from plumcode.io import DataError, atomic_write_jsonl, load_jsonl
from plumcode.training import TrainConfig, train
from plumcode.training.data import Seq, build_examples
from plumcode.training.logprobs import CompletionLogps, collate


def _cfg(**kw) -> TrainConfig:
    base = dict(learning_rate=5e-3, batch_size=8, grad_accum=1, max_steps=8, warmup_ratio=0.0, scheduler="constant",
                device="cpu", lora_r=8, lora_alpha=16, probe_prompts=0)
    return TrainConfig(**(base | kw))


def _load(model_dir: Path, adapter: Path | None = None):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        m = PeftModel.from_pretrained(m, str(adapter))
    return m.eval(), tok


def _label_margin(pref: Path, base_dir: Path, adapter: Path, objective: str = "kto") -> float:
    """mean log-ratio (policy vs base) of desirable completions minus that of undesirable ones."""
    base, tok = _load(base_dir)
    pol, _ = _load(base_dir, adapter)
    ex, _ = build_examples(load_jsonl(pref), tok, "kto", 1024)
    seqs = [e.seqs[0] for e in ex]
    with torch.no_grad():
        lr = CompletionLogps(pol)(**collate(seqs, tok.pad_token_id)) - \
            CompletionLogps(base)(**collate(seqs, tok.pad_token_id))
    lab = torch.tensor([bool(e.label) for e in ex])
    return (lr[lab].mean() - lr[~lab].mean()).item()


@pytest.mark.parametrize("objective", ["kto", "dpo"])
def test_few_steps_raise_desirable_undesirable_margin(objective, tiny_model_dir, pref_files, tmp_path):
    pref = pref_files["paired" if objective == "dpo" else "unpaired"]
    res = train(pref, str(tiny_model_dir), _cfg(objective=objective), tmp_path / "ck", echo=None)
    assert res.steps == 8 and res.adapter_dir
    margin = _label_margin(pref_files["unpaired"], tiny_model_dir, Path(res.adapter_dir))
    assert margin > 1.0, margin  # log-prob units; 0 at the start
    hist = res.history
    assert all("rewards/margins" in h for h in hist[-3:])
    assert sum(h["rewards/margins"] for h in hist[-3:]) / 3 > hist[0]["rewards/margins"]
    log = [json.loads(x) for x in Path(res.log_path).read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 9)) and "loss" in log[0]


def test_sft_raises_likelihood_of_passing_samples(tiny_model_dir, pref_files, tmp_path):
    res = train(pref_files["unpaired"], str(tiny_model_dir), _cfg(objective="sft", max_steps=4), tmp_path / "ck",
                echo=None)
    base, tok = _load(tiny_model_dir)
    pol, _ = _load(tiny_model_dir, Path(res.adapter_dir))
    ex, _ = build_examples(load_jsonl(pref_files["unpaired"]), tok, "sft", 1024)
    col = collate([e.seqs[0] for e in ex], tok.pad_token_id)
    with torch.no_grad():
        gain = (CompletionLogps(pol)(**col) - CompletionLogps(base)(**col)).mean().item()
    assert gain > 1.0 and res.history[-1]["loss"] < res.history[0]["loss"]


def test_checkpoints_load_in_transformers_and_peft(tiny_model_dir, pref_files, tmp_path):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    res = train(pref_files["unpaired"], str(tiny_model_dir), _cfg(max_steps=3, save_merged=True), tmp_path / "ck",
                echo=None)
    ids = torch.tensor([[1, 5, 9, 14, 30]])
    peft_model = AutoPeftModelForCausalLM.from_pretrained(res.adapter_dir).eval()  # base found via adapter_config
    merged = AutoModelForCausalLM.from_pretrained(res.model_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        a, b, c = peft_model(ids).logits, merged(ids).logits, base(ids).logits
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(a, c, atol=1e-4)
    meta = json.loads((tmp_path / "ck" / "plumcode_checkpoint.json").read_text())
    assert meta["adapter"] == "adapter" and meta["model"] == "model" and meta["step"] == 3
    # a finished checkpoint is the next round's policy: `--model ck/` loads merged weights
    from plumcode.training.model import load_policy

    m2, _, info = load_policy(str(tmp_path / "ck"))
    with torch.no_grad():
        assert torch.allclose(m2.eval()(ids).logits, b, atol=1e-5)


def test_full_finetuning_checkpoint(tiny_model_dir, pref_files, tmp_path):
    from transformers import AutoModelForCausalLM

    res = train(pref_files["paired"], str(tiny_model_dir), _cfg(objective="dpo", lora=False, max_steps=3,
                                                                learning_rate=1e-3), tmp_path / "ck", echo=None)
    assert res.adapter_dir is None and res.model_dir
    m = AutoModelForCausalLM.from_pretrained(res.model_dir)
    b = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.equal(m.model.layers[0].mlp.up_proj.weight, b.model.layers[0].mlp.up_proj.weight)


def test_interrupted_run_resumes_to_identical_weights(tiny_model_dir, pref_files, tmp_path):
    from safetensors.torch import load_file

    cfg = _cfg(max_steps=4, save_every=2, scheduler="cosine", warmup_ratio=0.25)
    straight = train(pref_files["unpaired"], str(tiny_model_dir), cfg, tmp_path / "a", echo=None)

    def crash_at_step_5(msg: str) -> None:
        if msg.startswith("step 3/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(pref_files["unpaired"], str(tiny_model_dir), cfg, tmp_path / "b", echo=crash_at_step_5)
    assert (tmp_path / "b" / "checkpoint-2" / "trainer_state.pt").is_file()
    msgs: list[str] = []
    resumed = train(pref_files["unpaired"], str(tiny_model_dir), cfg, tmp_path / "b", echo=msgs.append)
    assert resumed.resumed_from_step == 2 and resumed.steps == 4
    assert not any(m.startswith("reference log-probs") for m in msgs)  # cached beside the data
    wa = load_file(str(Path(straight.adapter_dir) / "adapter_model.safetensors"))
    wb = load_file(str(Path(resumed.adapter_dir) / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    again = train(pref_files["unpaired"], str(tiny_model_dir), cfg, tmp_path / "b", echo=msgs.append)
    assert "nothing to do" in msgs[-1] and again.steps == 4


def _no_ref_files(pref: Path) -> bool:
    return not list(pref.parent.glob("*.ref-*.json"))


def test_bad_inputs_fail_before_compute(tiny_model_dir, other_tiny_model_dir, pref_files, tmp_path):
    missing_model = str(tmp_path / "no-such-model")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        train(empty, missing_model, _cfg(), tmp_path / "x", echo=None)
    recs = load_jsonl(pref_files["unpaired"])
    one = tmp_path / "one.jsonl"
    atomic_write_jsonl(one, [r for r in recs if r["label"]])
    with pytest.raises(DataError, match="one-sided"):
        train(one, missing_model, _cfg(objective="kto"), tmp_path / "x", echo=None)
    with pytest.raises(DataError, match="DPO needs paired"):
        train(pref_files["unpaired"], missing_model, _cfg(objective="dpo"), tmp_path / "x", echo=None)
    assert _no_ref_files(pref_files["unpaired"])

    # tokenizer from another (bigger) vocabulary than the model's embedding
    from plumcode.testing.tiny import build_tiny_model

    small = build_tiny_model(tmp_path / "small", vocab_size=300)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / f, small / f)
    with pytest.raises(ValueError, match="model/tokenizer mismatch"):
        train(pref_files["unpaired"], str(small), _cfg(), tmp_path / "x", echo=None)

    # a checkpoint (resume state / adapter) trained from another base model
    res = train(pref_files["unpaired"], str(tiny_model_dir), _cfg(max_steps=2, save_every=1), tmp_path / "ck",
                echo=None)
    for f in pref_files["unpaired"].parent.glob("*.ref-*.json"):
        f.unlink()
    with pytest.raises(ValueError, match="different base"):
        train(pref_files["unpaired"], str(other_tiny_model_dir), _cfg(max_steps=2), tmp_path / "ck", echo=None)
    with pytest.raises(ValueError, match="different base"):
        train(pref_files["unpaired"], str(other_tiny_model_dir), _cfg(max_steps=2), tmp_path / "y",
              adapter=res.adapter_dir, echo=None)
    assert _no_ref_files(pref_files["unpaired"])


def test_completion_logps_match_full_logits_and_memory_saving_path(tiny_model_dir, pref_files):
    model, tok = _load(tiny_model_dir)
    ex, _ = build_examples(load_jsonl(pref_files["paired"]), tok, "dpo", 1024)
    seqs = [s for e in ex[:4] for s in e.seqs] + [Seq([1, 7, 9], 0)]
    col = collate(seqs, tok.pad_token_id)
    fast = CompletionLogps(model)(**col)
    with torch.no_grad():
        for i, s in enumerate(seqs):
            lp = model(input_ids=torch.tensor([s.ids])).logits[0].double().log_softmax(-1)
            want = sum(lp[t - 1, s.ids[t]].item() for t in range(max(1, s.n_prompt), len(s.ids)))
            assert fast[i].item() == pytest.approx(want, abs=1e-3)
    # chunked + recomputed lm head: same values and same gradients
    fast.sum().backward()
    g_fast = model.model.layers[0].self_attn.q_proj.weight.grad.clone()
    model.zero_grad()
    saving = CompletionLogps(model, chunk=7, checkpoint_chunks=True)(**col)
    saving.sum().backward()
    assert torch.allclose(fast, saving, atol=1e-4)
    assert torch.allclose(g_fast, model.model.layers[0].self_attn.q_proj.weight.grad, atol=1e-4)


def test_memory_saving_training_matches_fast_training(tiny_model_dir, pref_files, tmp_path):
    a = train(pref_files["paired"], str(tiny_model_dir), _cfg(objective="dpo", max_steps=2), tmp_path / "a", echo=None)
    b = train(pref_files["paired"], str(tiny_model_dir), _cfg(objective="dpo", max_steps=2, memory_saving=True,
                                                              logits_chunk=16), tmp_path / "b", echo=None)
    assert [h["loss"] for h in a.history] == pytest.approx([h["loss"] for h in b.history], abs=1e-4)


def test_gradient_accumulation_equals_the_big_batch(tiny_model_dir, pref_files, tmp_path):
    """bs=4 x grad_accum=2 is one optimizer step on the same 8 pairs as bs=8: same loss, same update
    (accelerate owns the accumulation, so DeepSpeed's engine steps only at the boundary too)."""
    recs = load_jsonl(pref_files["paired"])
    assert len(recs) >= 8
    pref = tmp_path / "eight.jsonl"
    atomic_write_jsonl(pref, recs[:8])
    a = train(pref, str(tiny_model_dir), _cfg(objective="dpo", max_steps=1, batch_size=8), tmp_path / "a", echo=None)
    b = train(pref, str(tiny_model_dir), _cfg(objective="dpo", max_steps=1, batch_size=4, grad_accum=2),
              tmp_path / "b", echo=None)
    assert a.steps == b.steps == 1
    assert a.history[0]["loss"] == pytest.approx(b.history[0]["loss"], abs=1e-5)
    assert a.history[0]["grad_norm"] == pytest.approx(b.history[0]["grad_norm"], rel=1e-4)
    from safetensors.torch import load_file

    wa = load_file(str(Path(a.adapter_dir) / "adapter_model.safetensors"))
    wb = load_file(str(Path(b.adapter_dir) / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        # Adam's first step is ~lr * sign(g): summation-order noise in near-zero g shows at ~1e-5
        torch.testing.assert_close(wa[k], wb[k], atol=5e-5, rtol=1e-3)
