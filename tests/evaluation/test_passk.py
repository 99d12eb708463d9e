from __future__ import annotations

from math import comb

import pytest

from plumcode.evaluation import pass_at_k, per_problem_pass_at_k


def test_hand_computed_values() -> None:
    # pass@k = 1 - C(n-c, k) / C(n, k)
    assert per_problem_pass_at_k(10, 3, (1,)) == {"pass@1": pytest.approx(0.3)}
    assert per_problem_pass_at_k(5, 2, (2,))["pass@2"] == pytest.approx(1 - 3 / 10)  # C(3,2)/C(5,2)
    assert per_problem_pass_at_k(10, 3, (10,))["pass@10"] == 1.0  # n - c < k
    assert per_problem_pass_at_k(4, 0, (1, 2))["pass@2"] == 0.0
    assert per_problem_pass_at_k(20, 5, (10,))["pass@10"] == pytest.approx(1 - comb(15, 10) / comb(20, 10))
    # mean over problems; k only where every problem has n >= k
    got = pass_at_k([10, 10], [3, 0], ks=(1, 10, 100))
    assert got == {"pass@1": pytest.approx(0.15), "pass@10": pytest.approx(0.5)}
    assert pass_at_k([1, 1, 1, 1], [1, 0, 1, 1]) == {"pass@1": 0.75}
    assert pass_at_k([], []) == {}
    assert "pass@10" not in pass_at_k([10, 9], [1, 1])


def test_matches_evalplus_estimator() -> None:
    evalplus_eval = pytest.importorskip("evalplus.eval")
    import numpy as np

    n, c = [200, 200, 57, 13], [0, 17, 57, 2]
    for k in (1, 10):
        assert pass_at_k(n, c, (k,))[f"pass@{k}"] == pytest.approx(
            float(np.mean(evalplus_eval.estimate_pass_at_k(n, c, k))), abs=1e-12)
