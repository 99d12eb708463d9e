"""Bootstrap CIs of pass@1 deltas: checked against a plain numpy resampling loop."""

import numpy as np
import pytest

from plumcode.report.stats import averaged_paired_bootstrap, paired_bootstrap


def _numpy_stratified(pairs, n=4000, seed=1):
    rng = np.random.default_rng(seed)
    ds = [100.0 * (np.asarray(a, float) - np.asarray(b, float)) for a, b in pairs]
    means = [np.mean([d[rng.integers(0, len(d), len(d))].mean() for d in ds]) for _ in range(n)]
    return np.percentile(means, [2.5, 97.5])


def _scores(rng, n, p):
    return (rng.random(n) < p).astype(float).tolist()


def test_averaged_ci_matches_a_plain_stratified_resampling():
    rng = np.random.default_rng(0)
    he = (_scores(rng, 164, 0.6), _scores(rng, 164, 0.5))
    mbpp = (_scores(rng, 378, 0.45), _scores(rng, 378, 0.45))
    d = averaged_paired_bootstrap([he, mbpp])
    want = (paired_bootstrap(*he).delta + paired_bootstrap(*mbpp).delta) / 2
    assert d.delta == pytest.approx(want)
    assert d.n == 164 + 378
    low, high = _numpy_stratified([he, mbpp])
    assert d.low == pytest.approx(low, abs=0.6) and d.high == pytest.approx(high, abs=0.6)
    assert d.low < d.delta < d.high
    # the small benchmark keeps its weight: the average's CI is narrower than HumanEval's alone
    he_only = paired_bootstrap(*he)
    assert d.high - d.low < he_only.high - he_only.low


def test_single_benchmark_is_the_paired_bootstrap():
    rng = np.random.default_rng(3)
    a, b = _scores(rng, 100, 0.5), _scores(rng, 100, 0.4)
    assert averaged_paired_bootstrap([(a, b)]) == paired_bootstrap(a, b)
    low, high = _numpy_stratified([(a, b)])
    d = paired_bootstrap(a, b)
    assert d.low == pytest.approx(low, abs=1.0) and d.high == pytest.approx(high, abs=1.0)


def test_no_spread_gives_a_point_interval_and_bad_input_is_refused():
    d = averaged_paired_bootstrap([([1.0, 1.0], [0.0, 0.0]), ([0.0], [0.0])])
    assert (d.delta, d.low, d.high) == (50.0, 50.0, 50.0)
    with pytest.raises(ValueError, match="equal-length"):
        averaged_paired_bootstrap([([1.0], [1.0, 0.0])])
    with pytest.raises(ValueError, match="at least one"):
        averaged_paired_bootstrap([])
