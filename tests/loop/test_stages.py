"""The loop's own small pieces: policy specs, trainer specs, pass@k, decontamination, trainability."""

from __future__ import annotations

from math import comb
from pathlib import Path

import pytest

from plumcode.loop import stages
from plumcode.loop.runner import _untrainable
from plumcode.problems.schema import Problem


def test_with_checkpoint_and_training_spec(tmp_path: Path) -> None:
    ck = tmp_path / "round-000" / "checkpoint"
    assert stages.with_checkpoint("hf:/m", ck, lora=True, reload="auto") == f"hf:/m?adapter={ck.resolve()}"
    # a newer checkpoint replaces the adapter, other query parameters stay
    spec = stages.with_checkpoint(f"default?dtype=bf16&adapter={ck}", tmp_path / "b", lora=True, reload="auto")
    assert spec == f"default?dtype=bf16&adapter={(tmp_path / 'b').resolve()}"
    assert stages.with_checkpoint("hf:/m", ck, lora=False, reload="auto") == f"hf:{ck.resolve()}"
    assert stages.training_spec(f"hf:/m?adapter={ck}") == ("/m", str(ck))
    assert stages.training_spec("default") == ("default", None)
    with pytest.raises(ValueError, match="train_model"):
        stages.training_spec("openai:http://localhost:8000/v1#m")


@pytest.mark.parametrize("n,c,k", [(10, 3, 1), (10, 3, 5), (5, 0, 1), (5, 5, 1), (20, 4, 10), (1, 1, 1)])
def test_pass_at_k_is_the_unbiased_estimator(n: int, c: int, k: int) -> None:
    assert stages.pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


def test_ngram_decontamination() -> None:
    bench = [Problem(id="b/1", instruction="Write a function to find the longest common prefix of a list of "
                     "strings given as input")]
    train = [Problem(id="t/1", instruction="Please write a function to find the longest common prefix of a list "
                     "of strings given as input, thanks"),
             Problem(id="t/2", instruction="Write a function to reverse a string.")]
    kept, dropped = stages.ngram_overlap(train, bench, 13)
    assert [p.id for p in kept] == ["t/2"]
    assert dropped[0]["id"] == "t/1" and dropped[0]["matched"] == "b/1"
    kept, dropped = stages.ngram_overlap(train, bench, 20)  # the shared run is 16 words
    assert len(kept) == 2 and not dropped


def test_untrainable() -> None:
    pos = {"prompt": "p", "completion": "c", "label": True}
    neg = {"prompt": "p", "completion": "c", "label": False}
    assert _untrainable([], "kto") and _untrainable([pos, pos], "kto") and _untrainable([neg], "sft")
    assert _untrainable([pos, neg], "kto") is None and _untrainable([pos], "sft") is None
    assert _untrainable([{"prompt": "p", "chosen": "a", "rejected": "b"}], "dpo") is None
    assert _untrainable([pos, neg], "dpo")


def test_stage_options_are_checked_against_the_stage_config() -> None:
    from plumcode.preference import PreferenceConfig

    stages.check_options(PreferenceConfig, {"pairing": "best_worst"}, "preference")
    with pytest.raises(ValueError, match="preference.options: unknown field"):
        stages.check_options(PreferenceConfig, {"pairng": "best_worst"}, "preference")
    cfg = stages.build_config(PreferenceConfig, {"format": "paired", "not_a_field": 1}, what="preference")
    assert cfg.format == "paired"
