"""Shared fixtures: small problems, a canned test-writer backend, the execution runner."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from plumcode.generation.base import Completion, Prompt, SamplingParams
from plumcode.problems.schema import Problem, TestCase
from plumcode.testgen.execution import default_runner


class CannedBackend:
    """A test writer whose answers are fixed per prompt kind (tests / inputs): the parsing and
    validation code under test is real; only the LM is replaced."""

    name = "canned"

    def __init__(self, tests: str | dict[str, str], inputs: str | dict[str, str] = ""):
        self.tests, self.inputs = tests, inputs
        self.calls: list[tuple[list[Prompt], SamplingParams]] = []

    def identity(self) -> dict:
        return {"backend": "canned", "model": "canned-v1"}

    def _pick(self, table: str | dict[str, str], text: str) -> str:
        if isinstance(table, str):
            return table
        return next((v for k, v in table.items() if k in text), "")

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        self.calls.append((list(prompts), params))
        out = []
        for p in prompts:
            text = p if isinstance(p, str) else p[-1]["content"]
            inputs = "test inputs" in text or "example calls" in text or "valid stdin inputs" in text
            out.append([Completion(self._pick(self.inputs if inputs else self.tests, text))
                        for _ in range(params.n)])
        return out

    def close(self) -> None:
        pass


ADD_REF = "def add(a, b):\n    return a + b\n"


@pytest.fixture
def add_problem() -> Problem:
    return Problem("t/add", "Return the sum of two numbers a and b.",
                   prompt='def add(a, b):\n    """Return a + b."""\n', entry_point="add",
                   reference_solution=ADD_REF,
                   tests=[TestCase("call", args=(1, 2), expected=3), TestCase("call", args=(-1, 1), expected=0),
                          TestCase("call", args=(10, 5), expected=15)])


@pytest.fixture
def stdio_problem() -> Problem:
    return Problem("t/sum-stdin", "Read two integers on one line and print their sum.", entry_point=None,
                   reference_solution="a, b = map(int, input().split())\nprint(a + b)\n")


@pytest.fixture
def canned():
    """The CannedBackend class (test modules here are not importable as a package)."""
    return CannedBackend


@pytest.fixture(scope="session")
def runner():
    return default_runner(timeout_s=2.0)
