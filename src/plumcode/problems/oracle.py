"""Run a trusted reference solution on inputs and get its outputs (the test oracle).

The sandbox's :func:`plumcode.sandbox.call_reference` is the oracle of record. This module only
adapts it to one calling convention and, when the sandbox is not importable (a partial install,
or while it is being developed), falls back to one plain subprocess per program: reference code
is trusted, so isolation is not needed, only a clean interpreter and a wall-clock limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from plumcode import values


@dataclass
class Outcome:
    ok: bool
    value: Any = None
    error: str = ""
    duration_s: float = 0.0


_DRIVER = r"""
import copy, json, sys, time, io, contextlib
sys.set_int_max_str_digits(0)
from plumcode import values
job = json.load(sys.stdin)
g = {"__name__": "__main__"}
out = []
with contextlib.redirect_stdout(io.StringIO()):
    if job["setup"]:
        exec(job["setup"], g)
    exec(job["program"], g)
    obj = g
    fn = None
    parts = job["entry_point"].split(".")
    if len(parts) == 2:
        fn = getattr(g[parts[0]](), parts[1])
    else:
        fn = g[parts[0]]
    for a in job["args"]:
        args = copy.deepcopy(tuple(values.decode(x) for x in a))
        t = time.perf_counter()
        try:
            v = fn(*args)
            dt = time.perf_counter() - t
            out.append([True, values.encode(v), "", dt])
        except BaseException as e:  # noqa
            dt = time.perf_counter() - t
            out.append([False, None, f"{type(e).__name__}: {e}"[:300], dt])
sys.stdout.write(json.dumps(out))
"""


def _subprocess_call_reference(program: str, entry_point: str, args_list: Sequence[tuple], *,
                               setup: str | None = None, timeout_s: float = 600.0) -> list[Outcome]:
    job = {"program": program, "entry_point": entry_point, "setup": setup or "",
           "args": [[values.encode(a) for a in args] for args in args_list]}
    proc = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps(job), capture_output=True,
                          text=True, timeout=timeout_s)
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return [Outcome(False, error=f"reference program failed: {err[0]}") for _ in args_list]
    return [Outcome(ok, values.decode(v) if ok else None, err, dt) for ok, v, err, dt in json.loads(proc.stdout)]


def call_reference(program: str, entry_point: str, args_list: Sequence[tuple], *,
                   setup: str | None = None) -> list[Outcome]:
    """Outputs of ``entry_point(*args)`` for each ``args`` (one entry per input, in order)."""
    try:
        from plumcode.sandbox import SandboxConfig
        from plumcode.sandbox import call_reference as sandbox_call_reference
    except ImportError:
        return _subprocess_call_reference(program, entry_point, args_list, setup=setup)
    # Reference runs are trusted and some EvalPlus inputs are slow on purpose: generous limits.
    cfg = SandboxConfig(timeout_s=60.0)
    res = sandbox_call_reference(program, entry_point, list(args_list), setup=setup, config=cfg)
    return [Outcome(bool(r.ok), r.value, r.error or "", float(r.duration_s or 0.0)) for r in res]
