"""Sandboxed execution of untrusted candidate code against tests.

Three roles: the master (your process) holds the jobs; a judge process per job holds the tests
and expected values and compares; a candidate process per job, forked from a clean zygote
inside kernel namespaces (or a weaker, reported fallback), only ever sees the code and the
test inputs, and can read nothing but the Python runtime and its own temp dir. See
``docs/sandbox.md``; ``plumcode sandbox check`` shows what is enforced on a machine.
``execute``/``execute_file`` run on this machine, or with ``ray_address`` the same sandbox on
every node of a Ray cluster (``executor.py``).
"""

from plumcode.sandbox._master import (
    SANDBOX_VERSION,
    CallOutcome,
    SandboxConfig,
    call_reference,
    isolation_level,
    isolation_report,
    shutdown,
    stdio_reference,
)
from plumcode.sandbox.compare import call_output_matches, stdio_output_matches
from plumcode.sandbox.defaults import DEFAULT_JOB_TIMEOUT_S, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S
from plumcode.sandbox.executor import Executor, LocalExecutor, execute, execute_file, open_executor
from plumcode.sandbox.types import STATUSES, Sample, TestResult, Verdict

__all__ = [
    "DEFAULT_JOB_TIMEOUT_S", "DEFAULT_MEMORY_MB", "DEFAULT_TIMEOUT_S", "SANDBOX_VERSION", "STATUSES", "CallOutcome",
    "Executor", "LocalExecutor", "Sample", "SandboxConfig", "TestResult", "Verdict", "call_output_matches",
    "call_reference", "execute", "execute_file", "isolation_level", "isolation_report", "open_executor", "shutdown",
    "stdio_output_matches", "stdio_reference",
]
