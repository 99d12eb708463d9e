"""Uncertainty of pass@1 differences between two policies on the same benchmark problems.

Two arms evaluated on the same problems are paired: resampling problems (not samples) with
replacement and recomputing the mean difference gives a confidence interval that accounts for
which problems are hard. ``scipy.stats.bootstrap`` does the resampling (percentile method; BCa
degenerates on the many ties of 0/1 outcomes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Delta:
    """``arm - base`` in percentage points, with its paired-bootstrap confidence interval."""

    delta: float
    low: float
    high: float
    n: int
    confidence: float

    def to_json(self) -> dict:
        return {"delta": round(self.delta, 2), "low": round(self.low, 2), "high": round(self.high, 2),
                "n": self.n, "confidence": self.confidence}


def paired_bootstrap(arm: Sequence[float], base: Sequence[float], *, confidence: float = 0.95,
                     n_resamples: int = 10_000, seed: int = 0) -> Delta:
    """CI of ``mean(arm) - mean(base)`` (x100) over paired per-problem scores in [0, 1]."""
    return averaged_paired_bootstrap([(arm, base)], confidence=confidence, n_resamples=n_resamples, seed=seed)


def averaged_paired_bootstrap(pairs: Sequence[tuple[Sequence[float], Sequence[float]]], *,
                              confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0) -> Delta:
    """CI of the unweighted average over benchmarks of ``mean(arm) - mean(base)`` (x100).

    A goal stated on an average of benchmarks (e.g. HumanEval+ and MBPP+) needs its own interval:
    each benchmark's problems are resampled separately (a stratified bootstrap), so the smaller
    benchmark keeps its weight in every resample. ``n`` is the total number of problems."""
    import numpy as np
    from scipy.stats import bootstrap

    if not pairs:
        raise ValueError("need at least one benchmark's paired scores")
    ds = []
    for arm, base in pairs:
        a, b = np.asarray(arm, dtype=float), np.asarray(base, dtype=float)
        if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
            raise ValueError(f"paired scores must be two equal-length non-empty lists, got {a.shape} and {b.shape}")
        ds.append(100.0 * (a - b))
    mean = float(np.mean([d.mean() for d in ds]))
    n = sum(len(d) for d in ds)
    if all(np.all(d == d[0]) for d in ds):  # no spread: every resample gives the same mean
        return Delta(mean, mean, mean, n, confidence)

    def stat(*xs, axis=-1):
        return np.mean([x.mean(axis=axis) for x in xs], axis=0)

    res = bootstrap(tuple(ds), stat, paired=False, vectorized=True, confidence_level=confidence,
                    n_resamples=n_resamples, method="percentile", random_state=np.random.default_rng(seed))
    ci = res.confidence_interval
    return Delta(mean, float(ci.low), float(ci.high), n, confidence)


def paired_scores(arm: Mapping[str, float], base: Mapping[str, float]) -> tuple[list[float], list[float]]:
    """Per-problem scores of both arms on the problems both were scored on, in one order.
    Raises when the arms were scored on different problem sets (not a paired comparison)."""
    if set(arm) != set(base):
        only = sorted(set(arm) ^ set(base))
        raise ValueError(f"arms scored on different problems ({len(only)} differ, e.g. {only[:3]})")
    ids = sorted(arm)
    return [arm[i] for i in ids], [base[i] for i in ids]
