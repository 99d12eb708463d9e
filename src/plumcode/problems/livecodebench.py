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
import logging
import os
import pickle
import zlib
from pathlib import Path
from typing import Any

from plumcode import values
from plumcode.io import DataError
from plumcode.problems.schema import Problem, TestCase

log = logging.getLogger(__name__)

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


# ---------------------------------------------------------------------------------------------
# Releases and contest-date windows, as LiveCodeBench's users select problems.
#
# A release is a set of shard files of ``livecodebench/code_generation_lite`` (its loading script
# ``code_generation_lite.py``, ``ALLOWED_FILES``): ``release_vN`` = ``test.jsonl`` .. ``testN.jsonl``,
# ``vN`` = shard N alone, ``vA_vB`` = shards A..B, ``release_latest`` = all. ``lcb_runner`` then keeps
# ``start_date <= contest_date <= end_date`` (dates at 00:00, both bounds inclusive). A single file that
# holds several shards does not say which shard a problem came from; there a release is applied by
# the months its README gives each release (``RELEASE_MONTHS``), which can misplace problems dated at a
# shard boundary: point ``path`` at the folder of shard files for the exact set.

HUB_REPO = "livecodebench/code_generation_lite"
# [first day, first day after) of the problems each shard added, from the LiveCodeBench README
# ("release_v1: May 2023 - Mar 2024", "release_v2: ... - May 2024", ..., "release_v6: ... - Apr 2025").
RELEASE_MONTHS: dict[int, tuple[str, str]] = {
    1: ("2023-05-01", "2024-04-01"), 2: ("2024-04-01", "2024-06-01"), 3: ("2024-06-01", "2024-08-01"),
    4: ("2024-08-01", "2024-10-01"), 5: ("2024-10-01", "2025-02-01"), 6: ("2025-02-01", "2025-05-01"),
}
LATEST = max(RELEASE_MONTHS)


def shard_file(n: int) -> str:
    return "test.jsonl" if n == 1 else f"test{n}.jsonl"


def release_shards(tag: str, latest: int = LATEST) -> list[int]:
    """Shard numbers of a release tag (``release_v3`` -> [1, 2, 3]; ``v2_v4`` -> [2, 3, 4])."""
    import re

    t = tag.strip().lower()
    if t in ("release_latest", "latest"):
        return list(range(1, latest + 1))
    if m := re.fullmatch(r"release_v(\d+)", t):
        return list(range(1, int(m.group(1)) + 1))
    if m := re.fullmatch(r"v(\d+)", t):
        return [int(m.group(1))]
    if (m := re.fullmatch(r"v(\d+)_v(\d+)", t)) and int(m.group(1)) < int(m.group(2)):
        return list(range(int(m.group(1)), int(m.group(2)) + 1))
    raise ValueError(f"unknown LiveCodeBench release {tag!r}: release_v1 .. release_v{latest}, release_latest, "
                     f"v1 .. v{latest} (one release's new problems) or vA_vB (e.g. v4_v5)")


def parse_date(s: str, what: str) -> Any:
    from datetime import datetime

    try:
        return datetime.strptime(s, "%Y-%m-%d")
    except ValueError:
        raise ValueError(f"{what} {s!r}: write YYYY-MM-DD (e.g. 2024-10-01)") from None


def _contest_date(p: Problem) -> Any:
    from datetime import datetime

    raw = p.metadata.get("contest_date") if isinstance(p.metadata, dict) else None
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


