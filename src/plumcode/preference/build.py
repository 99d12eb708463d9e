"""Executed policy samples -> TRL preference records (paired for DPO, unpaired for KTO).

A sample is *desirable* when its verdict passed every test, *undesirable* otherwise. Records use
TRL's own dataset formats so ``datasets.load_dataset("json", ...)`` feeds DPOTrainer/KTOTrainer
directly: conversational when the sample's prompt is a list of chat messages (completions become
``[{"role": "assistant", "content": ...}]``), standard (plain strings) otherwise. Metadata columns
(ids, statuses, pass fractions, reasons) ride along; trainers ignore them, users filter on them.
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from plumcode.io import DataError

Format = Literal["unpaired", "paired"]
Pairing = Literal["all", "random", "best_worst"]
OneSided = Literal["skip", "unpaired"]
Balance = Literal["none", "weights", "downsample"]
Truncated = Literal["drop", "open", "keep"]


@dataclass
class PreferenceConfig:
    """How verdicts become preference records. Defaults follow PLUM (KTO on pass/fail)."""

    format: Format = "unpaired"
    # paired: which (chosen, rejected) pairs to build per problem, and at most how many
    pairing: Pairing = "all"
    max_pairs_per_problem: int = 8
    # best_worst: allow a partially passing sample to be "chosen" over a worse one when no sample
    # passes everything (default off: PLUM's chosen samples pass all tests)
    partial_credit: bool = False
    # unpaired: cap per problem and class (0 = no cap)
    max_per_problem: int = 0
    # problems where every sample passes or every sample fails: no contrast inside the problem
    one_sided: OneSided = "unpaired"
    # KTO class balance: "weights" computes desirable/undesirable weights (TRL's KTOConfig fields),
    # "downsample" drops majority-class records down to ``max_ratio`` : 1
    balance: Balance = "weights"
    max_ratio: float = 1.0
    dedup: bool = True
    # failure reasons (verdict statuses) to drop entirely, e.g. ("timeout",) if timeouts are flaky
    exclude_reasons: tuple[str, ...] = ()
    # which sample field is the training completion: the raw model text (on-policy) or the code
    completion_field: Literal["completion", "code"] = "completion"
    # require at least this many tests in a verdict for it to count (0-test verdicts carry no signal)
    min_tests: int = 1
    # samples cut at the token limit (finish_reason "length"): rendered through the chat template they
    # would end in an end-of-turn the model never produced, and since they nearly always fail, training
    # pushes the stop token down exactly where the model was still writing (length drift). "drop": no
    # record (TRL GRPO's mask_truncated_completions); "open": a record marked ``truncated`` that the
    # trainer scores without the closing tokens; "keep": the old behaviour, closed like a finished answer
    truncated: Truncated = "drop"
    seed: int = 0


@dataclass
class PreferenceSummary:
    samples: int = 0
    verdicts: int = 0
    joined: int = 0
    samples_without_verdict: int = 0
    verdicts_without_sample: int = 0
    dropped_no_tests: int = 0
    dropped_excluded_reason: int = 0
    truncated: int = 0  # joined samples cut at the token limit
    dropped_truncated: int = 0
    duplicates_removed: int = 0
    inconsistent_duplicates: int = 0
    problems: int = 0
    problems_with_signal: int = 0
    problems_all_pass: int = 0
    problems_none_pass: int = 0
    records: int = 0
    pairs: int = 0
    desirable: int = 0
    undesirable: int = 0
    downsampled: int = 0
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    reasons: dict[str, int] = field(default_factory=dict)
    format: str = "unpaired"

    def to_json(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        s = self
        out = [
            f"samples {s.samples}, verdicts {s.verdicts}, joined {s.joined} "
            f"(no verdict {s.samples_without_verdict}, no sample {s.verdicts_without_sample})",
            f"problems {s.problems}: with signal {s.problems_with_signal}, all-pass {s.problems_all_pass}, "
            f"none-pass {s.problems_none_pass}",
            f"dedup removed {s.duplicates_removed} (inconsistent verdicts on identical code: "
            f"{s.inconsistent_duplicates}); dropped: no tests {s.dropped_no_tests}, "
            f"excluded reason {s.dropped_excluded_reason}, cut at the token limit {s.dropped_truncated} "
            f"(of {s.truncated} cut)",
        ]
        if s.format == "paired":
            out.append(f"pairs {s.pairs}")
        else:
            out.append(f"unpaired records {s.records}: desirable {s.desirable}, undesirable {s.undesirable} "
                       f"(downsampled {s.downsampled}); weights desirable {s.desirable_weight:.3f}, "
                       f"undesirable {s.undesirable_weight:.3f}")
        out.append("failure reasons: " + (", ".join(f"{k} {v}" for k, v in sorted(s.reasons.items())) or "none"))
        return out


@dataclass
class _Cand:
    problem_id: str
    sample_id: str
    prompt: Any
    text: str
    passed: bool
    status: str
    n_passed: int
    n_tests: int
    key: str
    truncated: bool = False

    @property
    def frac(self) -> float:
        return self.n_passed / self.n_tests if self.n_tests else 0.0


def normalize_code(code: str) -> str:
    """Canonical form for dedup: AST round-trip drops comments and formatting; docstrings too."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return re.sub(r"\s+", " ", code).strip()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and body
                and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def _is_chat(prompt: Any) -> bool:
    return isinstance(prompt, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in prompt)


