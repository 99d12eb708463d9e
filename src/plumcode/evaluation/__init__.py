"""Benchmark evaluation: pass@k (unbiased estimator) over sandboxed execution."""

from plumcode.evaluation.core import (
           EvalConfig,
           EvalResult,
           ProblemResult,
           SampleResult,
           canonical_samples,
           evaluate,
)
from plumcode.evaluation.passk import pass_at_k, per_problem_pass_at_k

__all__ = ["EvalConfig", "EvalResult", "ProblemResult", "SampleResult", "canonical_samples", "evaluate",
           "pass_at_k", "per_problem_pass_at_k"]
