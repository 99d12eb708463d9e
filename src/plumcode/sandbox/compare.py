"""Output comparison, matching the graders people report numbers with.

- :func:`call_output_matches` is EvalPlus's ``unsafe_execute`` rule (exact ``==`` first; floats
  within ``atol`` with ``rtol=1e-7`` like ``np.allclose``), in pure Python so the judge needs
  no numpy.
- :func:`stdio_output_matches` is LiveCodeBench's ``grade_stdio`` rule (per line, stripped;
  lines that differ may still match token by token as decimals).

Both only ever see trusted plain values (decoded and type-checked by the judge), so ``==``
here never runs candidate code.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any


def is_floats(x: Any) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return False


def _isclose(a: Any, b: Any, rtol: float, atol: float) -> bool:
    """numpy.isclose for one pair of numbers (bools/ints promote to float; strings raise)."""
    if isinstance(a, (str, bytes)) or isinstance(b, (str, bytes)) or a is None or b is None:
        raise TypeError("not numeric")
    if isinstance(a, complex) or isinstance(b, complex):
        a, b = complex(a), complex(b)
        return abs(a - b) <= atol + rtol * abs(b)
    a, b = float(a), float(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return False
    return abs(a - b) <= atol + rtol * abs(b)


def _shape(x: Any) -> tuple:
    if isinstance(x, (list, tuple)):
        inner = {_shape(i) for i in x}
        if len(inner) > 1:
            raise ValueError("ragged")
        return (len(x),) + (inner.pop() if inner else ())
    return ()


def _flat(x: Any) -> list:
    if isinstance(x, (list, tuple)):
        return [y for i in x for y in _flat(i)]
    return [x]


def allclose(out: Any, exp: Any, rtol: float = 1e-07, atol: float = 1e-08) -> bool:
    """``np.allclose`` on nested lists/tuples of numbers, including scalar broadcasting."""
    so, se = _shape(out), _shape(exp)
    fo, fe = _flat(out), _flat(exp)
    if so != se:
        if so == ():
            fo = fo * len(fe)
        elif se == ():
            fe = fe * len(fo)
        else:
            raise ValueError("shapes differ")
    return all(_isclose(a, b, rtol, atol) for a, b in zip(fo, fe, strict=True))


def call_output_matches(out: Any, exp: Any, atol: float = 0.0) -> bool:
    """True iff EvalPlus would accept ``out`` for expected ``exp``."""
    try:
        exact = out == exp
        if type(exact) is not bool:
            return False
        if atol == 0 and is_floats(exp):
            atol = 1e-6
        if not exact and atol != 0:
            if type(out) is not type(exp):
                return False
            if isinstance(exp, (list, tuple)) and len(out) != len(exp):
                return False
            return allclose(out, exp, rtol=1e-07, atol=atol)
        return exact
    except Exception:  # noqa: BLE001 - EvalPlus counts any exception in the check as a failure
        return False


def _lines(s: str) -> list[str]:
    return [ln.strip() for ln in s.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(t) for t in line.split()]
    except (InvalidOperation, ValueError):
        return None


def stdio_output_matches(out: str, exp: str) -> bool:
    """LiveCodeBench's stdio rule: same number of stripped lines, each equal as text or as a
    sequence of decimal numbers."""
    a, b = _lines(out), _lines(exp)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        dx, dy = _decimals(x), _decimals(y)
        if dx is None or dy is None or dx != dy:
            return False
    return True