def _completion(prompt: Any, text: str) -> Any:
    return [{"role": "assistant", "content": text}] if _is_chat(prompt) else text


def _verdict_counts(v: dict) -> tuple[int, int]:
    tests = v.get("tests") or []
    n_tests = int(v["n_tests"]) if "n_tests" in v else len(tests)
    n_passed = int(v["n_passed"]) if "n_passed" in v else sum(t.get("status") == "pass" for t in tests)
    return n_passed, n_tests


def _candidates(samples: Iterable[dict], verdicts: Iterable[dict], cfg: PreferenceConfig,
                summ: PreferenceSummary) -> dict[str, list[_Cand]]:
    by_id: dict[str, dict] = {}
    for i, s in enumerate(samples, 1):
        for k in ("problem_id", "sample_id", "prompt"):
            if k not in s:
                raise DataError(f"sample record {i} lacks {k!r}", field=k)
        by_id[str(s["sample_id"])] = s
    summ.samples = len(by_id)
    seen: set[str] = set()
    groups: dict[str, list[_Cand]] = defaultdict(list)
    for i, v in enumerate(verdicts, 1):
        for k in ("sample_id", "passed", "status"):
            if k not in v:
                raise DataError(f"verdict record {i} lacks {k!r}", field=k)
        summ.verdicts += 1
        sid = str(v["sample_id"])
        s = by_id.get(sid)
        if s is None:
            summ.verdicts_without_sample += 1
            continue
        if sid in seen:  # a rerun appended the same verdict again: keep the first
            continue
        seen.add(sid)
        summ.joined += 1
        n_passed, n_tests = _verdict_counts(v)
        if n_tests < cfg.min_tests:
            summ.dropped_no_tests += 1
            continue
        truncated = s.get("finish_reason") == "length"
        summ.truncated += truncated
        if truncated and cfg.truncated == "drop":
            summ.dropped_truncated += 1
            continue
        passed = bool(v["passed"]) and n_passed == n_tests
        status = "pass" if passed else (str(v["status"]) if v["status"] != "pass" else "fail")
        if not passed and status in cfg.exclude_reasons:
            summ.dropped_excluded_reason += 1
            continue
        text = s.get(cfg.completion_field)
        if not isinstance(text, str):
            text = s.get("code") if cfg.completion_field == "completion" else None
        if not isinstance(text, str):
            raise DataError(f"sample {sid!r} has no string {cfg.completion_field!r}", field=cfg.completion_field)
        code = s.get("code") if isinstance(s.get("code"), str) else text
        groups[str(s["problem_id"])].append(_Cand(str(s["problem_id"]), sid, s["prompt"], text, passed, status,
                                                  n_passed, n_tests, normalize_code(code),
                                                  truncated and cfg.truncated == "open"))
    summ.samples_without_verdict = len(by_id) - len(seen)
    return groups


def _dedup(cands: list[_Cand], summ: PreferenceSummary) -> list[_Cand]:
    by_key: dict[str, list[_Cand]] = defaultdict(list)
    for c in cands:
        by_key[c.key].append(c)
    out = []
    for group in by_key.values():
        if len({c.passed for c in group}) > 1:  # same code, different verdicts: flaky, trust neither
            summ.inconsistent_duplicates += len(group)
            continue
        out.append(group[0])
        summ.duplicates_removed += len(group) - 1
    out.sort(key=lambda c: cands.index(c))
    return out


def _pair_record(c: _Cand, r: _Cand) -> dict:
    return {
        "prompt": c.prompt, "chosen": _completion(c.prompt, c.text), "rejected": _completion(r.prompt, r.text),
        "problem_id": c.problem_id, "chosen_id": c.sample_id, "rejected_id": r.sample_id,
        "chosen_status": c.status, "rejected_status": r.status, "reason": r.status,
        "chosen_pass_fraction": c.frac, "rejected_pass_fraction": r.frac, "n_tests": c.n_tests,
        "chosen_truncated": c.truncated, "rejected_truncated": r.truncated,
    }


def _unpaired_record(c: _Cand) -> dict:
    return {
        "prompt": c.prompt, "completion": _completion(c.prompt, c.text), "label": c.passed,
        "problem_id": c.problem_id, "sample_id": c.sample_id, "status": c.status,
        "reason": "" if c.passed else c.status, "pass_fraction": c.frac, "n_tests": c.n_tests,
        "truncated": c.truncated,
    }


