"""Records that go in and out of the sandbox (documented JSONL forms).

A sample (``samples.jsonl`` line; extra keys are ignored here and kept by other stages)::

    {"problem_id": "HumanEval/0", "sample_id": "HumanEval/0#3", "code": "def f(x): ..."}

A verdict (``verdicts.jsonl`` line)::

    {"problem_id": ..., "sample_id": ..., "passed": false, "status": "fail",
     "tests": [{"status": "pass", "message": "", "duration_s": 0.001}, ...],
     "n_passed": 3, "n_tests": 5, "duration_s": 0.12, "isolation": "namespaces",
     "cache_key": "<sha256 of code+tests+limits>", "cached": false}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from plumcode.io import DataError

Status = Literal["pass", "fail", "error", "syntax_error", "timeout", "memory", "crash", "skipped"]
STATUSES: tuple[str, ...] = ("pass", "fail", "error", "syntax_error", "timeout", "memory", "crash", "skipped")


@dataclass(frozen=True)
class Sample:
    problem_id: str
    sample_id: str
    code: str

    @classmethod
    def from_json(cls, d: dict, path: str | None = None, line: int | None = None) -> Sample:
        for k in ("problem_id", "sample_id", "code"):
            v = d.get(k)
            if isinstance(v, int) and k != "code":
                v = str(v)
            if not isinstance(v, str):
                raise DataError("must be a string", path, line, k)
        return cls(str(d["problem_id"]), str(d["sample_id"]), d["code"])


@dataclass
class TestResult:
    __test__ = False
    status: Status
    message: str = ""
    duration_s: float = 0.0


@dataclass
class Verdict:
    problem_id: str
    sample_id: str
    passed: bool
    status: Status
    tests: list[TestResult] = field(default_factory=list)
    duration_s: float = 0.0
    isolation: str = ""
    cache_key: str = ""
    cached: bool = False

    @property
    def n_passed(self) -> int:
        return sum(t.status == "pass" for t in self.tests)

    @property
    def n_tests(self) -> int:
        return len(self.tests)

    @property
    def pass_fraction(self) -> float:
        return self.n_passed / self.n_tests if self.tests else 0.0

    def to_json(self) -> dict:
        d = asdict(self)
        d["n_passed"], d["n_tests"] = self.n_passed, self.n_tests
        return d

    @classmethod
    def from_json(cls, d: dict) -> Verdict:
        tests = [TestResult(**t) for t in d.get("tests", [])]
        keep = {k: d[k] for k in ("duration_s", "isolation", "cache_key", "cached") if k in d}
        return cls(d["problem_id"], d["sample_id"], bool(d["passed"]), d["status"], tests, **keep)
