"""benchmarks/plum_gain.py end to end on a tiny model: a trunk, every arm forked from it, a sitting
that runs out of time and a second one that finishes, and the results file with paired CIs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from plumcode.io import load_jsonl
from plumcode.loop.state import RunState
from plumcode.problems.schema import Problem, TestCase, write_problems

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ADD = "def add(a, b):\n    return a + b\n"


def _script():
    spec = importlib.util.spec_from_file_location("plum_gain", ROOT / "benchmarks" / "plum_gain.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["plum_gain"] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _problems() -> tuple[list[Problem], list[Problem]]:
    train = [Problem(id=f"t/{i}", instruction=f"Write a function add(a, b) that returns the sum of a and b ({w}).",
                     entry_point="add", reference_solution=ADD) for i, w in enumerate(("ints", "floats", "any"))]
    bench = [Problem(id=f"b/{i}", instruction=f"Write a function add(a, b) returning a + b. Case {i}.",
                     entry_point="add", reference_solution=ADD,
                     tests=[TestCase("assert", code=f"assert add({i}, 2) == {i + 2}\n")]) for i in range(4)]
    return train, bench


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_coder import tiny_coder_for_run

    return tiny_coder_for_run(tmp_path_factory.mktemp("tiny-coder"), *_problems(), 3)


def test_experiment_sittings_arms_and_results(tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture) -> None:
    train, bench = _problems()
    write_problems(tmp_path / "train.jsonl", train)
    write_problems(tmp_path / "bench.jsonl", bench)
    (tmp_path / "base.yaml").write_text(f"""
name: g
seed: 0
problems: {{source: {tmp_path / 'train.jsonl'}, decontaminate: false}}
testgen: {{model: policy, max_tokens: 72, n_tests: 3, max_tests: 4, validation: [reference]}}
policy: {{model: "hf:{tiny}", lora: {{r: 4, alpha: 8}}}}
sampling: {{n: 4, temperature: 1.3, max_tokens: 72}}
training: {{objective: kto, epochs: 1, batch_size: 4, grad_accum: 1, learning_rate: 1.0e-3, max_length: 256,
           options: {{probe_prompts: 2, probe_max_tokens: 8}}}}
