"""Samples cut at the token limit are never trained with a closing token they did not produce, and the
training health check fires on a drifting log and stays quiet on a flat one."""

from __future__ import annotations

from pathlib import Path

import pytest

from plumcode.io import atomic_write_jsonl, load_jsonl
from plumcode.preference import PreferenceConfig, build_preferences
from plumcode.training import TrainConfig, train
from plumcode.training.data import build_examples
from plumcode.training.health import check, chosen_logratio

PROMPT = [{"role": "user", "content": "Write add."}]


def _sample(k: int, code: str, finish: str) -> dict:
    return {"problem_id": "P", "sample_id": f"P#{k}", "code": code, "completion": f"```python\n{code}",
            "prompt": PROMPT, "finish_reason": finish}


def _verdict(k: int, passed: bool) -> dict:
    return {"problem_id": "P", "sample_id": f"P#{k}", "passed": passed, "status": "pass" if passed else "fail",
            "n_passed": int(passed), "n_tests": 1}


SAMPLES = [_sample(0, "def add(a, b):\n    return a + b\n", "stop"),
           _sample(1, "def add(a, b):\n    return a - b\n", "stop"),
           _sample(2, "def add(a, b):\n    x = [a, b\n    for i in range(10", "length")]
VERDICTS = [_verdict(0, True), _verdict(1, False), _verdict(2, False)]


def test_truncated_samples_are_dropped_by_default_and_counted() -> None:
    recs, summ = build_preferences(SAMPLES, VERDICTS, PreferenceConfig())
    assert {r["sample_id"] for r in recs} == {"P#0", "P#1"}
    assert summ.truncated == 1 and summ.dropped_truncated == 1
    recs, summ = build_preferences(SAMPLES, VERDICTS, PreferenceConfig(truncated="keep"))
    assert len(recs) == 3 and not any(r["truncated"] for r in recs) and summ.dropped_truncated == 0


def test_open_truncated_record_gets_no_closing_token(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    end = tok.convert_tokens_to_ids("<|im_end|>")
    recs, _ = build_preferences(SAMPLES, VERDICTS, PreferenceConfig(truncated="open"))
    by_id = {r["sample_id"]: r for r in recs}
    assert by_id["P#2"]["truncated"] and not by_id["P#0"]["truncated"]
    examples, _ = build_examples(recs, tok, "kto", 1024)
    comp = {recs[e.index]["sample_id"]: e.completion_ids for e in examples}
    assert end in comp["P#0"] and end in comp["P#1"]  # finished answers keep their end-of-turn
    assert end not in comp["P#2"]  # the cut one does not get one
    # and it is exactly the answer text's tokens: nothing else was cut away
    text = by_id["P#2"]["completion"][0]["content"]
    assert tok.decode(comp["P#2"]).endswith(text[-10:])
    # paired records carry the flag per side
    pairs, _ = build_preferences(SAMPLES, VERDICTS, PreferenceConfig(format="paired", truncated="open"))
    cut = [p for p in pairs if p["rejected_truncated"]]
    assert cut
    ex, _ = build_examples(cut, tok, "dpo", 1024)
    assert end in ex[0].seqs[0].ids[ex[0].seqs[0].n_prompt:] and end not in ex[0].seqs[1].ids[ex[0].seqs[1].n_prompt:]


def _log(chosen: list[float], beta: float = 0.1) -> list[dict]:
    return [{"step": i + 1, "rewards/chosen": beta * c} for i, c in enumerate(chosen)]


def test_health_fires_on_drift_and_stays_quiet_when_flat() -> None:
    drifting = _log([-0.1 * i for i in range(40)])  # chosen log-prob falling to -3.9 nats
    flat = _log([0.05 * ((-1) ** i) for i in range(40)])
    assert chosen_logratio(drifting, 0.1) == pytest.approx(-3.8, abs=0.05)
    bad = check(drifting, 0.1, logp_drop=2.0, probe_before=100.0, probe_after=140.0, growth=0.25)
    assert len(bad.warnings) == 2 and not bad.to_json()["ok"]
    good = check(flat, 0.1, logp_drop=2.0, probe_before=100.0, probe_after=110.0, growth=0.25)
    assert good.warnings == [] and good.to_json()["ok"]


def test_trainer_reports_health(tiny_model_dir: Path, pref_files, tmp_path: Path) -> None:
    kto = pref_files["unpaired"]
    cfg = TrainConfig(learning_rate=5e-3, batch_size=8, max_steps=4, warmup_ratio=0.0, scheduler="constant",
                      device="cpu", lora_r=8, lora_alpha=16, probe_prompts=2, probe_max_tokens=8)
    res = train(kto, str(tiny_model_dir), cfg, tmp_path / "ck", echo=None)
    h = res.health
    assert h["probe_tokens_before"] is not None and h["probe_tokens_after"] is not None
    assert h["chosen_logratio"] is not None and "ok" in h


def test_anchored_reference_uses_the_base_model(tiny_model_dir: Path, pref_files, tmp_path: Path) -> None:
    """Continuing an adapter: reference='base' scores the reference with the adapter switched off."""
    import json

    kto = pref_files["unpaired"]
    base = dict(learning_rate=5e-2, batch_size=8, max_steps=3, warmup_ratio=0.0, scheduler="constant",
                device="cpu", lora_r=8, lora_alpha=16, probe_prompts=0)
    first = train(kto, str(tiny_model_dir), TrainConfig(**base), tmp_path / "r0", echo=None)
    refs = {}
    for mode in ("start", "base"):
        d = tmp_path / mode
        d.mkdir()
        p = d / "prefs.jsonl"
        atomic_write_jsonl(p, list(load_jsonl(kto)))
        train(p, str(tiny_model_dir), TrainConfig(**base, reference=mode, max_length=1024), d / "ck",
              adapter=first.adapter_dir, echo=None)
        refs[mode] = [x for row in json.loads(next(d.glob("prefs.ref-*.json")).read_text())["seq"] for x in row]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    p = fresh / "prefs.jsonl"
    atomic_write_jsonl(p, list(load_jsonl(kto)))
    train(p, str(tiny_model_dir), TrainConfig(**base, max_length=1024), fresh / "ck", echo=None)
    base_ref = [x for row in json.loads(next(fresh.glob("prefs.ref-*.json")).read_text())["seq"] for x in row]
    assert refs["base"] == pytest.approx(base_ref, abs=1e-4)  # the base model's log-probs
    assert refs["start"] != pytest.approx(base_ref, abs=1e-4)  # the trained adapter's