def _pairs(cands: list[_Cand], cfg: PreferenceConfig, rng: random.Random) -> list[tuple[_Cand, _Cand]]:
    good = [c for c in cands if c.passed]
    bad = [c for c in cands if not c.passed]
    k = cfg.max_pairs_per_problem
    if cfg.pairing == "best_worst":
        ranked = sorted(cands, key=lambda c: (c.passed, c.frac), reverse=True)
        if not cfg.partial_credit:
            winners, losers = good, sorted(bad, key=lambda c: c.frac)
        else:
            winners, losers = ranked, ranked[::-1]
        out = []
        for w, lo in zip(winners, losers, strict=False):
            if len(out) >= k or (w.passed, w.frac) <= (lo.passed, lo.frac):
                break
            out.append((w, lo))
        return out
    if not good or not bad:
        return []
    if cfg.pairing == "random":
        allp = [(g, b) for g in good for b in bad]
        rng.shuffle(allp)
        return allp[:k]
    # "all", capped: diagonal order uses every sample before reusing one, so a cap keeps variety
    good, bad = good[:], bad[:]
    rng.shuffle(good)
    rng.shuffle(bad)
    n = max(len(good), len(bad))
    allp = []
    for d in range(n):
        for i in range(n):
            if i < len(good) and (i + d) % n < len(bad):
                allp.append((good[i], bad[(i + d) % n]))
    return allp[:k] if k else allp


def build_preferences(samples: Iterable[dict], verdicts: Iterable[dict],
                      config: PreferenceConfig | None = None) -> tuple[list[dict], PreferenceSummary]:
    """Join samples with verdicts and build TRL preference records; returns ``(records, summary)``."""
    cfg = config or PreferenceConfig()
    if cfg.format not in ("unpaired", "paired"):
        raise ValueError(f"format must be 'unpaired' or 'paired', not {cfg.format!r}")
    if cfg.truncated not in ("drop", "open", "keep"):
        raise ValueError(f"truncated must be drop|open|keep, not {cfg.truncated!r}")
    rng = random.Random(cfg.seed)
    summ = PreferenceSummary(format=cfg.format)
    groups = _candidates(samples, verdicts, cfg, summ)
    records: list[dict] = []
    reasons: Counter[str] = Counter()
    for pid in sorted(groups):
        cands = _dedup(groups[pid], summ) if cfg.dedup else groups[pid]
        if not cands:
            continue
        summ.problems += 1
        n_good = sum(c.passed for c in cands)
        one_sided = n_good in (0, len(cands))
        if n_good == len(cands):
            summ.problems_all_pass += 1
        elif n_good == 0:
            summ.problems_none_pass += 1
        else:
            summ.problems_with_signal += 1
        if cfg.format == "paired":
            if one_sided and not (cfg.partial_credit and cfg.pairing == "best_worst"):
                continue
            for c, r in _pairs(cands, cfg, rng):
                records.append(_pair_record(c, r))
                reasons[r.status] += 1
            continue
        if one_sided and cfg.one_sided == "skip":
            continue
        kept = cands
        if cfg.max_per_problem:
            g = [c for c in cands if c.passed][: cfg.max_per_problem]
            b = [c for c in cands if not c.passed][: cfg.max_per_problem]
            kept = [c for c in cands if c in g or c in b]
        for c in kept:
            records.append(_unpaired_record(c))
            if not c.passed:
                reasons[c.status] += 1
    if cfg.format == "unpaired":
        records = _balance(records, cfg, rng, summ)
        summ.desirable = sum(r["label"] for r in records)
        summ.undesirable = len(records) - summ.desirable
        reasons = Counter(r["status"] for r in records if not r["label"])
    else:
        summ.pairs = len(records)
    summ.records = len(records)
    summ.reasons = dict(reasons)
    return records, summ


def _balance(records: list[dict], cfg: PreferenceConfig, rng: random.Random, summ: PreferenceSummary) -> list[dict]:
    n_d = sum(r["label"] for r in records)
    n_u = len(records) - n_d
    if cfg.balance == "weights" and n_d and n_u:
        # KTO paper Eq. (8): lambda_D * n_D / (lambda_U * n_U) in [1, 4/3]; up-weight the minority class to 1:1
        if n_d < n_u:
            summ.desirable_weight = round(n_u / n_d, 4)
        else:
            summ.undesirable_weight = round(n_d / n_u, 4)
    elif cfg.balance == "downsample" and n_d and n_u:
        major = n_d > n_u
        limit = int(min(n_d, n_u) * cfg.max_ratio)
        idx = [i for i, r in enumerate(records) if r["label"] == major]
        if len(idx) > limit:
            drop = set(rng.sample(idx, len(idx) - limit))
            summ.downsampled = len(drop)
            records = [r for i, r in enumerate(records) if i not in drop]
    elif cfg.balance not in ("none", "weights", "downsample"):
        raise ValueError(f"balance must be none|weights|downsample, not {cfg.balance!r}")
    return records
