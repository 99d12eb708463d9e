"""The loop's orchestration: stage order, on-policy chaining, and resume after an interruption at
every stage. The stage packages are replaced by small file-writing stand-ins (the loop, not the
stages, is under test here; tests/loop/test_e2e.py runs the real stages on the tiny model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from plumcode.io import JsonlAppender, atomic_write_json, atomic_write_jsonl, load_jsonl
from plumcode.loop import stages
from plumcode.loop.config import RunConfig
from plumcode.loop.runner import Runner, resume_config
from plumcode.problems.schema import Problem, TestCase


class Interrupt(KeyboardInterrupt):
    pass


class FakeStages:
    """Resumable stand-ins that record every call and can be told to stop half-way once."""

    def __init__(self, stop_in: str | None = None):
        self.calls: list[tuple[str, Any]] = []
        self.stop_in = stop_in

    def _maybe_stop(self, name: str) -> None:
        if self.stop_in == name:
            self.stop_in = None
            raise Interrupt(name)

    def install(self, mp: pytest.MonkeyPatch) -> None:
        for name in ("load_training_problems", "load_benchmark", "decontaminate", "load_backend", "synthesize",
                     "problems_with_tests", "sample", "execute", "preferences", "train", "evaluate"):
            mp.setattr(stages, name, getattr(self, name))

    def load_training_problems(self, source: str, path: str | None) -> list[Problem]:
        return [Problem(id=f"mbpp/{i}", instruction=f"task {i} " * 3, reference_solution="x=1") for i in range(600, 606)]

    def load_benchmark(self, name: str, path: str | None, with_tests: bool = True, limit=None) -> list[Problem]:
        return [Problem(id=f"{name}/{i}", instruction=f"bench {i}") for i in range(4)]

    def decontaminate(self, train, bench, n):
        return [p for p in train if p.id != "mbpp/603"], [{"id": "mbpp/603"}]

    def load_backend(self, spec: str, *, seed: int):
        self.calls.append(("load_backend", spec))

        class B:
            def close(self) -> None:
                pass
        b = B()
        b.spec = spec  # type: ignore[attr-defined]
        return b

    def synthesize(self, problems, backend, tc, out_path: Path, *, seed: int, samples=None):
        self.calls.append(("synthesize", backend.spec))
        self.synth_samples = samples
        with JsonlAppender(out_path) as app:
            done = {r["problem_id"] for r in load_jsonl(out_path)} if out_path.exists() else set()
            for i, p in enumerate(problems):
                if p.id in done:
                    continue
                if i == 2:
                    self._maybe_stop("synthesize")
                app.write({"problem_id": p.id, "tests": [{"kind": "assert", "code": "assert True"}]})
        return {"records": len(load_jsonl(out_path))}

    def problems_with_tests(self, problems, tests_path, tc):
        return [Problem(id=p.id, instruction=p.instruction, tests=[TestCase("assert", code="assert True")])
                for p in problems]

    def sample(self, problems, backend, out_path: Path, *, n, desc, **kw) -> int:
        self.calls.append(("sample", (backend.spec, out_path.parent.name, out_path.name)))
        done = {r["sample_id"] for r in load_jsonl(out_path)} if out_path.exists() else set()
        with JsonlAppender(out_path) as app:
            for i, p in enumerate(problems):
                for j in range(n):
                    sid = f"{p.id}#{j}"
                    if sid in done:
                        continue
                    if i == 1 and j == 1:
                        self._maybe_stop("sample")
                    app.write({"problem_id": p.id, "sample_id": sid, "prompt": "p", "code": "c",
                               "policy": backend.spec})
        return len(load_jsonl(out_path))

    def execute(self, problems_path, samples_path, out_path: Path, sb):
        self.calls.append(("execute", out_path.parent.name))
        done = {r["sample_id"] for r in load_jsonl(out_path)} if out_path.exists() else set()
        with JsonlAppender(out_path) as app:
            for k, s in enumerate(load_jsonl(samples_path)):
                if s["sample_id"] in done:
                    continue
                if k == 3:
                    self._maybe_stop("execute")
                app.write({"problem_id": s["problem_id"], "sample_id": s["sample_id"],
                           "passed": s["sample_id"].endswith("#0"), "status": "pass"})
        return {"verdicts": len(load_jsonl(out_path))}

    def preferences(self, samples, verdicts, pc, objective, out_path: Path, *, seed, problems_path=None):
        self.calls.append(("preferences", out_path.parent.name))
        self._maybe_stop("preferences")
        recs = [{"prompt": "p", "completion": "c", "label": v["passed"], "problem_id": v["problem_id"]}
                for v in verdicts]
        atomic_write_jsonl(out_path, recs)
        atomic_write_json(out_path.with_name("preferences.summary.json"), {})
        return {"records": len(recs)}

    def train(self, prefs, model_spec, cfg, out_dir: Path, *, seed):
        self.calls.append(("train", (model_spec, out_dir.parent.name)))
        out_dir.mkdir(parents=True, exist_ok=True)
        self._maybe_stop("train")
        atomic_write_json(out_dir / "adapter_config.json", {})
        return {"steps": 1}

    def evaluate(self, problems_path, samples_path, ec, sb, *, benchmark):
        self.calls.append(("evaluate", samples_path.parent.parent.name))
        self._maybe_stop("evaluate")
        return {"pass@1": 0.5}


def _cfg(**kw: Any) -> RunConfig:
    d = {"rounds": 2, "policy": {"model": "hf:/m"}, "sampling": {"n": 2},
         "evaluation": {"benchmarks": [{"name": "humaneval+", "limit": 2}]}}
    d.update(kw)
    return RunConfig.model_validate(d)


def _run(tmp_path: Path, mp: pytest.MonkeyPatch, fake: FakeStages, cfg: RunConfig) -> Runner:
    fake.install(mp)
    r = Runner(tmp_path / "run", cfg, echo=lambda s: None)
    r.run()
    return r


def test_full_run_order_and_on_policy_chaining(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStages()
    runner = _run(tmp_path, monkeypatch, fake, _cfg())
    d = tmp_path / "run"
    assert runner.state.finished
    assert runner.state.order == [
        "problems", "tests", "baseline/eval",
        "round-000/sample", "round-000/execute", "round-000/preferences", "round-000/train", "round-000/eval",
        "round-001/sample", "round-001/execute", "round-001/preferences", "round-001/train", "round-001/eval"]
    ck0 = (d / "round-000" / "checkpoint").resolve()
    ck1 = (d / "round-001" / "checkpoint").resolve()
    samples = [c[1] for c in fake.calls if c[0] == "sample"]
    assert samples == [("hf:/m", "eval", "humanevalplus.samples.jsonl"),
                       ("hf:/m", "round-000", "samples.jsonl"),
                       (f"hf:/m?adapter={ck0}", "eval", "humanevalplus.samples.jsonl"),
                       (f"hf:/m?adapter={ck0}", "round-001", "samples.jsonl"),
                       (f"hf:/m?adapter={ck1}", "eval", "humanevalplus.samples.jsonl")]
    # round 1 continues training round 0's adapter
    assert [c[1] for c in fake.calls if c[0] == "train"] == [("hf:/m", "round-000"),
                                                            (f"hf:/m?adapter={ck0}", "round-001")]
    assert json.loads((d / "decontamination.json").read_text())["dropped"] == [{"id": "mbpp/603"}]
    assert [p["id"] for p in load_jsonl(d / "problems.jsonl")] == ["mbpp/600", "mbpp/601", "mbpp/602",
                                                                   "mbpp/604", "mbpp/605"]
    assert (d / "config.yaml").exists() and (d / "baseline" / "eval.json").exists()
    assert (d / "round-001" / "eval.json").exists()
    assert not [a for s in runner.plan() for a in s.artifacts if not a.exists()]  # the graph names what is there


@pytest.mark.parametrize("stop_in", ["synthesize", "sample", "execute", "preferences", "train", "evaluate"])
def test_interrupt_anywhere_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_in: str) -> None:
    fake = FakeStages(stop_in=stop_in)
    with pytest.raises(Interrupt):
        _run(tmp_path, monkeypatch, fake, _cfg())
    first = list(fake.calls)
    fake.calls.clear()
    runner = _run(tmp_path, monkeypatch, fake, resume_config(tmp_path / "run"))
    d = tmp_path / "run"
    assert runner.state.finished
    # finished stages were not redone: every stage ran to completion exactly once over both processes
    done_before = {c for c in first}
    for kind in ("execute", "preferences", "evaluate"):
        after = [c for c in fake.calls if c[0] == kind]
        assert len(after) == len(set(after))
        assert not (set(after) & done_before) or kind == stop_in
    for r in ("round-000", "round-001"):
        s = load_jsonl(d / r / "samples.jsonl")
        v = load_jsonl(d / r / "verdicts.jsonl")
        assert len(s) == len({x["sample_id"] for x in s}) == 10
        assert len(v) == len({x["sample_id"] for x in v}) == 10
    assert len(load_jsonl(d / "tests.jsonl")) == 5


def test_no_signal_skips_training_and_keeps_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStages()
    fake.preferences = lambda samples, verdicts, pc, obj, out_path, **kw: (atomic_write_jsonl(out_path, []),
                                                                          {"records": 0})[1]
    runner = _run(tmp_path, monkeypatch, fake, _cfg())
    assert runner.state.summary("round-000/train")["skipped"] is True
    assert not [c for c in fake.calls if c[0] == "train"]
    assert runner.policy_spec(1) == "hf:/m"  # nothing trained: round 1 samples the initial policy


def test_resume_refuses_config_changes_but_extends_rounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStages()
    _run(tmp_path, monkeypatch, fake, _cfg(rounds=1))
    with pytest.raises(ValueError, match="sampling"):
        resume_config(tmp_path / "run", ["sampling.n=4"])
    fake.calls.clear()
    runner = _run(tmp_path, monkeypatch, fake, resume_config(tmp_path / "run", ["rounds=2"]))
    assert runner.state.finished and runner.state.is_done("round-001/eval")
    assert {c[0] for c in fake.calls} >= {"sample", "train"}
    assert not [c for c in fake.calls if c[0] == "synthesize"]  # tests kept from the first invocation


def test_second_process_on_same_dir_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    d = tmp_path / "run"
    d.mkdir()
    with open(d / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="another process"):
            _run(tmp_path, monkeypatch, FakeStages(), _cfg())


def test_agreement_validation_makes_tests_after_sampling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStages()
    runner = _run(tmp_path, monkeypatch, fake, _cfg(testgen={"validation": ["agreement"]}))
    assert runner.state.order[:5] == ["problems", "baseline/eval", "round-000/sample", "tests", "round-000/execute"]
    assert sorted(fake.synth_samples) == ["mbpp/600", "mbpp/601", "mbpp/602", "mbpp/604", "mbpp/605"]
    assert all(len(v) == 2 for v in fake.synth_samples.values())
    assert [c[0] for c in fake.calls].count("synthesize") == 1
