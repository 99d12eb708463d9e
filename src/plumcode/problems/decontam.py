"""Decontamination: drop training problems that overlap a benchmark.

A training problem is dropped when one of its word 13-grams (the GPT-3 convention) also occurs in
a benchmark problem's instruction or prompt, when a long run of its code (30 words) occurs in a
benchmark's reference code, or when its normalised instruction equals a benchmark instruction
(short instructions have no 13-gram).
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
    """Word n-grams, minus runs of bare numbers/letters ("1 2 3 ... 13", "a b c ... m")."""
    for i in range(len(tokens) - n + 1):
        g = tuple(tokens[i:i + n])
        if not all(len(w) == 1 or w.isdigit() for w in g):
            yield g


def _texts(p: Problem, code: bool) -> Iterable[tuple[str, str]]:
    yield "instruction", p.instruction
    if p.prompt:
        yield "instruction", p.prompt  # HumanEval stubs carry the task text as a docstring
    if code:
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
                  code: bool = True, code_n: int = 30) -> tuple[list[Problem], list[Dropped]]:
    """Split ``train_problems`` into (kept, dropped-with-reason) by n-gram overlap with benchmarks.

    Text (instructions, prompts) is compared with ``n``-grams. Code (reference solutions, a
    dataset's own answers) with ``code_n``-grams against benchmark code only: 13-grams of code
    match textbook boilerplate (bubble sort loops, trial-division primality) across unrelated
    tasks, while a copied solution still shares long runs.
    """
    index: dict[tuple[str, ...], str] = {}
    code_index: dict[tuple[str, ...], str] = {}
    exact: dict[str, str] = {}
    for b in benchmark_problems:
        exact.setdefault(" ".join(words(b.instruction)), b.id)
        for where, t in _texts(b, code):
            if where == "code":
                for g in ngrams(words(t), code_n):
                    code_index.setdefault(g, b.id)
            else:
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
                k, idx = (code_n, code_index) if where == "code" else (n, index)
                for g in ngrams(words(t), k):
                    if g in idx:
                        hit = Dropped(p, idx[g], f"{k}-gram in {where}: {' '.join(g)!r}")
                        break
                if hit:
                    break
        if hit:
            dropped.append(hit)
        else:
            kept.append(p)
    return kept, dropped
