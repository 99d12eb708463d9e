"""How testgen runs code: a thin adapter over :mod:`plumcode.sandbox`.

Validation needs three things from the sandbox: a pass/fail matrix (programs x candidate tests),
the reference's return values for proposed inputs (``call_reference``) and the reference's stdout
for proposed stdin (``stdio_reference``). :class:`SandboxRunner` maps those onto the sandbox API.
:class:`LocalRunner` is a small subprocess runner with per-test timeouts and no isolation: it
exists so testgen works (and is tested) in a build without the sandbox, and is never chosen when
the sandbox is importable.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from plumcode import values
from plumcode.problems.schema import Problem, TestCase
from plumcode.sandbox.types import Sample, TestResult

log = logging.getLogger(__name__)


@dataclass
class CallOutcome:
    ok: bool
    value: Any = None
    error: str = ""
    duration_s: float = 0.0


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


# -- fallback -------------------------------------------------------------------------------------

_HARNESS = r'''
import copy, io, json, math, os, signal, sys, time
spec = json.load(sys.stdin)
out = os.fdopen(os.dup(1), "w")
devnull = open(os.devnull, "w")
sys.stdout = sys.stderr = devnull
os.dup2(devnull.fileno(), 1)
class _T(BaseException): pass
def _alarm(*a): raise _T()
signal.signal(signal.SIGALRM, _alarm)
def emit(k, status, msg="", value=None):
    out.write(json.dumps({"k": k, "status": status, "message": msg[:300], "value": value}) + "\n"); out.flush()
g = {"__name__": "__main__"}
t0 = time.monotonic()
try:
    signal.setitimer(signal.ITIMER_REAL, spec["timeout"])
    exec(compile(spec["program"], "<program>", "exec"), g)
    signal.setitimer(signal.ITIMER_REAL, 0)
except _T:
    emit(-1, "timeout"); sys.exit(0)
except BaseException as e:
    signal.setitimer(signal.ITIMER_REAL, 0)
    emit(-1, "syntax_error" if isinstance(e, SyntaxError) else "error", repr(e)); sys.exit(0)
def close(a, b, atol):
    if isinstance(a, float) or isinstance(b, float):
        try:
            return a == b or math.isclose(a, b, abs_tol=atol) or (a != a and b != b)
        except TypeError:
            return False
    if type(a) in (list, tuple) and type(a) is type(b):
        return len(a) == len(b) and all(close(x, y, atol) for x, y in zip(a, b))
    return type(a) is type(b) and a == b or (type(a) in (int, bool) and type(b) in (int, bool) and a == b)
from plumcode import values as V
for k, t in enumerate(spec["tests"]):
    try:
        signal.setitimer(signal.ITIMER_REAL, spec["timeout"])
        if t["kind"] == "assert":
            exec(compile(t["code"], "<test>", "exec"), dict(g))
            status, val = "pass", None
        else:
            args = tuple(V.decode(a) for a in t["args"])
            r = g[spec["entry_point"]](*copy.deepcopy(args))
            if t.get("probe"):
                status, val = "pass", V.encode(r)
            else:
                status, val = ("pass" if close(r, V.decode(t["expected"]), t.get("atol", 0.0)) else "fail"), None
        signal.setitimer(signal.ITIMER_REAL, 0)
        emit(k, status, value=val)
    except _T:
        emit(k, "timeout")
    except AssertionError as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        emit(k, "fail", repr(e))
    except BaseException as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        emit(k, "error", type(e).__name__ + ": " + str(e))
'''


class LocalRunner:
    """One subprocess per program, SIGALRM per test, a wall-clock kill for the whole process.

    Not a sandbox: use only with trusted code or when :mod:`plumcode.sandbox` is unavailable.
    """

    name = "local-unsandboxed"

    def __init__(self, timeout_s: float = 3.0, memory_mb: int = 2048):
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb

    def _exec(self, program: str, entry_point: str | None, tests: list[dict]) -> list[dict]:
        spec = {"program": program, "entry_point": entry_point, "tests": tests, "timeout": self.timeout_s}
        wall = self.timeout_s * (len(tests) + 1) + 5
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(sys.path),
               "PYTHONHASHSEED": "0"}
        mem = self.memory_mb * 1024 * 1024

        def limits() -> None:
            import resource
            os.setsid()
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        with tempfile.TemporaryDirectory(prefix="plumcode-testgen-") as tmp:
            proc = subprocess.Popen([sys.executable, "-c", _HARNESS], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp, env=env,
                                    preexec_fn=limits, text=True)
            try:
                stdout, _ = proc.communicate(json.dumps(spec), timeout=wall)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
                stdout, _ = proc.communicate()
        got: dict[int, dict] = {}
        for line in stdout.splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            got[r["k"]] = r
        if -1 in got:  # the program itself failed: every test fails the same way
            return [dict(got[-1], k=k) for k in range(len(tests))]
        return [got.get(k, {"k": k, "status": "timeout", "message": "killed", "value": None})
                for k in range(len(tests))]

    def run_many(self, jobs: Sequence[tuple[Problem, Sequence[str]]]) -> list[list[list[TestResult]]]:
        out = []
        for p, codes in jobs:
            per = []
            for code in codes:
                if p.is_stdio:
                    per.append([self._stdio_one(code, t) for t in p.tests])
                    continue
                program = (p.setup + "\n" if p.setup else "") + code
                res = self._exec(program, p.entry_point, [t.to_json() for t in p.tests])
                per.append([TestResult(r["status"], r.get("message") or "") for r in res])
            out.append(per)
        return out

    def _stdio_one(self, code: str, t: TestCase) -> TestResult:
        r = self.stdio_reference(code, [t.input or ""])[0]
        if not r.ok:
            return TestResult("timeout" if r.error == "timeout" else "error", r.error)
        norm = [ln.rstrip() for ln in (r.value or "").rstrip().splitlines()]
        want = [ln.rstrip() for ln in (t.output or "").rstrip().splitlines()]
        return TestResult("pass" if norm == want else "fail")

    def call_reference(self, program: str, entry_point: str, args_list: Sequence[tuple],
                       setup: str | None = None) -> list[CallOutcome]:
        tests = [{"kind": "call", "args": [values.encode(a) for a in args], "probe": True} for args in args_list]
        res = self._exec((setup + "\n" if setup else "") + program, entry_point, tests)
        out = []
        for r in res:
            if r["status"] == "pass":
                out.append(CallOutcome(True, values.decode(r["value"])))
            else:
                out.append(CallOutcome(False, None, r["status"] if r["status"] == "timeout"
                                       else r.get("message") or r["status"]))
        return out

    def stdio_reference(self, program: str, inputs: Sequence[str]) -> list[CallOutcome]:
        out = []
        for inp in inputs:
            with tempfile.TemporaryDirectory(prefix="plumcode-testgen-") as tmp:
                try:
                    cp = subprocess.run([sys.executable, "-c", program], input=inp, capture_output=True,
                                        text=True, timeout=self.timeout_s, cwd=tmp,
                                        env={"PATH": os.environ.get("PATH", "")})
                except subprocess.TimeoutExpired:
                    out.append(CallOutcome(False, None, "timeout"))
                    continue
            if cp.returncode != 0:
                out.append(CallOutcome(False, None, (cp.stderr or "").strip().splitlines()[-1:][0]
                                       if cp.stderr.strip() else f"exit {cp.returncode}"))
            else:
                out.append(CallOutcome(True, cp.stdout))
        return out


def default_runner(timeout_s: float = 3.0, sandbox_config: Any = None) -> Runner:
    """The sandbox when importable, else the unsandboxed fallback (with a warning)."""
    try:
        return SandboxRunner(sandbox_config, timeout_s=timeout_s)
    except ImportError:
        log.warning("plumcode.sandbox is not available: running tests WITHOUT isolation (LocalRunner)")
        return LocalRunner(timeout_s=timeout_s)
