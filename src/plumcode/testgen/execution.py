"""How testgen runs code: a thin adapter over :mod:`plumcode.sandbox`.

Validation needs three things from the sandbox: a pass/fail matrix (programs x candidate tests),
the reference's return values for proposed inputs (``call_reference``) and the reference's stdout
for proposed stdin (``stdio_reference``). :class:`SandboxRunner` maps those onto the sandbox API.
There is deliberately no unsandboxed fallback: every program and test here is model-written.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from plumcode.problems.schema import Problem
from plumcode.sandbox import CallOutcome
from plumcode.sandbox.types import Sample, TestResult

log = logging.getLogger(__name__)




class Runner(Protocol):
    name: str

    def run_many(self, jobs: Sequence[tuple[Problem, Sequence[str]]]) -> list[list[list[TestResult]]]:
        """For each (problem, programs): per program, one result per ``problem.tests`` entry."""
        ...

    def call_reference(self, program: str, entry_point: str, args_list: Sequence[tuple],
                       setup: str | None = None) -> list[CallOutcome]: ...

    def stdio_reference(self, program: str, inputs: Sequence[str]) -> list[CallOutcome]: ...


# -- the sandbox ----------------------------------------------------------------------------------


class SandboxRunner:
    """Everything through ``plumcode.sandbox`` (isolation, limits, unforgeable verdicts)."""

    name = "sandbox"

    def __init__(self, config: Any = None, timeout_s: float | None = None):
        import plumcode.sandbox as sb

        if not hasattr(sb, "execute"):  # the package directory exists before the engine lands
            raise ImportError("plumcode.sandbox.execute is not available")
        self._sb = sb
        self.config = config if config is not None else self._default_config(timeout_s)

    def _default_config(self, timeout_s: float | None) -> Any:
        cls = getattr(self._sb, "SandboxConfig", None)
        if cls is None:
            return None
        try:
            return cls(timeout_s=timeout_s) if timeout_s else cls()
        except TypeError:
            return cls()

    def run_many(self, jobs: Sequence[tuple[Problem, Sequence[str]]]) -> list[list[list[TestResult]]]:
        probs: list[Problem] = []
        samples: list[Sample] = []
        index: dict[str, tuple[int, int]] = {}
        tag = uuid.uuid4().hex[:8]
        for j, (p, codes) in enumerate(jobs):
            if not p.tests or not codes:
                continue
            pid = f"{p.id}::testgen-{tag}-{j}"
            probs.append(replace(p, id=pid))
            for i, code in enumerate(codes):
                sid = f"{pid}#{i}"
                samples.append(Sample(pid, sid, code))
                index[sid] = (j, i)
        out: list[list[list[TestResult]]] = [
            [[TestResult("skipped") for _ in p.tests] for _ in codes] for p, codes in jobs]
        if not samples:
            return out
        for v in self._sb.execute(probs, samples, self.config):
            j, i = index[v.sample_id]
            n = len(jobs[j][0].tests)
            res = list(v.tests)[:n]
            if len(res) < n:  # a sandbox that stopped early: the rest did not pass
                res += [TestResult(v.status if v.status != "pass" else "skipped")] * (n - len(res))
            out[j][i] = res
        return out

    def call_reference(self, program: str, entry_point: str, args_list: Sequence[tuple],
                       setup: str | None = None) -> list[CallOutcome]:
        res = self._sb.call_reference(program, entry_point, list(args_list), setup=setup, config=self.config)
        return [CallOutcome(r.ok, r.value, getattr(r, "error", "") or "", getattr(r, "duration_s", 0.0))
                for r in res]

    def stdio_reference(self, program: str, inputs: Sequence[str]) -> list[CallOutcome]:
        res = self._sb.stdio_reference(program, list(inputs), config=self.config)
        return [CallOutcome(r.ok, r.value, getattr(r, "error", "") or "", getattr(r, "duration_s", 0.0))
                for r in res]




def default_runner(timeout_s: float = 3.0, sandbox_config: Any = None) -> Runner:
    """The sandbox runner: model-written tests and programs never run outside the sandbox."""
    return SandboxRunner(sandbox_config, timeout_s=timeout_s)
