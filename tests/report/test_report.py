"""The report reads run directories (complete, partial, several) into the right numbers and HTML."""

from __future__ import annotations

import json
from pathlib import Path

from plumcode.io import atomic_write_json, atomic_write_jsonl, load_jsonl
from plumcode.loop.layout import RunDir
from plumcode.loop.stages import verdict_counts
from plumcode.loop.state import RunState
from plumcode.report import collect_run, extract_pass_at, summary_text, write_report


def _make_run(d: Path, name: str, rounds: int, *, pass_at: list[float], paired: bool = False) -> Path:
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(f"name: {name}\nrounds: {rounds}\npolicy: {{model: default}}\n"
                                   f"training: {{objective: {'dpo' if paired else 'kto'}}}\n")
    atomic_write_jsonl(d / "problems.jsonl", [{"id": f"p{i}"} for i in range(3)])
    atomic_write_json(d / "decontamination.json", {"n_dropped": 1, "dropped": [{"id": "x"}]})
    atomic_write_jsonl(d / "tests.jsonl", [{"problem_id": f"p{i}", "funnel": {"generated": 4, "parsed": 3, "valid": 2, "kept": 2}}
                                           for i in range(3)])
    atomic_write_jsonl(d / "train_problems.jsonl", [{"id": f"p{i}", "tests": [{}, {}]} for i in range(2)])
    atomic_write_json(d / "baseline" / "eval.json", {"benchmarks": {"humaneval+": {"pass@1": pass_at[0]}}})
    completed = [{"stage": "problems", "summary": {}}]
    for r in range(rounds):
        rd = d / f"round-{r:03d}"
        # p0: 1 pass 1 fail (signal), p1: both fail
        samples = [{"problem_id": p, "sample_id": f"{p}#{j}", "prompt": "write f", "code": "x"}
                   for p in ("p0", "p1") for j in range(2)]
        atomic_write_jsonl(rd / "samples.jsonl", samples)
        atomic_write_jsonl(rd / "verdicts.jsonl", [
            {"problem_id": s["problem_id"], "sample_id": s["sample_id"], "passed": s["sample_id"] == "p0#0",
             "status": "pass" if s["sample_id"] == "p0#0" else "fail"} for s in samples])
        if paired:
            prefs = [{"prompt": "write f", "chosen": "<ok>", "rejected": "<script>alert(1)</script>",
                      "problem_id": "p0", "reason": "fail"}]
        else:
            prefs = [{"prompt": "write f", "completion": "def f(): return '<ok>'", "label": True, "problem_id": "p0",
                      "status": "pass"},
                     {"prompt": "write f", "completion": "<script>alert(1)</script>", "label": False,
                      "problem_id": "p0", "status": "fail"}]
        atomic_write_jsonl(rd / "preferences.jsonl", prefs)
        atomic_write_jsonl(rd / "checkpoint" / "train_log.jsonl",
                           [{"step": s, "loss": 0.7 - 0.1 * s, "rewards/margins": 0.1 * s} for s in range(1, 4)])
        atomic_write_json(rd / "eval.json", {"benchmarks": {"humaneval+": {"pass_at_k": {"1": pass_at[r + 1]}}}})
        completed += [{"stage": f"round-{r:03d}/train", "summary": {"seconds": 3.0}}]
    atomic_write_json(d / "state.json", {"version": 1, "finished": True, "current": None, "completed": completed})
    return d


def test_collect_numbers(tmp_path: Path) -> None:
    run = collect_run(_make_run(tmp_path / "a", "kto-arm", 2, pass_at=[0.25, 0.5, 0.75]))
    assert run.name == "kto-arm" and run.problems == 3 and run.decontaminated == 1 and run.finished
    assert run.tests == {"problems_tested": 3, "tests_generated": 12, "tests_parsed": 9, "tests_valid": 6,
                         "problems_with_tests": 2, "tests_kept": 4}
    assert len(run.rounds) == 2
    r0 = run.rounds[0]
    assert (r0.samples, r0.verdicts, r0.passed) == (4, 4, 1) and r0.pass_rate == 0.25
    assert (r0.problems_with_signal, r0.problems_none_pass, r0.problems_all_pass) == (1, 1, 0)
    assert (r0.records, r0.desirable, r0.undesirable) == (2, 1, 1) and r0.trained
    assert [round(x["loss"], 6) for x in r0.log_history] == [0.6, 0.5, 0.4]
    assert run.pass_at("humaneval+") == [0.25, 0.5, 0.75]
    assert r0.examples and r0.examples[0]["rejected"] == "<script>alert(1)</script>"


