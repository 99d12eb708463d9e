"""Forking a run: arms of an experiment share the trunk's finished stages, and only when the config
fields those stages depend on are the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plumcode.io import atomic_write_json, load_jsonl
from plumcode.loop.config import RunConfig, dump_config
from plumcode.loop.fork import fork
from plumcode.loop.runner import Runner, _reuse_greedy
from plumcode.loop.state import RunState
from plumcode.problems.schema import Problem

BASE = {"name": "t", "problems": {"source": "x.jsonl"}, "sampling": {"n": 4},
        "evaluation": {"benchmarks": [{"name": "b", "path": "b.jsonl"}]}}


def _cfg(**over) -> RunConfig:
    d = json.loads(json.dumps(BASE))
    for k, v in over.items():
        node = d
        *head, last = k.split(".")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = v
    return RunConfig.model_validate(d)


def _trunk(tmp: Path, cfg: RunConfig, done: tuple[str, ...]) -> Path:
    t = tmp / "trunk"
    (t / "round-000").mkdir(parents=True)
    (t / "benchmarks").mkdir()
    (t / "baseline" / "eval").mkdir(parents=True)
    (t / "config.yaml").write_text(dump_config(cfg))
    (t / "problems.jsonl").write_text('{"id": "p1"}\n')
    (t / "benchmarks" / "b.jsonl").write_text('{"id": "b1"}\n')
    atomic_write_json(t / "decontamination.json", {"dropped": []})
    (t / "tests.jsonl").write_text('{"problem_id": "p1"}\n')
    (t / "train_problems.jsonl").write_text('{"id": "p1"}\n')
    atomic_write_json(t / "baseline" / "eval.json", {"benchmarks": {}})
    samples = [{"problem_id": p, "sample_id": f"{p}#{k}", "code": "x"} for p in ("p1", "p2") for k in range(4)]
    (t / "round-000" / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    verdicts = [{"problem_id": s["problem_id"], "sample_id": s["sample_id"], "passed": True} for s in samples[::-1]]
    (t / "round-000" / "verdicts.jsonl").write_text("".join(json.dumps(v) + "\n" for v in verdicts))
    st = RunState.load(t)
    for s in done:
        st.complete(s, {"marker": s})
    return t


ALL = ("problems", "tests", "baseline/eval", "round-000/sample", "round-000/execute")


def test_fork_takes_every_finished_stage_and_its_files(tmp_path: Path) -> None:
    cfg = _cfg()
    trunk = _trunk(tmp_path, cfg, ALL)
    branch_cfg = _cfg(**{"training.objective": "dpo"})  # training is not a dependency of shared stages
    taken = fork(trunk, tmp_path / "dpo", branch_cfg)
    assert taken == list(ALL)
    b = tmp_path / "dpo"
    st = RunState.load(b)
    assert all(st.is_done(s) and st.summary(s)["forked_from"] == str(trunk) for s in ALL)
    for rel in ("problems.jsonl", "benchmarks/b.jsonl", "tests.jsonl", "train_problems.jsonl",
                "baseline/eval.json", "round-000/samples.jsonl", "round-000/verdicts.jsonl"):
        assert (b / rel).read_bytes() == (trunk / rel).read_bytes(), rel
    assert not list(b.rglob("*.forking"))
    # the branch's own runner sees those stages as done and would start at preferences
    plan = [s.key for s in Runner(b, branch_cfg).plan() if not st.is_done(s.key)]
    assert plan[0] == "round-000/preferences"
    assert fork(trunk, b, branch_cfg) == []  # idempotent


def test_fork_subset_keeps_first_k_samples_per_problem_and_their_verdicts(tmp_path: Path) -> None:
    trunk = _trunk(tmp_path, _cfg(), ALL)
    cfg = _cfg(**{"sampling.n": 2, "rounds": 2})
    fork(trunk, tmp_path / "online", cfg, samples_per_problem=2)
    s = load_jsonl(tmp_path / "online" / "round-000" / "samples.jsonl")
    v = load_jsonl(tmp_path / "online" / "round-000" / "verdicts.jsonl")
    assert [x["sample_id"] for x in s] == ["p1#0", "p1#1", "p2#0", "p2#1"]
    assert sorted(x["sample_id"] for x in v) == sorted(x["sample_id"] for x in s)
    st = RunState.load(tmp_path / "online")  # the summaries count the branch's share, not the trunk's
    assert st.summary("round-000/sample")["samples"] == 4
    ex = st.summary("round-000/execute")
    assert (ex["verdicts"], ex["passed"], ex["pass_rate"], ex["samples_per_problem"]) == (4, 4, 1.0, 2)


def test_fork_refuses_when_a_dependency_differs(tmp_path: Path) -> None:
    trunk = _trunk(tmp_path, _cfg(), ALL)
    with pytest.raises(ValueError, match="testgen"):
        fork(trunk, tmp_path / "a", _cfg(**{"testgen.max_tests": 3}))
    with pytest.raises(ValueError, match="sampling"):  # a different budget is not the same samples
        fork(trunk, tmp_path / "b", _cfg(**{"sampling.n": 2}))
    with pytest.raises(ValueError, match="only 4 per problem"):
        fork(trunk, tmp_path / "c", _cfg(**{"sampling.n": 8}), samples_per_problem=8)
    # stages before the differing dependency are still shared
    assert fork(trunk, tmp_path / "d", _cfg(**{"sampling.temperature": 0.2}),
                stages=("problems", "tests", "baseline/eval")) == ["problems", "tests", "baseline/eval"]


def test_fork_stops_at_the_first_stage_the_trunk_has_not_finished(tmp_path: Path) -> None:
    trunk = _trunk(tmp_path, _cfg(), ("problems", "tests", "baseline/eval", "round-000/sample"))
    assert fork(trunk, tmp_path / "x", _cfg()) == ["problems", "tests", "baseline/eval", "round-000/sample"]
    assert not (tmp_path / "x" / "round-000" / "verdicts.jsonl").exists()


def test_greedy_answers_are_reused_for_identical_prompts_only(tmp_path: Path) -> None:
    a = Problem("HumanEval/0", "do x", prompt="def f():\n", entry_point="f")
    b = Problem("HumanEval/1", "do y", prompt="def g():\n", entry_point="g")
    b_plus_changed = Problem("HumanEval/1", "do y, differently", prompt="def g():\n", entry_point="g")
    from plumcode.loop.runner import _prompt_key

    done = {_prompt_key(a): {"problem_id": "HumanEval/0", "sample_id": "HumanEval/0#0", "code": "A"},
            _prompt_key(b): {"problem_id": "HumanEval/1", "sample_id": "HumanEval/1#0", "code": "B"}}
    out = tmp_path / "plus.samples.jsonl"
    assert _reuse_greedy([a, b_plus_changed], done, out) == 1
    assert [r["code"] for r in load_jsonl(out)] == ["A"]
    assert _reuse_greedy([a, b_plus_changed], done, out) == 0  # resumed: nothing duplicated


def test_until_and_deadline_stop_a_run_without_finishing_it(tmp_path: Path) -> None:
    cfg = _cfg()
    r = Runner(tmp_path / "r", cfg, echo=lambda s: None)
    with pytest.raises(ValueError, match="not a stage"):
        r.run(until="round-009/eval")
    st = r.run(deadline=0.0)  # long past: nothing starts
    assert not st.finished and not st.completed
