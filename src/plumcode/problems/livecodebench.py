"""LiveCodeBench (``livecodebench/code_generation_lite`` schema) as Problems.

Two styles: AtCoder/Codeforces stdin programs (``entry_point=None``, ``stdio`` tests) and LeetCode
functional problems (``entry_point="Solution.<func_name>"``, ``call`` tests whose arguments are
the JSON values on each input line). Private tests ship as base64(zlib(pickle(json string))); they
are decoded without ever letting pickle import anything (a pickle that needs a class is refused).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import zlib
from typing import Any

from plumcode import values
from plumcode.io import DataError
from plumcode.problems.schema import Problem, TestCase

# lcb_runner/evaluation/testing_util.py: prepended to every candidate by the official grader.
LCB_IMPORTS = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\n"
    "from statistics import *\nfrom itertools import *\nfrom functools import *\nfrom operator import *\n"
    "from io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\n"
    "import string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\n"
    "import math\nimport random\nimport statistics\nimport itertools\nimport functools\nimport operator\n"
    "import io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n"
)
# lcb_runner/prompts/code_generation.py
FORMAT_WITH_STARTER = ("You will use the following starter code to write the solution to the problem and "
                       "enclose your code within delimiters.")
FORMAT_STDIN = ("Read the inputs from stdin solve the problem and write the answer to stdout (do not directly "
                "test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when "
                "the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.")


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:  # noqa: ARG002
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data is accepted")


def decode_test_cases(field: Any) -> list:
    """Test cases from a JSON string, or base64+zlib (+ plain-data pickle) of one."""
    if field is None or field == "":
        return []
    if isinstance(field, list):
        return field
    if not isinstance(field, str):
        raise ValueError(f"expected a string, got {type(field).__name__}")
    try:
        return json.loads(field)
    except json.JSONDecodeError:
        pass
    try:
        raw = zlib.decompress(base64.b64decode(field.encode("ascii"), validate=False))
    except (binascii.Error, zlib.error, UnicodeEncodeError) as e:
        raise ValueError(f"neither JSON nor base64+zlib ({e})") from None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    try:
        obj = _NoGlobalsUnpickler(io.BytesIO(raw)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise ValueError(f"undecodable pickle: {e}") from None
    if isinstance(obj, bytes):
        obj = obj.decode("utf-8")
    if isinstance(obj, str):
        obj = json.loads(obj)
    if not isinstance(obj, list):
        raise ValueError(f"decoded test cases are a {type(obj).__name__}, not a list")
    return obj


def lcb_instruction(content: str, starter: str) -> str:
    if starter.strip():
        return f"{content.strip()}\n\n### Format: {FORMAT_WITH_STARTER}\n```python\n{starter}\n```"
    return f"{content.strip()}\n\n### Format: {FORMAT_STDIN}\n```python\n# YOUR CODE HERE\n```"


def _tests(cases: list, functional: bool, path: str, line: int, fld: str) -> list[TestCase]:
    out = []
    for i, c in enumerate(cases):
        f = f"{fld}[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("input"), str) or not isinstance(c.get("output"), str):
            raise DataError("a test case needs string 'input' and 'output'", path, line, f)
        tt = c.get("testtype", "functional" if functional else "stdin")
        if tt not in ("stdin", "functional"):
            raise DataError(f"unknown testtype {tt!r}", path, line, f"{f}.testtype")
        if tt == "stdin":
            out.append(TestCase("stdio", input=c["input"], output=c["output"]))
            continue
        try:
            args = tuple(json.loads(ln) for ln in c["input"].split("\n"))
            expected = json.loads(c["output"])
            values.encode(args)
        except (json.JSONDecodeError, values.UnsupportedValue) as e:
            raise DataError(f"functional test is not JSON per line ({e})", path, line, f) from None
        out.append(TestCase("call", args=args, expected=expected))
    return out


def build_livecodebench(records: list, path: str) -> list[Problem]:
    out = []
    for line, rec in records:
        for k in ("question_id", "question_content"):
            if not isinstance(rec.get(k), (str, int)) or not str(rec.get(k)).strip():
                raise DataError("missing or empty", path, line, k)
        starter = rec.get("starter_code") or ""
        meta_raw = rec.get("metadata") or "{}"
        try:
            meta = json.loads(meta_raw) if isinstance(meta_raw, str) else dict(meta_raw)
        except (json.JSONDecodeError, TypeError, ValueError):
            raise DataError("must be a JSON object", path, line, "metadata") from None
        func = meta.get("func_name")
        functional = bool(func)
        try:
            public = decode_test_cases(rec.get("public_test_cases"))
        except ValueError as e:
            raise DataError(str(e), path, line, "public_test_cases") from None
        try:
            private = decode_test_cases(rec.get("private_test_cases"))
        except ValueError as e:
            raise DataError(str(e), path, line, "private_test_cases") from None
        tests = _tests(public, functional, path, line, "public_test_cases")
        n_public = len(tests)
        tests += _tests(private, functional, path, line, "private_test_cases")
        entry = None
        if functional:
            cls = "Solution"
            entry = f"{cls}.{func}"
        out.append(Problem(
            id=str(rec["question_id"]), instruction=lcb_instruction(rec["question_content"], starter),
            prompt=starter or None, entry_point=entry, reference_solution=None, tests=tests, setup=None,
            source="livecodebench",
            metadata={"difficulty": rec.get("difficulty"), "platform": rec.get("platform"),
                      "contest_id": rec.get("contest_id"), "contest_date": rec.get("contest_date"),
                      "title": rec.get("question_title"), "style": "functional" if functional else "stdin",
                      "n_public_tests": n_public, "code_prefix": LCB_IMPORTS},
        ))
    return out
