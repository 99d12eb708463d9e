"""Sandboxed execution of untrusted candidate code against tests.

Three roles: the master (your process) holds the jobs; a judge process per job holds the tests
and expected values and compares; a candidate process per job, forked from a clean zygote
inside kernel namespaces (or a weaker, reported fallback), only ever sees the code and the
test inputs. See ``docs/sandbox.md``.
"""

from plumcode.sandbox._master import (
    SANDBOX_VERSION,
    CallOutcome,
    SandboxConfig,
    call_reference,
    execute,
    execute_file,
    isolation_level,
    shutdown,
    stdio_reference,
)
from plumcode.sandbox.compare import call_output_matches, stdio_output_matches
from plumcode.sandbox.types import STATUSES, Sample, TestResult, Verdict

__all__ = [
    "SANDBOX_VERSION", "STATUSES", "CallOutcome", "Sample", "SandboxConfig", "TestResult", "Verdict",
    "call_output_matches", "call_reference", "execute", "execute_file", "isolation_level", "shutdown",
    "stdio_output_matches", "stdio_reference",
]
