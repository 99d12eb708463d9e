"""Run config: validation, --set overrides, the embedded demo config equals configs/demo.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plumcode.loop.config import RunConfig, apply_overrides, dump_config, explain, load_config
from plumcode.loop.demo import DEMO_CONFIG, demo_config

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_overrides(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("rounds: 2\nsampling: {n: 3}\n")
    cfg = load_config(p, ["sampling.n=5", "training.objective=dpo", "evaluation.k=[1, 5]",
                          "policy.lora.enabled=false", "problems.limit=null"])
    assert cfg.rounds == 2 and cfg.sampling.n == 5 and cfg.training.objective == "dpo"
    assert cfg.evaluation.k == [1, 5] and cfg.policy.lora.enabled is False and cfg.problems.limit is None
    # the dump round-trips to the same config
    q = tmp_path / "resolved.yaml"
    q.write_text(dump_config(cfg))
    assert load_config(q) == cfg


@pytest.mark.parametrize("text,needle", [
    ("samplng: {n: 3}\n", "samplng"),                      # typo in a section name
    ("sampling: {nn: 3}\n", "sampling.nn"),                # typo in a field
    ("training: {objective: ppo}\n", "training.objective"),
    ("sampling: {n: 0}\n", "sampling.n"),
    ("- a\n- b\n", "mapping"),
])
def test_invalid_configs_name_the_field(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        load_config(p)


def test_override_errors() -> None:
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["sampling.n"])
    with pytest.raises(ValueError, match="not a section"):
        apply_overrides({"rounds": 1}, ["rounds.x=2"])
    assert apply_overrides({}, ["a.b.c=x y"]) == {"a": {"b": {"c": "x y"}}}


def test_every_field_is_documented() -> None:
    lines = explain(RunConfig)
    assert any(line.startswith("sampling.n = 8") for line in lines)
    assert all("#" in line and line.split("#", 1)[1].strip() for line in lines if " = " in line)


def test_demo_config_matches_shipped_yaml() -> None:
    shipped = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    assert shipped == DEMO_CONFIG
    cfg = demo_config(problems=3, n=2, rounds=2, eval_limit=5, overrides=["training.objective=dpo"])
    assert (cfg.problems.limit, cfg.sampling.n, cfg.rounds) == (3, 2, 2)
    assert {b.limit for b in cfg.evaluation.benchmarks} == {5}
    assert cfg.training.objective == "dpo"


def test_example_configs_validate() -> None:
    for p in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(p)


def test_cli_explain_and_refuses_a_run_dir_with_another_config(tmp_path: Path) -> None:
    from plumcode.cli import main

    assert main(["run", "--explain"]) == 0
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(RunConfig(rounds=3)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("rounds: 2\n")
    assert main(["run", str(cfg), "--out", str(run)]) == 2  # would mix two configurations
    assert main(["run", "--resume", str(run), "--set", "sampling.n=3"]) == 2  # only rounds may change
    assert main(["run", "--resume", str(tmp_path / "nope")]) == 2
