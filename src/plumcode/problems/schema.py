"""The Problem record every stage shares, and its JSONL form.

One line of ``problems.jsonl``::

    {"id": "HumanEval/0",
     "instruction": "natural-language task (what a chat model is asked)",
     "prompt": "def f(x):\n    \"\"\"...\"\"\"\n" | null,      # code stub, HumanEval style
     "entry_point": "f" | null,                               # null: stdin/stdout program
     "reference_solution": "full program" | null,
     "tests": [{"kind": "assert", "code": "assert f(1) == 2"},
               {"kind": "stdio", "input": "1 2\n", "output": "3\n"},
               {"kind": "call", "args": [1], "expected": 2, "atol": 0.0}],
     "setup": "import math" | null,                           # trusted imports/helpers for tests
     "source": "humaneval+", "metadata": {...}}

``args``/``expected`` use the typed JSON of :mod:`plumcode.values` (tuples, sets, NaN ...).
Extra keys are allowed and preserved in ``metadata`` by loaders; unknown top-level keys are kept
in :attr:`Problem.extra` so round-tripping a file loses nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from plumcode import values
from plumcode.io import DataError, atomic_write_jsonl, read_jsonl

TestKind = Literal["assert", "stdio", "call"]


@dataclass(frozen=True)
class TestCase:
    """One test. ``kind`` decides which other fields matter.

    - ``assert``: ``code`` is Python run with the candidate's names in scope (may hold several
      statements, e.g. a ``check(candidate)`` function followed by its call).
    - ``stdio``: the program reads ``input`` on stdin; its stdout must equal ``output``
      (compared line by line, trailing whitespace ignored).
    - ``call``: ``entry_point(*args)`` must equal ``expected`` (floats within ``atol``).
    ``timeout_s`` overrides the sandbox's per-test timeout (e.g. derived from the reference's
    own run time, as EvalPlus does).
    """

    __test__ = False  # not a pytest class

    kind: TestKind
    code: str | None = None
    input: str | None = None
    output: str | None = None
    args: tuple = ()
    expected: Any = None
    atol: float = 0.0
    timeout_s: float | None = None

    def to_json(self) -> dict:
        d: dict[str, Any] = {"kind": self.kind}
        if self.kind == "assert":
            d["code"] = self.code
        elif self.kind == "stdio":
            d["input"], d["output"] = self.input, self.output
        else:
            d["args"] = [values.encode(a) for a in self.args]
            d["expected"] = values.encode(self.expected)
            if self.atol:
                d["atol"] = self.atol
        if self.timeout_s is not None:
            d["timeout_s"] = self.timeout_s
        return d

    @classmethod
    def from_json(cls, d: Any, *, where: tuple = (None, None), fld: str = "tests") -> TestCase:
        path, line = where
        if not isinstance(d, dict):
            raise DataError("a test must be an object", path, line, fld)
        kind = d.get("kind")
        to = d.get("timeout_s")
        if to is not None and (not isinstance(to, (int, float)) or to <= 0):
            raise DataError("must be a positive number", path, line, f"{fld}.timeout_s")
        if kind == "assert":
            if not isinstance(d.get("code"), str) or not d["code"].strip():
                raise DataError("assert test needs non-empty 'code'", path, line, f"{fld}.code")
            return cls("assert", code=d["code"], timeout_s=to)
        if kind == "stdio":
            for k in ("input", "output"):
                if not isinstance(d.get(k), str):
                    raise DataError("stdio test needs a string", path, line, f"{fld}.{k}")
            return cls("stdio", input=d["input"], output=d["output"], timeout_s=to)
        if kind == "call":
            if not isinstance(d.get("args"), list):
                raise DataError("call test needs a list 'args'", path, line, f"{fld}.args")
            if "expected" not in d:
                raise DataError("call test needs 'expected'", path, line, f"{fld}.expected")
            atol = d.get("atol", 0.0) or 0.0
            if not isinstance(atol, (int, float)) or atol < 0:
                raise DataError("must be a non-negative number", path, line, f"{fld}.atol")
            try:
                args = tuple(values.decode(a) for a in d["args"])
                exp = values.decode(d["expected"])
            except (values.UnsupportedValue, TypeError, ValueError) as e:
                raise DataError(str(e), path, line, f"{fld}.args/expected") from None
            return cls("call", args=args, expected=exp, atol=float(atol), timeout_s=to)
        raise DataError(f"unknown test kind {kind!r} (assert, stdio, call)", path, line, f"{fld}.kind")


@dataclass
class Problem:
    id: str
    instruction: str
    prompt: str | None = None
    entry_point: str | None = None
    reference_solution: str | None = None
    tests: list[TestCase] = field(default_factory=list)
    setup: str | None = None
    source: str = "user"
    metadata: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def is_stdio(self) -> bool:
        return self.entry_point is None

    def to_json(self) -> dict:
        d = {
            "id": self.id,
            "instruction": self.instruction,
            "prompt": self.prompt,
            "entry_point": self.entry_point,
            "reference_solution": self.reference_solution,
            "tests": [t.to_json() for t in self.tests],
            "setup": self.setup,
            "source": self.source,
            "metadata": self.metadata,
        }
        d.update(self.extra)
        return d

    @classmethod
    def from_json(cls, d: dict, *, path: str | os.PathLike | None = None, line: int | None = None) -> Problem:
        where = (path, line)

        def need_str(k: str, nullable: bool = False) -> str | None:
            v = d.get(k)
            if v is None and nullable:
                return None
            if not isinstance(v, str) or (not nullable and not v.strip()):
                raise DataError("must be a non-empty string" + (" or null" if nullable else ""),
                                path, line, k)
            return v

        pid = d.get("id", d.get("task_id"))
        if isinstance(pid, int):
            pid = str(pid)
        if not isinstance(pid, str) or not pid:
            raise DataError("missing or empty", path, line, "id")
        tests_raw = d.get("tests", [])
        if not isinstance(tests_raw, list):
            raise DataError("must be a list", path, line, "tests")
        tests = [TestCase.from_json(t, where=where, fld=f"tests[{i}]") for i, t in enumerate(tests_raw)]
        meta = d.get("metadata") or {}
        if not isinstance(meta, dict):
            raise DataError("must be an object", path, line, "metadata")
        known = {"id", "task_id", "instruction", "prompt", "entry_point", "reference_solution", "tests",
                 "setup", "source", "metadata"}
        return cls(
            id=pid,
            instruction=need_str("instruction"),  # type: ignore[arg-type]
            prompt=need_str("prompt", True),
            entry_point=need_str("entry_point", True),
            reference_solution=need_str("reference_solution", True),
            tests=tests,
            setup=need_str("setup", True),
            source=d.get("source") or "user",
            metadata=meta,
            extra={k: v for k, v in d.items() if k not in known},
        )


def read_problems(path: str | os.PathLike) -> list[Problem]:
    """Read a Problem-schema JSONL file; errors name the file, line and field."""
    out, seen = [], set()
    for line, rec in read_jsonl(path):
        p = Problem.from_json(rec, path=path, line=line)
        if p.id in seen:
            raise DataError(f"duplicate problem id {p.id!r}", path, line, "id")
        seen.add(p.id)
        out.append(p)
    return out


def write_problems(path: str | os.PathLike, problems: Iterable[Problem]) -> int:
    return atomic_write_jsonl(path, (p.to_json() for p in problems))