def test_html_escapes_code_embeds_plots_and_compares_runs(tmp_path: Path) -> None:
    a = _make_run(tmp_path / "a", "kto-arm", 2, pass_at=[0.25, 0.5, 0.75])
    b = _make_run(tmp_path / "b", "dpo-arm", 1, pass_at=[0.25, 0.0], paired=True)
    out = write_report([a, b], tmp_path / "cmp.html")
    page = out.read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("data:image/png;base64,") >= 3  # pass@1, loss, margin (+ sample pass rate)
    assert "kto-arm" in page and "dpo-arm" in page
    assert "+50.0" in page and "-25.0" in page  # delta vs initial per arm
    assert "src='http" not in page and "<link" not in page  # self-contained
    text = summary_text([collect_run(a)])
    assert "pass@1 humaneval+: initial 25.0%, after r0 50.0%, after r1 75.0%" in text


def test_counts_come_from_the_stage_summaries(tmp_path: Path) -> None:
    """A finished stage's summary has the counts: the report takes them from there, not the files."""
    d = _make_run(tmp_path / "a", "kto-arm", 1, pass_at=[0.25, 0.5])
    counted = collect_run(d)  # no summaries (a run from before they carried counts): from the files
    rd, st = RunDir(d), RunState.load(d)
    st.complete("problems", {"problems": 3, "decontaminated": 1})
    st.complete("tests", {"records": 3, "tests_generated": 12, "tests_parsed": 9, "tests_valid": 6,
                          "problems_with_tests": 2, "tests_kept": 4})
    st.complete("round-000/sample", {"policy": "default", "problems": 2, "samples": 4})
    st.complete("round-000/execute", verdict_counts(load_jsonl(rd.verdicts(0))))
    # rejection-sampling SFT writes the passing records only: desirable as built, the rest not written
    st.complete("round-000/preferences", {"format": "unpaired", "records_written": 1, "desirable": 1,
                                          "undesirable": 1})
    for f in (rd.problems, rd.tests(), rd.train_problems(), rd.samples(0), rd.verdicts(0)):
        f.unlink()
    run = collect_run(d)
    assert (run.problems, run.decontaminated, run.tests) == (counted.problems, counted.decontaminated, counted.tests)
    a, b = run.rounds[0], counted.rounds[0]
    keys = ("samples", "problems_sampled", "verdicts", "passed", "statuses", "problems_with_signal",
            "problems_all_pass", "problems_none_pass")
    assert [getattr(a, k) for k in keys] == [getattr(b, k) for k in keys] == [4, 2, 4, 1, {"pass": 1, "fail": 3}, 1, 0, 1]
    assert (a.records, a.desirable, a.undesirable, a.pairs) == (1, 1, 0, 0)


def test_partial_run(tmp_path: Path) -> None:
    d = tmp_path / "p"
    d.mkdir()
    (d / "config.yaml").write_text("name: partial\n")
    atomic_write_jsonl(d / "problems.jsonl", [{"id": "a"}])
    rd = d / "round-000"
    rd.mkdir()
    (rd / "samples.jsonl").write_text(json.dumps({"problem_id": "a", "sample_id": "a#0"}) + "\n{\"torn")
    atomic_write_json(d / "state.json", {"version": 1, "current": "round-000/sample", "completed": []})
    run = collect_run(d)
    assert not run.finished and run.current == "round-000/sample" and run.rounds[0].samples == 1
    page = write_report([d]).read_text()
    assert "at round-000/sample" in page


def test_extract_pass_at_shapes() -> None:
    assert extract_pass_at({"pass@1": 0.5, "pass@10": 0.9}) == {"pass@1": 0.5, "pass@10": 0.9}
    assert extract_pass_at({"pass_at_k": {"1": 0.5}}) == {"pass@1": 0.5}
    # plumcode.evaluation's shape: one figure per test set, the benchmark's own name is the main one
    res = {"benchmark": "humaneval+", "pass_at_k": {"humaneval": {"pass@1": 0.6}, "humaneval+": {"pass@1": 0.5}}}
    assert extract_pass_at(res) == {"pass@1": 0.5}
