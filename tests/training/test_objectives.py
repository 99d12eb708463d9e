"""The objective registry: every objective trains end to end, and each says what data it can learn from."""

from __future__ import annotations

import pytest

from plumcode.io import DataError, load_jsonl
from plumcode.training import TrainConfig, train
from plumcode.training.objectives import OBJECTIVES, get


def test_registry_entries() -> None:
    assert set(OBJECTIVES) >= {"kto", "dpo", "simpo", "sft"}
    assert get("simpo").data == "paired" and not get("simpo").reference
    assert get("kto").preference_format == "unpaired" and get("dpo").preference_format == "paired"
    with pytest.raises(ValueError, match="unknown objective 'orpo'; choose from kto, dpo, simpo, sft"):
        get("orpo")
    pos, neg = {"prompt": "p", "completion": "a", "label": True}, {"prompt": "p", "completion": "b", "label": False}
    assert get("simpo").untrainable([pos, neg]).startswith("no pairs: SIMPO needs paired records")
    with pytest.raises(DataError, match="one-sided data"):
        get("kto").check([pos, pos])


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_every_objective_trains(objective, tiny_model_dir, pref_files, tmp_path) -> None:
    data = pref_files["paired"] if get(objective).data == "paired" else pref_files["unpaired"]
    cfg = TrainConfig(objective=objective, learning_rate=5e-3, batch_size=4, grad_accum=1, max_steps=2,
                      warmup_ratio=0.0, device="cpu", lora_r=4, lora_alpha=4, probe_prompts=0)
    res = train(data, str(tiny_model_dir), cfg, tmp_path / "ck", echo=None)
    assert res.steps == 2 and res.adapter_dir
    assert bool(list(data.parent.glob(f"{data.stem}.ref-*.json"))) == get(objective).reference or objective != "simpo"
    log = list(load_jsonl(tmp_path / "ck" / "train_log.jsonl"))
    assert len(log) == 2 and all(r["loss"] == r["loss"] for r in log)  # finite (not NaN)
