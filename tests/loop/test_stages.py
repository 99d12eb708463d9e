"""The loop's own small pieces: policy specs, trainer specs, pass@k, decontamination, trainability."""

from __future__ import annotations

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


def test_decontamination_is_the_problems_library() -> None:
    bench = [Problem(id="b/1", instruction="Write a function to find the longest common prefix of a list of "
                     "strings given as input")]
    train = [Problem(id="t/1", instruction="Please write a function to find the longest common prefix of a list "
                     "of strings given as input, thanks"),
             Problem(id="t/2", instruction="Write a function to reverse a string.")]
    kept, dropped = stages.decontaminate(train, bench, 13)
    assert [p.id for p in kept] == ["t/2"]
    (d,) = dropped  # the record the loop writes to decontamination.json
    assert d["id"] == "t/1" and d["benchmark_id"] == "b/1" and d["reason"].startswith("13-gram in instruction")
    assert d["instruction"].startswith("Please write a function")
    kept, dropped = stages.decontaminate(train, bench, 20)  # the shared run is 16 words
    assert len(kept) == 2 and not dropped
    # code is compared with 30-grams only: a shared 20-word helper is not contamination, a copied
    # 40-word solution is
    short = "def f(x):\n    return sorted(set(x), key=lambda y: (len(y), y), reverse=True)[0:3]\n"
    long = short + "".join(f"def g{i}(v):\n    return f(v) + [{i}]\n" for i in range(3))
    for code, n_dropped in ((short, 0), (long, 1)):
        kept, dropped = stages.decontaminate([Problem(id="t/3", instruction="Sort.", reference_solution=code)],
                                             [Problem(id="b/2", instruction="Other.", reference_solution=code)], 13)
        assert len(dropped) == n_dropped and len(kept) == 1 - n_dropped
    assert "30-gram in code" in dropped[0]["reason"]


def test_load_benchmark_slices_through_the_public_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip
    import json

    monkeypatch.setenv("PLUMCODE_CACHE_DIR", str(tmp_path / "cache"))
    recs = [{"task_id": f"Mbpp/{900 + i}", "prompt": f'"""\nAdd {i}.\nassert add{i}(1) == {1 + i}\n"""\n',
             "entry_point": f"add{i}", "canonical_solution": f"def add{i}(x):\n    return x + {i}\n",
             "base_input": [[1]], "plus_input": [[2], [3]], "atol": 0} for i in range(3)]
    f = tmp_path / "mbppplus.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    texts = stages.load_benchmark("mbpp+", str(f), with_tests=False)
    assert [p.id for p in texts] == ["Mbpp/900", "Mbpp/901", "Mbpp/902"] and not any(p.tests for p in texts)
    assert not (tmp_path / "cache").exists()  # no expected output computed for decontamination
    sl = stages.load_benchmark("mbpp+", str(f), limit=2)
    assert [p.id for p in sl] == ["Mbpp/900", "Mbpp/901"]
    assert [t.expected for t in sl[1].tests] == [2, 3, 4]
    (c,) = (tmp_path / "cache" / "expected").glob("mbpp-*.json.gz")
    assert set(json.loads(gzip.decompress(c.read_bytes()))["tasks"]) == {"Mbpp/900", "Mbpp/901"}
    # a user's own evaluation set: any name with a Problem JSONL path
    stages.write_problems(tmp_path / "mine.jsonl", [Problem(id=f"m/{i}", instruction="x") for i in range(4)])
    assert [p.id for p in stages.load_benchmark("my-set", str(tmp_path / "mine.jsonl"), limit=3)] == [
        "m/0", "m/1", "m/2"]


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
