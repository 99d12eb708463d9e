"""Decontamination: drop training problems that overlap a benchmark.

A training problem is dropped when one of its word n-grams (default 13, as in the GPT-3/PLUM-era
convention) also occurs in a benchmark problem's instruction, prompt or reference code, or when
its normalised instruction equals a benchmark instruction (short instructions have no 13-gram).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from plumcode.problems.schema import Problem

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    for i in range(len(tokens) - n + 1):
        yield tuple(tokens[i:i + n])


def _texts(p: Problem, code: bool) -> Iterable[tuple[str, str]]:
    yield "instruction", p.instruction
    if code:
        if p.prompt:
            yield "prompt", p.prompt
        if p.reference_solution:
            yield "code", p.reference_solution
        out = p.metadata.get("output") if isinstance(p.metadata, dict) else None
        if isinstance(out, str):
            yield "code", out


@dataclass
class Dropped:
    problem: Problem
    benchmark_id: str
    reason: str  # e.g. "13-gram in instruction: 'write a function to ...'"

    def to_json(self) -> dict:
        return {"id": self.problem.id, "benchmark_id": self.benchmark_id, "reason": self.reason}


def decontaminate(train_problems: Iterable[Problem], benchmark_problems: Iterable[Problem], n: int = 13, *,
                  code: bool = True) -> tuple[list[Problem], list[Dropped]]:
    """Split ``train_problems`` into (kept, dropped-with-reason) by n-gram overlap with benchmarks."""
    index: dict[tuple[str, ...], str] = {}
    exact: dict[str, str] = {}
    for b in benchmark_problems:
        exact.setdefault(" ".join(words(b.instruction)), b.id)
        for _, t in _texts(b, code):
            for g in ngrams(words(t), n):
                index.setdefault(g, b.id)
    kept: list[Problem] = []
    dropped: list[Dropped] = []
    for p in train_problems:
        hit = None
        norm = " ".join(words(p.instruction))
        if norm and norm in exact:
            hit = Dropped(p, exact[norm], "identical instruction")
        else:
            for where, t in _texts(p, code):
                for g in ngrams(words(t), n):
                    if g in index:
                        hit = Dropped(p, index[g], f"{n}-gram in {where}: {' '.join(g)!r}")
                        break
                if hit:
                    break
        if hit:
            dropped.append(hit)
        else:
            kept.append(p)
    return kept, dropped
