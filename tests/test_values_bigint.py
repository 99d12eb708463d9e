"""Python's int<->decimal-text digit limit is lifted by ``plumcode.values`` itself, so any
process that reads typed test values (problem files, caches) parses HumanEval/83-sized ints."""

from __future__ import annotations

import subprocess
import sys

BIG = "json.loads('9' * 5000)"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_values_import_lifts_the_digit_limit() -> None:
    assert _run(f"import json\n{BIG}").returncode != 0  # the interpreter's default limit (4300)
    r = _run(f"import json\nfrom plumcode import values\nv = values.decode({BIG})\nassert len(str(v)) == 5000")
    assert r.returncode == 0, r.stderr
    r = _run(f"import json\nimport plumcode.problems\n{BIG}")  # the problems package still gets it
    assert r.returncode == 0, r.stderr
