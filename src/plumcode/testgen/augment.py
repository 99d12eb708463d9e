"""Type-aware mutation of LM-proposed call inputs (the EvalPlus idea), for the ``inputs`` mode.

A small test writer proposes few and mostly "typical" inputs, so a wrong sample that only fails on
an edge (empty list, 0, a single character, a duplicate element) passes every synthetic test. Here
seed inputs (the LM's proposals on which the reference succeeded) are mutated by type; the
reference then computes the expected outputs, exactly as for the LM's own proposals.

Everything is a pure function of typed Python values and a seed (deterministic; sets are walked in
``repr`` order, never hash order). A mutation never changes an argument's type nor the number of
arguments, so the function's arity and argument kinds are those of the seeds.

Out-of-domain inputs are the risk: the reference may *return* something on them (no contract to
make it raise), and a correct sample that behaves differently there would then fail. Two cheap
guards that use only the seeds (never policy samples, which would leak labels):

- :class:`Domain`: per argument path, what the seeds show (characters used by strings, whether
  numbers were ever negative, magnitudes and lengths, fixed-length tuples); a mutant must stay
  inside it (e.g. a binary string stays binary, non-negative counts stay non-negative). Where the
  problem has an EvalPlus input contract, the contracted reference rejects invalid inputs itself
  and only the size bounds apply (``guard=False``): the contract is the better statement of the
  domain (MBPP+'s ``index_minimum`` takes tuples of length >= 2, not only the pairs the LM wrote).
- :func:`output_type_matches`: the caller keeps an augmented input only if the reference's output
  has a type it also returns on the seeds (``None`` where ints were returned means out of domain).

Stdio problems are not augmented (their input is one unstructured string).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from plumcode import values

Path = tuple[Any, ...]  # argument index, then "*" (container element), "k"/"v" (dict key/value)
_NO = object()  # "this mutation does not apply"
_SEQ = (list, tuple)


def input_key(args: tuple) -> str:
    """The dedup key of an argument tuple (the same form as ``parse.ProposedInput.key``)."""
    return json.dumps(values.encode(args), sort_keys=True)


def _ordered(v: set | frozenset) -> list:
    return sorted(v, key=repr)


# -- what the seeds show of the domain ------------------------------------------------------------


@dataclass
class _Seen:
    chars: set[str] = field(default_factory=set)
    min_num: float = math.inf
    max_abs: float = 0.0
    lengths: set[int] = field(default_factory=set)
    pool: dict[str, list] = field(default_factory=dict)  # type name -> values seen (for "pool" mutations)


class Domain:
    """Per argument path, what the seeds show; :meth:`fits` says whether a mutant stays inside."""

    def __init__(self, seeds: Iterable[tuple], guard: bool = True):
        self.guard = guard  # False: only the size bounds (the problem's contract says what is valid)
        self._at: dict[Path, _Seen] = {}
        for args in seeds:
            for i, a in enumerate(args):
                self._walk(a, (i,))

    def _walk(self, v: Any, path: Path) -> None:
        s = self._at.setdefault(path, _Seen())
        t = type(v)
        lst = s.pool.setdefault(t.__name__, [])
        if len(lst) < 64 and v not in lst:
            lst.append(v)
        if t is str:
            s.chars.update(v)
            s.lengths.add(len(v))
        elif t in (int, float):
            s.min_num = min(s.min_num, v)
            s.max_abs = max(s.max_abs, abs(v)) if math.isfinite(v) else s.max_abs
        elif t in (list, tuple, set, frozenset):
            s.lengths.add(len(v))
            for x in (_ordered(v) if t in (set, frozenset) else v):
                self._walk(x, (*path, "*"))
        elif t is dict:
            s.lengths.add(len(v))
            for k, x in v.items():
                self._walk(k, (*path, "k"))
                self._walk(x, (*path, "v"))

    def seen(self, path: Path) -> _Seen:
        return self._at.get(path) or _Seen()

    def fixed_length(self, path: Path, t: type) -> bool:
        """Tuples of one length (a record like a point), and nested lists of one length (matrix
        rows), keep their length; top-level lists, strings, sets and dicts may grow and shrink."""
        lens = self.seen(path).lengths
        if len(lens) != 1:
            return False
        return t is tuple or (t is list and len(path) > 1)

    def fits(self, v: Any, path: Path) -> bool:
        s, t = self.seen(path), type(v)
        if t is bool:
            return True
        if t in (int, float):
            if not math.isfinite(v):
                return False
            if self.guard and s.min_num >= 0 and v < 0:  # the seeds were never negative here
                return False
            return abs(v) <= max(16.0, 4 * s.max_abs)
        if t is str:
            return (not self.guard or set(v) <= s.chars) and len(v) <= max(8, 2 * max(s.lengths, default=0))
        if t in (list, tuple, set, frozenset, dict):
            if len(v) > max(8, 2 * max(s.lengths, default=0)):
                return False
            if self.guard and self.fixed_length(path, t) and len(v) not in s.lengths:
                return False
            if t is dict:
                return all(self.fits(k, (*path, "k")) and self.fits(x, (*path, "v")) for k, x in v.items())
            return all(self.fits(x, (*path, "*")) for x in v)
        return True


# -- mutations by type ----------------------------------------------------------------------------


def _from_pool(v: Any, path: Path, dom: Domain, rng: random.Random) -> Any:
    others = [x for x in dom.seen(path).pool.get(type(v).__name__, []) if x != v]
    return rng.choice(others) if others else _NO


def _mutate_int(v: int, path: Path, dom: Domain, rng: random.Random) -> Any:
    ops: list[Callable[[], Any]] = [lambda: v + 1, lambda: v - 1, lambda: 0, lambda: -v, lambda: v * 2,
                                    lambda: v // 2, lambda: rng.choice((1, -1)),
                                    lambda: _from_pool(v, path, dom, rng)]
    return rng.choice(ops)()


def _mutate_float(v: float, path: Path, dom: Domain, rng: random.Random) -> Any:
    ops: list[Callable[[], Any]] = [lambda: v + 1.0, lambda: v - 1.0, lambda: 0.0, lambda: -v, lambda: v * 2,
                                    lambda: v / 2, lambda: float(round(v)), lambda: _from_pool(v, path, dom, rng)]
    return rng.choice(ops)()


def _mutate_str(v: str, path: Path, dom: Domain, rng: random.Random) -> Any:
    alphabet = sorted(dom.seen(path).chars) or sorted(set(v))

    def insert() -> Any:
        if not alphabet:
            return _NO
        i = rng.randrange(len(v) + 1)
        return v[:i] + rng.choice(alphabet) + v[i:]

    def delete() -> Any:
        if not v:
            return _NO
        i = rng.randrange(len(v))
        return v[:i] + v[i + 1:]

    ops: list[Callable[[], Any]] = [lambda: "", lambda: rng.choice(v) if v else _NO, lambda: v[::-1], insert,
                                    delete, lambda: v.swapcase(), lambda: _from_pool(v, path, dom, rng)]
    return rng.choice(ops)()


def _mutate_seq(v: list | tuple, path: Path, dom: Domain, rng: random.Random) -> Any:
    t, items = type(v), list(v)

    def sort() -> Any:
        try:
            return sorted(items)
        except TypeError:
            return _NO

    def drop() -> Any:
        if not items:
            return _NO
        i = rng.randrange(len(items))
        return items[:i] + items[i + 1:]

    def dup() -> Any:
        if not items:
            return _NO
        i = rng.randrange(len(items))
        return items[:i + 1] + [items[i]] + items[i + 1:]

    def elem() -> Any:
        if not items:
            return _NO
        i = rng.randrange(len(items))
        new = mutate(items[i], (*path, "*"), dom, rng)
        return _NO if new is _NO else items[:i] + [new] + items[i + 1:]

    ops: list[Callable[[], Any]] = [lambda: [], lambda: [rng.choice(items)] if items else _NO,
                                    lambda: items[::-1], sort, drop, dup, elem, elem,
                                    lambda: _from_pool(v, path, dom, rng)]
    out = rng.choice(ops)()
    return out if out is _NO or type(out) is t else t(out)


def _mutate_set(v: set | frozenset, path: Path, dom: Domain, rng: random.Random) -> Any:
    t, items = type(v), _ordered(v)

    def drop() -> Any:
        if not items:
            return _NO
        i = rng.randrange(len(items))
        return t(items[:i] + items[i + 1:])

    def add_mutant() -> Any:
        if not items:
            return _NO
        new = mutate(rng.choice(items), (*path, "*"), dom, rng)
        return _NO if new is _NO else t([*items, new])

    def replace_one() -> Any:
        if not items:
            return _NO
        i = rng.randrange(len(items))
        new = mutate(items[i], (*path, "*"), dom, rng)
        return _NO if new is _NO else t(items[:i] + items[i + 1:] + [new])

    ops: list[Callable[[], Any]] = [lambda: t(), lambda: t([rng.choice(items)]) if items else _NO, drop,
                                    add_mutant, replace_one, lambda: _from_pool(v, path, dom, rng)]
    return rng.choice(ops)()


def _mutate_dict(v: dict, path: Path, dom: Domain, rng: random.Random) -> Any:
    keys = list(v)

    def drop() -> Any:
        if not keys:
            return _NO
        k = rng.choice(keys)
        return {a: b for a, b in v.items() if a != k}

    def value() -> Any:
        if not keys:
            return _NO
        k = rng.choice(keys)
        new = mutate(v[k], (*path, "v"), dom, rng)
        return _NO if new is _NO else {**v, k: new}

    def key() -> Any:  # a new entry: a mutated key with an existing value
        if not keys:
            return _NO
        k = rng.choice(keys)
        nk = mutate(k, (*path, "k"), dom, rng)
        return _NO if nk is _NO or nk in v else {**v, nk: v[k]}

    ops: list[Callable[[], Any]] = [lambda: {}, lambda: {(k := rng.choice(keys)): v[k]} if keys else _NO,
                                    drop, value, value, key, lambda: _from_pool(v, path, dom, rng)]
    return rng.choice(ops)()


_BY_TYPE: dict[type, Callable[[Any, Path, Domain, random.Random], Any]] = {
    bool: lambda v, p, d, r: not v, int: _mutate_int, float: _mutate_float, str: _mutate_str,
    list: _mutate_seq, tuple: _mutate_seq, set: _mutate_set, frozenset: _mutate_set, dict: _mutate_dict,
}


def mutate(v: Any, path: Path, dom: Domain, rng: random.Random) -> Any:
    """One type-preserving mutation of ``v`` (``_NO`` when none applies: ``None``, bytes, ...)."""
    fn = _BY_TYPE.get(type(v))
    if fn is None:
        return _NO
    try:
        out = fn(v, path, dom, rng)
    except (TypeError, ValueError, OverflowError, RecursionError):  # unhashable element, huge float, ...
        return _NO
    return out if out is _NO or type(out) is type(v) else _NO


# -- the entry point ------------------------------------------------------------------------------


def augment_inputs(seeds: Sequence[tuple], n: int, *, seed: int | str | None = 0,
                   exclude: Iterable[str] = (), guard: bool = True, tries_per_input: int = 30) -> list[tuple]:
    """Up to ``n`` new argument tuples, each one argument of a seed (or of an earlier mutant)
    mutated by type; none equal to a seed, to each other or to a key in ``exclude``.

    Deterministic given ``seed``; every result has the arity and argument types of the seed it
    came from, and stays inside the seeds' :class:`Domain` (with ``guard=False``, for problems whose
    input contract makes the reference reject invalid inputs, only inside its size bounds).
    """
    pool = [tuple(s) for s in seeds if len(s) > 0]
    if n <= 0 or not pool:
        return []
    rng = random.Random(f"augment:{seed}")
    dom = Domain(pool, guard)
    seen = set(exclude)
    for s in pool:
        try:
            seen.add(input_key(s))
        except values.UnsupportedValue:
            pass
    n_seeds = len(pool)
    out: list[tuple] = []
    for _ in range(n * tries_per_input):
        if len(out) >= n:
            break
        # half the time from the LM's own inputs, so mutants do not all drift from one lineage
        base = pool[rng.randrange(n_seeds)] if rng.random() < 0.5 else rng.choice(pool)
        i = rng.randrange(len(base))
        new = mutate(base[i], (i,), dom, rng)
        if new is _NO or type(new) is not type(base[i]) or not dom.fits(new, (i,)):
            continue
        args = (*base[:i], new, *base[i + 1:])
        try:
            k = input_key(args)
        except values.UnsupportedValue:
            continue
        if k in seen:
            continue
        seen.add(k)
        out.append(args)
        pool.append(args)
    return out


# -- the output-type guard ------------------------------------------------------------------------


def _shape(v: Any) -> tuple[str, frozenset[str]]:
    t = type(v)
    if t in (list, tuple, set, frozenset):
        return t.__name__, frozenset(type(x).__name__ for x in v)
    if t is dict:
        return "dict", frozenset(f"{type(k).__name__}:{type(x).__name__}" for k, x in v.items())
    return t.__name__, frozenset()


def output_type_matches(value: Any, seen: Sequence[Any]) -> bool:
    """Whether the reference's output on an augmented input has a type it returned on the seeds:
    the same type (an ``int`` passes where ``float`` was seen) and, for containers, element types
    among those seen. With no seed output to compare with, nothing is accepted."""
    top, elems = _shape(value)
    tops: dict[str, set[str]] = {}
    for s in seen:
        t, e = _shape(s)
        tops.setdefault(t, set()).update(e)
    if top not in tops:
        return top == "int" and "float" in tops
    return not elems or elems <= tops[top] or not tops[top]