def select_problems(problems: list[Problem], *, release: str | None = None, start_date: str | None = None,
                    end_date: str | None = None) -> tuple[list[Problem], dict]:
    """Keep the problems of ``release`` dated within [start_date, end_date] (lcb_runner's rule).

    Returns the kept problems and what was selected (for results files): by shard when the
    problems know their shard (``metadata["lcb_shard"]``, set when read from the shard files), else
    by the release's months.
    """
    info: dict[str, Any] = {"n_before": len(problems)}
    kept = list(problems)
    if release:
        shards = release_shards(release)
        info["release"] = release
        if kept and all(isinstance(p.metadata, dict) and p.metadata.get("lcb_shard") for p in kept):
            kept = [p for p in kept if p.metadata["lcb_shard"] in shards]
            info["release_by"] = "shard files"
        else:
            if any(n not in RELEASE_MONTHS for n in shards):
                raise ValueError(f"release {release!r}: no contest months known for shard(s) "
                                 f"{[n for n in shards if n not in RELEASE_MONTHS]} to select it in a single file; "
                                 "point --path at the folder holding the code_generation_lite shard files")
            lo = parse_date(RELEASE_MONTHS[min(shards)][0], "release start")
            hi = parse_date(RELEASE_MONTHS[max(shards)][1], "release end")
            if release.strip().lower() not in ("release_latest", "latest"):  # latest: everything
                kept = [p for p in kept if (d := _contest_date(p)) is not None and lo <= d < hi]
                info["release_by"] = (f"the release's months, {lo:%Y-%m-%d} <= contest_date < {hi:%Y-%m-%d} "
                                      "(one file does not name its shards)")
    lo = parse_date(start_date, "--start-date") if start_date else None
    hi = parse_date(end_date, "--end-date") if end_date else None
    if lo and hi and lo > hi:
        raise ValueError(f"--start-date {start_date} is after --end-date {end_date}")
    if lo or hi:
        undated = [p.id for p in kept if _contest_date(p) is None]
        if undated:
            log.warning("%d problems have no contest_date and are left out of the date window (e.g. %s)",
                        len(undated), undated[0])
        kept = [p for p in kept if (d := _contest_date(p)) is not None and (lo is None or lo <= d)
                and (hi is None or d <= hi)]
        info |= {"start_date": start_date, "end_date": end_date}
    info["n_problems"] = len(kept)
    return kept, info


def _shard_path(folder: Path, n: int) -> Path | None:
    for name in (shard_file(n), shard_file(n) + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_livecodebench(path: str | os.PathLike | None = None, *, release: str | None = None,
                       start_date: str | None = None, end_date: str | None = None) -> tuple[list[Problem], dict]:
    """LiveCodeBench problems of a release and contest-date window, from any code_generation_lite data.

    ``path``: the folder of shard files (``test.jsonl`` .. ``test6.jsonl``, ``.gz`` ok: the exact
    release), one JSONL/JSON file (a release is then selected by its months), or ``None``: the local
    copy, else the release's shard files from the Hugging Face hub.
    """
    from plumcode.problems.loaders import load_benchmark
    from plumcode.problems.sources import find_local, hub_records, iter_records

    folder = Path(path) if path is not None and Path(path).is_dir() else None
    if path is None and release and find_local(("livecodebench*.jsonl.gz", "livecodebench*.jsonl")) is None:
        problems = []
        for n in release_shards(release):
            try:
                rows = hub_records(HUB_REPO, filename=shard_file(n))
            except RuntimeError as e:
                raise FileNotFoundError(f"livecodebench {release}: no local copy and the Hugging Face hub is not "
                                        f"available ({e}); pass --path") from None
            problems += _with_shard(build_livecodebench(list(enumerate(rows, 1)), f"hf://{HUB_REPO}/{shard_file(n)}"), n)
    elif folder is not None:
        shards = release_shards(release) if release else sorted(
            n for n in range(1, 100) if _shard_path(folder, n) is not None)
        missing = [shard_file(n) for n in shards if _shard_path(folder, n) is None]
        if missing or not shards:
            raise FileNotFoundError(f"{folder}: no LiveCodeBench shard file(s) {', '.join(missing) or 'test*.jsonl'}")
        problems = []
        for n in shards:
            sp = _shard_path(folder, n)
            assert sp is not None
            problems += _with_shard(build_livecodebench(list(iter_records(sp)), str(sp)), n)
    else:
        problems = load_benchmark("livecodebench", path)
    return select_problems(problems, release=release, start_date=start_date, end_date=end_date)


def _with_shard(problems: list[Problem], n: int) -> list[Problem]:
    for p in problems:
        p.metadata["lcb_shard"] = n
    return problems
