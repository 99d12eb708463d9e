"""benchmarks/recipe_sweep.py: every setting is a valid config that differs from the base only in
preference/training fields (so it can fork the trunk), and online settings keep the sampling budget."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from plumcode.loop.config import load_config
from plumcode.loop.fork import _differences, shareable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sweep():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("recipe_sweep", ROOT / "benchmarks" / "recipe_sweep.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["recipe_sweep"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_settings_fork_the_trunk(sweep, tmp_path: Path) -> None:
    base = load_config(ROOT / "configs" / "recipe-sweep.yaml")
    assert [b.name for b in base.evaluation.benchmarks] == ["mbpp-dev"]  # selection never sees a final benchmark
    assert set(sweep.ORDER) == set(sweep.SETTINGS)
    for name in sweep.SETTINGS:
        cfg, take = sweep.setting_config(base, name)
        stages = shareable(tmp_path / name, cfg)
        assert [s.key for s in stages] == ["problems", "tests", "baseline/eval", "round-000/sample",
                                           "round-000/execute"]
        for s in stages:
            ignore = ("sampling.n",) if take else ()
            assert not _differences(base, cfg, s.depends or (), ignore=ignore), (name, s.key)
        if sweep.SETTINGS[name].rounds > 1:
            assert take * cfg.rounds == base.sampling.n and cfg.sampling.n == take
    with pytest.raises(ValueError, match="unknown setting"):
        sweep.setting_config(base, "nope")


def test_markdown_lists_rows(sweep) -> None:
    res = {"rows": [{"setting": "initial", "mbpp-dev": 40.0, "answers": {"mean_tokens": 90.0, "cut_at_limit": 1}},
                    {"setting": "kto-lr5e-6", "why": "w", "mbpp-dev": 44.0,
                     "ci95": {"delta": 4.0, "low": -2.0, "high": 10.0}, "churn": {"gained": 4, "lost": 2},
                     "answers": {"mean_tokens": 95.0, "cut_at_limit": 1}, "rounds": [{"pass_rate": 0.3}],
                     "chosen_logratio": [{"round": 0, "chosen_logratio_thirds": [0.0, -0.1, -0.2]}],
                     "health": [{"ok": True, "probe_growth": 0.05}]}],
           "status": {"kto-lr5e-6": "done", "kto-old": "pending"}}
    md = sweep.markdown(res, "cmd")
    assert "| kto-lr5e-6 | 44.0 | +4.0 [-2.0, +10.0] | +4 / -2 | 95 (1) | r0: +0.00 / -0.10 / -0.20 | +5% | 30.0% | ok |" in md
    assert "Not finished yet: kto-old" in md