evaluation: {{benchmarks: [{{name: tiny-bench, path: {tmp_path / 'bench.jsonl'}}}], max_tokens: 72, rounds: last}}
sandbox: {{timeout_s: 3.0, workers: 2}}
""")
    g = _script()
    wd, results = tmp_path / "wd", tmp_path / "res" / "plum_gain.json"
    common = ["--config", str(tmp_path / "base.yaml"), "--workdir", str(wd), "--results", str(results)]
    # sitting 1: out of time at once: nothing starts, nothing is lost, the table says what is pending
    assert g.main(common + ["--budget-min", "0"]) == 0
    res = json.loads(results.read_text())
    assert res["arms"] == [] and set(res["status"].values()) == {"pending"}
    assert "No arm has finished yet." in results.with_suffix(".md").read_text()
    # sitting 2 finishes every arm
    assert g.main(common) == 0
    res = json.loads(results.read_text())
    assert [r["arm"] for r in res["arms"]] == ["initial", "plum-kto-offline", "plum-kto-online", "rft", "plum-dpo"]
    assert set(res["status"].values()) == {"done"}
    trunk = wd / "trunk"
    for r in res["arms"]:  # every arm's answer lengths, from its own evaluation samples
        a = r["answers"]["tiny-bench"]
        assert a["samples"] == 4 and 0 < a["mean_tokens"] <= 72 and 0 <= a["cut_at_limit"] <= 4
    assert "Evaluation answers: mean length in tokens" in results.with_suffix(".md").read_text()
    for r in res["arms"][1:]:
        assert 0.0 <= r["tiny-bench"] <= 100.0
        ci = r["ci95"]["tiny-bench"]
        assert ci["low"] <= ci["delta"] <= ci["high"] and ci["n"] == 4
        ch = r["churn"]["tiny-bench"]  # greedy: each problem 0 or 1, so gained - lost is the delta in problems
        assert ch["gained"] + ch["lost"] <= 4 and (ch["gained"] - ch["lost"]) * 25 == pytest.approx(ci["delta"])
        run = Path(r["config"]).parent
        assert r["resolved_config"]["name"] == r["arm"]
        st = RunState.load(run)
        assert st.finished and st.summary("tests")["forked_from"] == str(trunk)
        # every arm trained on the trunk's tests
        assert (run / "tests.jsonl").read_bytes() == (trunk / "tests.jsonl").read_bytes()
        # what each round trained on and how training moved, from the run's own summaries and log
        rounds = r["rounds"]
        assert [x["round"] for x in rounds] == list(range(2 if r["arm"] == "plum-kto-online" else 1))
        for x in rounds:
            assert x["samples"] == len(load_jsonl(run / f"round-{x['round']:03d}" / "verdicts.jsonl")) > 0
            assert 0.0 <= x["pass_rate"] <= 1.0 and x["train"]["steps"] >= 1 and "loss" in x["train"]
    online = wd / "plum-kto-online"
    ids = [s["sample_id"] for s in load_jsonl(online / "round-000" / "samples.jsonl")]
    assert len(ids) == 2 * len({i.split("#")[0] for i in ids})  # the first 2 of the trunk's 4 per problem
    assert (online / "round-001" / "samples.jsonl").exists() and not (online / "round-000" / "eval.json").exists()
    assert (wd / "report.html").exists()
    md = results.with_suffix(".md").read_text()
    assert "| plum-kto-online |" in md and "python benchmarks/plum_gain.py" in md
    assert "| plum-kto-online | 1 |" in md  # the per-round training table
    # a third sitting has nothing left to do and leaves the results as they were
    before = results.read_text()
    assert g.main(common) == 0
    assert json.loads(results.read_text())["arms"] == json.loads(before)["arms"]


def test_label_audit_compares_synthetic_labels_with_the_dataset_asserts(tmp_path: Path) -> None:
    """Four samples of one problem, labelled by (made-up) synthetic verdicts and by the dataset's one
    assert, run here in the real sandbox. ``return 3`` passes that weak assert: a 'false fail' of the
    synthetic tests that is really a true fail, the caveat the audit's docstring states."""
    g = _script()
    trunk = tmp_path / "trunk"
    (trunk / "round-000").mkdir(parents=True)
    st = RunState.load(trunk)
    st.complete(g.TRUNK_UNTIL, {})
    write_problems(trunk / "problems.jsonl", [Problem(id="t/0", instruction="add", entry_point="add",
                                                      reference_solution=ADD,
                                                      tests=[TestCase("assert", code="assert add(1, 2) == 3\n")])])
    t_in, t_aug = {"kind": "call", "args": [1, 2], "expected": 3}, {"kind": "call", "args": [0, 0], "expected": 0}
    (trunk / "train_problems.jsonl").write_text(json.dumps({"id": "t/0", "tests": [t_in, t_aug]}) + "\n")
    (trunk / "tests.jsonl").write_text(json.dumps({"problem_id": "t/0", "tests": [
        {"test": t_in, "origin": "inputs", "status": "kept"}, {"test": t_aug, "origin": "augmented", "status": "kept"}]})
        + "\n")
    codes = [ADD, "def add(a, b):\n    return 3\n", "def add(a, b):\n    return a - b\n", "def add(a, b):\n    return b + a\n"]
    synthetic = [True, False, True, False]  # dataset: pass, pass, fail, pass
    per_test = [["pass", "pass"], ["pass", "fail"], ["pass", "pass"], ["pass", "fail"]]  # made up, as the labels
    with open(trunk / "round-000" / "samples.jsonl", "w") as f:
        for i, c in enumerate(codes):
            f.write(json.dumps({"problem_id": "t/0", "sample_id": f"t/0#{i}", "code": c}) + "\n")
    with open(trunk / "round-000" / "verdicts.jsonl", "w") as f:
        for i, ok in enumerate(synthetic):
            f.write(json.dumps({"problem_id": "t/0", "sample_id": f"t/0#{i}", "passed": ok,
                                "tests": [{"status": st} for st in per_test[i]]}) + "\n")
    au = g.label_audit(tmp_path)
    wa = au.pop("without_augmented")
    assert au == {"version": g.AUDIT_VERSION, "samples": 4, "problems": 1, "pass_rate_synthetic": 0.5,
                  "pass_rate_dataset": 0.75, "agreement": 0.25, "false_pass": "1/1", "false_fail": "2/3",
                  "problems_with_signal_synthetic": 1, "problems_with_signal_dataset": 1}
    # without the augmented test every sample passes: the two false fails go, the false pass stays
    assert wa == {"samples": 4, "problems": 1, "pass_rate_synthetic": 1.0, "pass_rate_dataset": 0.75,
                  "agreement": 0.75, "false_pass": "1/1", "false_fail": "0/3",
                  "problems_with_signal_synthetic": 0, "problems_with_signal_dataset": 1}
    assert g.label_audit(tmp_path) == {**au, "without_augmented": wa}  # cached: computed once
    assert len(load_jsonl(tmp_path / "label_audit.verdicts.jsonl")) == 4  # the dataset verdicts are kept


