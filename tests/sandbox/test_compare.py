from __future__ import annotations

import math
from collections import Counter

from plumcode.sandbox.compare import allclose, call_output_matches, stdio_output_matches


def test_exact_and_types():
    assert call_output_matches(3, 3)
    assert not call_output_matches(3, 4)
    assert call_output_matches((1, 2), (1, 2))
    assert not call_output_matches([1, 2], (1, 2))  # list vs tuple is a mismatch, as in EvalPlus
    assert call_output_matches(Counter("aab"), {"a": 2, "b": 1})  # == holds, like EvalPlus
    assert call_output_matches(True, 1)  # Python equality, as in EvalPlus


def test_floats_follow_evalplus():
    assert call_output_matches(0.1 + 0.2, 0.3)  # atol forced to 1e-6 for float expectations
    assert call_output_matches([1.0000001, 2.0], [1.0, 2.0])
    assert not call_output_matches(1.001, 1.0)
    assert not call_output_matches([1.0, 2.0], (1.0, 2.0))  # type must match when not exact
    assert not call_output_matches([1.0], [1.0, 2.0])
    assert call_output_matches(1.05, 1.0, atol=0.1)
    assert not call_output_matches(1, 1.0000001)  # int vs float: exact fails, types differ
    assert not call_output_matches(float("nan"), float("nan"))
    assert call_output_matches(math.inf, math.inf)


def test_allclose_broadcast_and_errors():
    assert allclose([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0 + 1e-9]])
    assert allclose(1.0, [1.0, 1.0])
    assert not call_output_matches(["a"], [1.5])  # non-numeric in a float comparison -> failure


def test_stdio_rule():
    assert stdio_output_matches("3\n", "3")
    assert stdio_output_matches("  1 2 \n\n\n", "1 2\n")
    assert stdio_output_matches("1.50\n", "1.5\n")  # decimal token comparison
    assert not stdio_output_matches("1 2\n", "1 3\n")
    assert not stdio_output_matches("1\n2\n", "1\n")
    assert not stdio_output_matches("yes\n", "YES\n")
