"""Read a run directory (complete or not) into plain numbers for the report.

Counts come from the summaries the stages left in ``state.json``; a stage that is not complete
(a crashed run, one made stage by stage with the individual commands, or one written before its
summary carried the number) is counted from its artifacts instead. Pass@k, training curves and
examples always come from the artifacts (eval.json, trainer logs, preferences).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plumcode.io import DataError, load_jsonl
from plumcode.loop.layout import RunDir, round_dir_name
from plumcode.loop.stages import verdict_counts


@dataclass
class RoundData:
    index: int
    samples: int = 0
    verdicts: int = 0
    passed: int = 0
    problems_sampled: int = 0
    problems_with_signal: int = 0
    problems_all_pass: int = 0
    problems_none_pass: int = 0
    records: int = 0
    pairs: int = 0
    desirable: int = 0
    undesirable: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    policy: str | None = None
    trained: bool = False
    train_skipped: bool = False
    health: list[str] | None = None  # the trainer's health warnings ([] = checked and fine)
    truncated: tuple[int, int] | None = None  # (samples cut at the token limit, of them dropped)
    log_history: list[dict] = field(default_factory=list)
    eval: dict[str, dict[str, float]] = field(default_factory=dict)  # bench -> {pass@k: value}
    examples: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    tests: dict[str, int] | None = None  # per-round tests when refreshed

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.verdicts if self.verdicts else None


@dataclass
class RunData:
    path: Path
    name: str
    config: dict[str, Any]
    state: dict[str, Any]
    problems: int = 0
    decontaminated: int = 0
    tests: dict[str, int] = field(default_factory=dict)
    baseline: dict[str, dict[str, float]] = field(default_factory=dict)
    rounds: list[RoundData] = field(default_factory=list)
    finished: bool = False
    current: str | None = None

    def pass_at(self, bench: str, k: int = 1) -> list[float | None]:
        """pass@k per policy: [initial, after round 0, after round 1, ...]."""
        key = f"pass@{k}"
        out = [self.baseline.get(bench, {}).get(key)]
        out += [r.eval.get(bench, {}).get(key) for r in self.rounds]
        return out

    def benchmarks(self) -> list[str]:
        names: list[str] = list(self.baseline)
        for r in self.rounds:
            names += [b for b in r.eval if b not in names]
        return names


def _rows(path: Path) -> list[dict]:
    return load_jsonl(path) if path.exists() else []


def _has(summary: dict[str, Any], *keys: str) -> bool:
    return all(k in summary for k in keys)


def extract_pass_at(result: dict[str, Any]) -> dict[str, float]:
    """Find pass@k numbers in an evaluation result, whatever its exact nesting."""
    out: dict[str, float] = {}
    for key in ("pass_at_k", "pass@k", "metrics", "summary", "overall"):
        sub = result.get(key)
        if isinstance(sub, dict):
            for k, v in sub.items():
                kk = str(k)
                if isinstance(v, (int, float)):
                    out[kk if kk.startswith("pass@") else f"pass@{kk}"] = float(v)
                elif isinstance(v, dict) and kk == result.get("benchmark"):  # {figure: {pass@k: ...}}
                    out.update({str(a): float(b) for a, b in v.items() if isinstance(b, (int, float))})
    for k, v in result.items():
        if str(k).startswith("pass@") and isinstance(v, (int, float)):
            out[str(k)] = float(v)
    return out


def _read_eval(path: Path) -> dict[str, dict[str, float]]:
    if not path.exists():
        return {}
    d = json.loads(path.read_text(encoding="utf-8"))
    benches = d.get("benchmarks", d)
    return {name: extract_pass_at(res) for name, res in benches.items() if isinstance(res, dict)}


def find_log_history(ckpt: Path) -> list[dict]:
    """Training log rows (loss, rewards/margins, ...) from whatever the trainer left behind.

    A resumed training appends the steps after its last checkpoint again: the last row of a step wins.
    """
    if not ckpt.exists():
        return []
    best: list[dict] = []
    for name in ("train_log.jsonl", "log_history.jsonl"):
        for p in ckpt.rglob(name):
            rows = load_jsonl(p)
            if rows and all("step" in x for x in rows):
                rows = sorted({x["step"]: x for x in rows}.values(), key=lambda x: x["step"])
            if len(rows) > len(best):
                best = rows
    for name in ("trainer_state.json", "log_history.json", "train_result.json", "metrics.json"):
        for p in ckpt.rglob(name):
            try:
                d = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            rows = d.get("log_history") if isinstance(d, dict) else d
            if isinstance(rows, list) and len(rows) > len(best) and all(isinstance(x, dict) for x in rows):
                best = rows
    return best


def _examples(prefs: list[dict], n: int = 3) -> list[dict]:
    """Up to ``n`` chosen-vs-rejected examples: real pairs, or a passing and a failing sample of
    one problem for unpaired (KTO) data."""
    out: list[dict] = []
    if prefs and "chosen" in prefs[0]:
        seen = set()
        for r in prefs:
            if r.get("problem_id") in seen:
                continue
            seen.add(r.get("problem_id"))
            out.append({"problem_id": r.get("problem_id"), "prompt": _text(r.get("prompt")),
                        "chosen": _text(r.get("chosen")), "rejected": _text(r.get("rejected")),
                        "reason": r.get("reason") or r.get("rejected_status", "")})
            if len(out) >= n:
                break
        return out
    by_pid: dict[str, dict[bool, dict]] = defaultdict(dict)
    for r in prefs:
        by_pid[str(r.get("problem_id"))].setdefault(bool(r.get("label")), r)
    for pid, d in by_pid.items():
        if True in d and False in d:
            out.append({"problem_id": pid, "prompt": _text(d[True].get("prompt")),
                        "chosen": _text(d[True].get("completion")), "rejected": _text(d[False].get("completion")),
                        "reason": d[False].get("status", "")})
            if len(out) >= n:
                break
    return out


def _text(x: Any) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, list):
        return "\n\n".join(f"[{m.get('role')}] {m.get('content')}" if isinstance(m, dict) else str(m) for m in x)
    return "" if x is None else str(x)


_FUNNEL = {"problems_tested": "records", "tests_generated": "tests_generated", "tests_parsed": "tests_parsed",
           "tests_valid": "tests_valid", "problems_with_tests": "problems_with_tests", "tests_kept": "tests_kept"}


def _tests_funnel(summary: dict[str, Any], tests_path: Path, train_problems_path: Path) -> dict[str, int]:
    """Test-synthesis funnel: the tests stage's summary, else testgen's records (``funnel``:
    generated/parsed/valid/kept) and the training problems."""
    if _has(summary, *_FUNNEL.values()):
        return {k: int(summary[v]) for k, v in _FUNNEL.items()}
    out: dict[str, int] = {}
    if tests_path.exists():
        recs = load_jsonl(tests_path)
        out["problems_tested"] = len(recs)
        for k in ("generated", "parsed", "valid"):
            out[f"tests_{k}"] = sum(int((r.get("funnel") or {}).get(k, 0)) for r in recs)
    if train_problems_path.exists():
        rows = load_jsonl(train_problems_path)
        out["problems_with_tests"] = len(rows)
        out["tests_kept"] = sum(len(r.get("tests") or []) for r in rows)
    return out


def collect_run(run_dir: str | Path) -> RunData:
    d = RunDir(run_dir)
    if not d.root.is_dir():
        raise FileNotFoundError(f"{d.root}: no such run directory")
    cfg: dict[str, Any] = {}
    if d.config.exists():
        cfg = yaml.safe_load(d.config.read_text(encoding="utf-8")) or {}
    state: dict[str, Any] = {}
    if d.state.exists():
        try:
            state = json.loads(d.state.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"unreadable state ({e.msg})", d.state) from None
    completed = {c["stage"]: c.get("summary", {}) for c in state.get("completed", [])}
    run = RunData(path=d.root, name=str(cfg.get("name") or d.root.name), config=cfg, state=state,
                  finished=bool(state.get("finished")), current=state.get("current"))
    prob = completed.get("problems", {})
    if _has(prob, "problems", "decontaminated"):
        run.problems, run.decontaminated = int(prob["problems"]), int(prob["decontaminated"])
    else:
        run.problems = len(_rows(d.problems))
        if d.decontamination.exists():
            run.decontaminated = int(json.loads(d.decontamination.read_text()).get("n_dropped", 0))
    run.tests = _tests_funnel(completed.get("tests", {}), d.tests(), d.train_problems())
    run.baseline = _read_eval(d.baseline_eval)
    for i in d.rounds():
        key = round_dir_name(i)
        rr = RoundData(index=i)
        if d.tests(i).exists():
            rr.tests = _tests_funnel(completed.get(f"{key}/tests", {}), d.tests(i), d.train_problems(i))
        ssum = completed.get(f"{key}/sample", {})
        if _has(ssum, "samples", "problems", "policy"):
            rr.samples, rr.problems_sampled, rr.policy = int(ssum["samples"]), int(ssum["problems"]), ssum["policy"]
        else:
            samples = _rows(d.samples(i))
            rr.samples = len(samples)
            rr.problems_sampled = len({s.get("problem_id") for s in samples})
            pols = {str(s.get("policy")) for s in samples if s.get("policy") is not None}
            rr.policy = ssum.get("policy") or (", ".join(sorted(pols)) or None)
        esum = completed.get(f"{key}/execute", {})
        ex = esum if _has(esum, "problems_with_signal", "statuses") else verdict_counts(_rows(d.verdicts(i)))
        rr.verdicts, rr.passed, rr.statuses = int(ex["verdicts"]), int(ex["passed"]), dict(ex["statuses"])
        rr.problems_all_pass, rr.problems_none_pass = int(ex["problems_all_pass"]), int(ex["problems_none_pass"])
        rr.problems_with_signal = int(ex["problems_with_signal"])
        prefs = _rows(d.preferences(i))
        psum = completed.get(f"{key}/preferences") or {}
        if _has(psum, "records_written", "format", "desirable"):
            rr.records = int(psum["records_written"])
            if psum["format"] == "paired":
                rr.pairs = rr.records
            else:  # an objective that learns from passing samples only writes the desirable ones
                rr.desirable = int(psum["desirable"])
                rr.undesirable = rr.records - rr.desirable
        else:
            rr.records = len(prefs)
            if prefs and "chosen" in prefs[0]:
                rr.pairs = len(prefs)
            else:
                rr.desirable = sum(bool(p.get("label")) for p in prefs)
                rr.undesirable = rr.records - rr.desirable
        rr.examples = _examples(prefs)
        tsum = completed.get(f"{key}/train")
        rr.trained = tsum is not None and not tsum.get("skipped")
        rr.train_skipped = bool(tsum and tsum.get("skipped"))
        if tsum and "health_ok" in tsum:
            rr.health = [w for w in str(tsum.get("health_warnings") or "").split("; ") if w]
        if "truncated" in psum:
            rr.truncated = (int(psum["truncated"]), int(psum.get("dropped_truncated") or 0))
        rr.log_history = find_log_history(d.checkpoint(i))
        rr.eval = _read_eval(d.eval_json(i))
        for stage, s in completed.items():
            if stage.startswith(f"{key}/") and "seconds" in s:
                rr.seconds[stage.split("/", 1)[1]] = float(s["seconds"])
        run.rounds.append(rr)
    return run