def test_ablation_arms_are_a_designed_arm_with_overrides_and_marked_in_the_table() -> None:
    from plumcode.loop.config import load_config

    g = _script()
    base = load_config(ROOT / "configs" / "plum-gain.yaml")
    cfg, take = g.arm_config(base, "kto-offline-twosided", 2)
    ref, ref_take = g.arm_config(base, "plum-kto-offline", 2)
    assert cfg.name == "kto-offline-twosided" and take == ref_take
    assert cfg.preference.options == {"one_sided": "skip"} and ref.preference.options == {}
    assert cfg.training == ref.training and cfg.rounds == ref.rounds == 1
    with pytest.raises(ValueError, match="ablations"):
        g.arm_config(base, "no-such-arm", 2)
    res = {"arms": [{"arm": "initial", "mbpp+": 40.0, "ci95": {}},
                    {"arm": "kto-offline-twosided", "mbpp+": 42.0, "ablation_of": "plum-kto-offline",
                     "overrides": ["preference.options.one_sided=skip"],
                     "ci95": {"mbpp+": {"delta": 2.0, "low": -1.0, "high": 5.0}}}],
           "status": {"initial": "done", "kto-offline-twosided": "done"}, "base_config": "b.yaml", "workdir": "wd"}
    md = g.markdown(res, "cmd")
    assert "| kto-offline-twosided (ablation: preference.options.one_sided=skip) | 42.0 (+2.0 [-1.0, +5.0]) |" in md
    assert "ablation_of" not in md.split("\n")[2]  # not a column


def test_noaug_ablation_drops_only_the_augmented_tests_before_round_0_executes(tmp_path: Path) -> None:
    g = _script()
    trunk, run = tmp_path / "trunk", tmp_path / "arm"
    trunk.mkdir()
    run.mkdir()
    t_in, t_aug, t_rej = ({"kind": "call", "args": [i, 2], "expected": i + 2} for i in range(3))
    (trunk / "tests.jsonl").write_text(json.dumps({"problem_id": "t/0", "tests": [
        {"test": t_in, "origin": "inputs", "status": "kept"},
        {"test": t_aug, "origin": "augmented", "status": "kept"},
        {"test": t_rej, "origin": "augmented", "status": "rejected"}]}) + "\n")
    (run / "train_problems.jsonl").write_text(json.dumps({"id": "t/0", "tests": [t_in, t_aug]}) + "\n")
    RunState.load(run).complete("tests", {"tests_kept": 2, "problems_with_tests": 1})  # as forked from the trunk
    g.drop_augmented_tests(trunk, run)
    assert [r["tests"] for r in load_jsonl(run / "train_problems.jsonl")] == [[t_in]]
    assert RunState.load(run).summary("tests")["tests_kept"] == 1  # what the report shows
    assert json.loads((run / "ablation.json").read_text())["tests_before"] == 2
    g.drop_augmented_tests(trunk, run)  # done once: a resumed sitting leaves it alone
    assert [r["tests"] for r in load_jsonl(run / "train_problems.jsonl")] == [[t_in]]
    (run / "ablation.json").unlink()
    RunState.load(run).complete(g.TRUNK_UNTIL, {})
    with pytest.raises(RuntimeError, match="already executed"):
        g.drop_augmented_tests(trunk, run)
    assert g.ABLATIONS["kto-offline-noaug"].describe() == ["tests: augmented dropped"]
