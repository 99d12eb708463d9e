"""Benchmark and instruction-set loaders: every source becomes a list of :class:`Problem`.

``load_benchmark(name)`` reads a local copy (``PLUMCODE_DATA_DIR`` or ``../shared/data``) or, when
there is none, the Hugging Face hub. ``load_instructions(path)`` reads instruction sets
(CodeAlpaca, Evol-Instruct, OSS-Instruct-like JSON/JSONL) or Problem-schema JSONL. Malformed
records raise :class:`plumcode.io.DataError` naming the file, line and field.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import logging
import os
import re
import textwrap
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from plumcode.io import DataError, sha256_file
from plumcode.problems import evalplus as ep
from plumcode.problems.schema import Problem, TestCase, read_problems
from plumcode.problems.sources import data_dirs, find_local, hub_records, iter_records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    local: tuple[str, ...]  # glob patterns in the data folder
    hub: dict  # kwargs of sources.hub_records
    description: str


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "humaneval": BenchmarkSpec("humaneval", ("HumanEval.jsonl.gz", "HumanEval.jsonl"),
                               {"repo": "openai_humaneval", "split": "test"}, "HumanEval (164)"),
    "humaneval+": BenchmarkSpec("humaneval+", ("HumanEvalPlus*.jsonl.gz", "HumanEvalPlus*.jsonl"),
                                {"repo": "evalplus/humanevalplus", "split": "test"},
                                "HumanEval+ base and plus inputs (164)"),
    "mbpp": BenchmarkSpec("mbpp", ("mbpp.jsonl",), {"repo": "mbpp", "config": "full", "split": "test"},
                          "MBPP full, test split (task ids 11-510, 500)"),
    "mbpp-sanitized": BenchmarkSpec("mbpp-sanitized", ("sanitized-mbpp.json",),
                                    {"repo": "mbpp", "config": "sanitized"}, "MBPP sanitized (427)"),
    "mbpp+": BenchmarkSpec("mbpp+", ("MbppPlus*.jsonl.gz", "MbppPlus*.jsonl"),
                           {"repo": "evalplus/mbppplus", "split": "test"}, "MBPP+ base and plus inputs (378)"),
    "mbpp-train": BenchmarkSpec("mbpp-train", ("mbpp.jsonl",), {"repo": "mbpp", "config": "full", "split": "train"},
                                "MBPP train split (task ids 601-974) without the dev problems: training prompts"),
    "mbpp-dev": BenchmarkSpec("mbpp-dev", ("mbpp.jsonl",), {"repo": "mbpp", "config": "full", "split": "train"},
                              "MBPP train-split dev set (50 problems, never trained on): recipe selection"),
    "livecodebench": BenchmarkSpec("livecodebench", ("livecodebench*.jsonl.gz", "livecodebench*.jsonl"),
                                   {"repo": "livecodebench/code_generation_lite", "filename": "test5.jsonl"},
                                   "LiveCodeBench code generation (stdin and functional)"),
}
# The validation split: recipes are selected on these 50 MBPP train-split problems, never on an
# evaluation benchmark, and `mbpp-train` never contains them. The rule (frozen here, re-derived by
# tests/problems/test_split.py): of task ids 601-974 that survive 13-gram decontamination against
# HumanEval+, MBPP+ and the LiveCodeBench sample, the 50 with the smallest sha256("mbpp-dev/<id>").
MBPP_DEV_IDS: frozenset[int] = frozenset({
    624, 625, 627, 652, 662, 667, 669, 677, 684, 685, 686, 701, 702, 703, 705, 713, 768, 776, 789, 799,
    814, 828, 829, 834, 839, 842, 843, 850, 864, 865, 869, 870, 872, 875, 876, 898, 899, 900, 908, 915,
    924, 927, 934, 941, 942, 945, 950, 954, 968, 970,
})
MBPP_TRAIN_IDS = range(601, 975)


def dev_rank(task_id: int) -> str:
    """The sort key that picks the dev problems: a hash, so the split is neither by difficulty nor by
    position in the file."""
    return hashlib.sha256(f"mbpp-dev/{task_id}".encode()).hexdigest()


ALIASES = {"he": "humaneval", "he+": "humaneval+", "humanevalplus": "humaneval+", "mbppplus": "mbpp+",
           "mbpp_sanitized": "mbpp-sanitized", "lcb": "livecodebench"}


def benchmark_names() -> list[str]:
    return list(BENCHMARKS)


def load_benchmark(name: str, path: str | os.PathLike | None = None, *, with_expected: bool = True,
                   limit: int | None = None, ids: Iterable[str] | None = None, workers: int | None = None,
                   min_time_limit: float = ep.DEFAULT_MIN_TIME_LIMIT,
                   time_limit_factor: float = ep.DEFAULT_GT_TIME_LIMIT_FACTOR) -> list[Problem]:
    """Load a benchmark as Problems.

    ``path=None``: the local copy, else the Hugging Face hub. ``limit`` keeps the first N problems
    and ``ids`` only those ids (both applied before any expected output is computed). For
    HumanEval+/MBPP+, ``with_expected=False`` skips running the canonical solutions and returns
    problems without tests (instructions and references only: enough for sampling or
    decontamination).
    """
    key = ALIASES.get(name.lower(), name.lower())
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    spec = BENCHMARKS[key]
    src = Path(path) if path is not None else find_local(spec.local)
    if src is not None:
        if not src.exists():
            raise FileNotFoundError(f"{key}: no such file {src}")
        records = list(iter_records(src))
        src_name, digest = str(src), sha256_file(src)
    else:
        try:
            rows = hub_records(**spec.hub)
        except RuntimeError as e:
            looked = ", ".join(str(d) for d in data_dirs()) or "(no data folder found)"
            raise FileNotFoundError(
                f"{key}: no local copy (looked for {'/'.join(spec.local)} in {looked}; set PLUMCODE_DATA_DIR "
                f"or pass a path) and the Hugging Face hub is not available ({e})") from None
        src_name = f"hf://{spec.hub['repo']}"
        records = list(enumerate(rows, 1))
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    if key in _SPLITS:  # the split first, so that limit counts the split's problems
        keep = _SPLITS[key]
        records = [(ln, r) for ln, r in records if not isinstance(r.get("task_id"), int) or keep(r["task_id"])]
    if ids is not None:
        want = {str(i) for i in ids}
        records = [(ln, r) for ln, r in records if _record_id(key, r) in want]
    if limit is not None:
        records = records[:limit]
    build: Callable[..., list[Problem]] = _BUILDERS[key]
    if key in ("humaneval+", "mbpp+"):
        return build(records, src_name, digest=digest, with_expected=with_expected, workers=workers,
                     min_time_limit=min_time_limit, factor=time_limit_factor)
    return build(records, src_name)


# ---------------------------------------------------------------------------------------------
# helpers


def _record_id(key: str, rec: dict) -> str:
    """The Problem id a raw record will get (to select records before building them)."""
    if key in ("mbpp", "mbpp-sanitized", "mbpp-train", "mbpp-dev"):
        return f"Mbpp/{rec.get('task_id')}"
    if key == "livecodebench":
        return str(rec.get("question_id"))
    return str(rec.get("task_id"))


def _need_str(rec: dict, k: str, path: str, line: int, *, empty_ok: bool = False) -> str:
    v = rec.get(k)
    if not isinstance(v, str) or (not empty_ok and not v.strip()):
        raise DataError("missing or not a non-empty string", path, line, k)
    return v


def quiet_parse(code: str) -> ast.Module:
    """ast.parse without the invalid-escape warnings old dataset code is full of."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(code)


def _parse(code: str, path: str, line: int, fld: str) -> ast.Module:
    try:
        return quiet_parse(code)
    except SyntaxError as e:
        raise DataError(f"not valid Python ({e.msg}, line {e.lineno})", path, line, fld) from None


def split_stub(prompt: str, entry_point: str, path: str = "<prompt>", line: int = 0) -> tuple[str, str, str | None]:
    """HumanEval stub -> (docstring task, signature, setup = everything but the entry-point def)."""
    mod = _parse(prompt, path, line, "prompt")
    fn = next((n for n in mod.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
               and n.name == entry_point), None)
    if fn is None:
        raise DataError(f"no function {entry_point!r} defined", path, line, "prompt")
    lines = prompt.splitlines(keepends=True)
    start = min([fn.lineno] + [d.lineno for d in fn.decorator_list]) - 1
    doc = ast.get_docstring(fn) or ""
    body0 = fn.body[0].lineno - 1
    signature = "".join(lines[start:body0]).rstrip() if body0 > start else lines[start].rstrip()
    setup = ("".join(lines[:start]) + "".join(lines[fn.end_lineno:])).strip()
    return doc.strip(), signature, (setup + "\n") if setup else None


def humaneval_instruction(doc: str, signature: str, entry_point: str, setup: str | None) -> str:
    text = f"{doc}\n\nWrite a Python function `{entry_point}` with this signature:\n```python\n{signature}\n```"
    if setup and re.search(r"^\s*(def|class|async def) ", setup, re.M):
        text += f"\n\nThese definitions are already available:\n```python\n{setup.rstrip()}\n```"
    return text


def mbpp_instruction(text: str, first_assert: str) -> str:
    return f"{text.strip()}\nYour code should pass these tests:\n\n{first_assert.strip()}"


def entry_point_from_asserts(code: str, asserts: list[str]) -> str | None:
    """The function the asserts call that the reference defines (first one in the first assert)."""
    try:
        defined = {n.name for n in quiet_parse(code).body
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    except SyntaxError:
        defined = set()
    first_call = None
    for a in asserts:
        try:
            tree = quiet_parse(a.strip())
        except SyntaxError:
            continue
        calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
        for c in calls:
            if c in defined:
                return c
        if first_call is None and calls:
            first_call = next((c for c in calls if c not in _BUILTIN_NAMES), None)
    return first_call


_BUILTIN_NAMES = set(dir(builtins)) | {"isclose"}


# ---------------------------------------------------------------------------------------------
# HumanEval / HumanEval+


def _humaneval_base(rec: dict, path: str, line: int, source: str) -> Problem:
    tid = _need_str(rec, "task_id", path, line)
    prompt = _need_str(rec, "prompt", path, line)
    entry = _need_str(rec, "entry_point", path, line)
    canonical = _need_str(rec, "canonical_solution", path, line)
    doc, sig, setup = split_stub(prompt, entry, path, line)
    return Problem(id=tid, instruction=humaneval_instruction(doc, sig, entry, setup), prompt=prompt,
                   entry_point=entry, reference_solution=prompt + canonical, tests=[], setup=setup,
                   source=source, metadata={"code_prefix": setup} if setup else {})


def build_humaneval(records: list, path: str) -> list[Problem]:
    out = []
    for line, rec in records:
        p = _humaneval_base(rec, path, line, "humaneval")
        test = _need_str(rec, "test", path, line)
        _parse(test, path, line, "test")
        p.tests = [TestCase("assert", code=test + f"\ncheck({p.entry_point})\n")]
        out.append(p)
    return out


def _build_plus(records: list, path: str, dataset: str, *, digest: str, with_expected: bool,
                workers: int | None, min_time_limit: float, factor: float) -> list[Problem]:
    source = "humaneval+" if dataset == "humaneval" else "mbpp+"
    problems, tasks = [], []
    for line, rec in records:
        if dataset == "humaneval":
            p = _humaneval_base(rec, path, line, source)
            reference = p.reference_solution
        else:
            p = _mbppplus_problem(rec, path, line)
            reference = p.reference_solution
        ep.check_inputs(rec, path, line)
        base, plus = rec["base_input"], rec["plus_input"]
        if dataset == "mbpp":
            base, plus = ep.mbpp_deserialize_inputs(p.id, base), ep.mbpp_deserialize_inputs(p.id, plus)
        p.metadata.update({"atol": rec.get("atol", 0) or 0, "n_base_inputs": len(base),
                           "n_plus_inputs": len(plus)})
        if rec.get("contract"):
            p.metadata["contract"] = rec["contract"]
        problems.append(p)
        tasks.append({"task_id": p.id, "entry_point": p.entry_point, "reference": reference,
                      "base_input": base, "plus_input": plus, "atol": rec.get("atol", 0) or 0})
    if not with_expected:
        return problems
    expected = ep.compute_expected(tasks, dataset, digest, workers=workers)
    for p, t in zip(problems, tasks, strict=True):
        exp = expected[p.id]
        base_tests, d1 = ep.build_tests(dataset, t["entry_point"], t["base_input"], exp["base"], t["atol"],
                                        min_time_limit=min_time_limit, factor=factor)
        plus_tests, d2 = ep.build_tests(dataset, t["entry_point"], t["plus_input"], exp["plus"], t["atol"],
                                        min_time_limit=min_time_limit, factor=factor)
        p.tests = base_tests + plus_tests
        p.metadata["n_base_tests"] = len(base_tests)
        if d1 or d2:
            p.metadata["n_dropped_inputs"] = d1 + d2
            log.warning("%s: %d input(s) are not tests (the canonical solution fails on them or its output is "
                        "too large to keep)", p.id, d1 + d2)
        if ep.special_oracle(dataset, p.entry_point or "") and p.entry_point != "are_equivalent":
            p.setup = ((p.setup or "") + "\n" + ep.ORACLE_HELPERS).lstrip("\n")
            p.metadata["special_oracle"] = ep.special_oracle(dataset, p.entry_point or "")
    return problems


def build_humaneval_plus(records: list, path: str, **kw) -> list[Problem]:
    return _build_plus(records, path, "humaneval", **kw)


# ---------------------------------------------------------------------------------------------
# MBPP (full, sanitized) / MBPP+


def _mbpp_common(rec: dict, path: str, line: int, text_key: str, setup: str | None, source: str) -> Problem:
    tid = rec.get("task_id")
    if not isinstance(tid, int):
        raise DataError("must be an integer", path, line, "task_id")
    text = _need_str(rec, text_key, path, line)
    code = _need_str(rec, "code", path, line).replace("\r\n", "\n")
    tl = rec.get("test_list")
    if not isinstance(tl, list) or not tl or not all(isinstance(t, str) and t.strip() for t in tl):
        raise DataError("must be a non-empty list of assert statements", path, line, "test_list")
    for i, t in enumerate(tl):
        _parse(t.strip(), path, line, f"test_list[{i}]")
    entry = entry_point_from_asserts(code, tl)
    return Problem(id=f"Mbpp/{tid}", instruction=mbpp_instruction(text, tl[0]), prompt=None, entry_point=entry,
                   reference_solution=code, tests=[TestCase("assert", code=t.strip() + "\n") for t in tl],
                   setup=setup or None, source=source, metadata={"task_id": tid})


def build_mbpp(records: list, path: str) -> list[Problem]:
    """MBPP full: the 500-problem test split (task ids 11-510)."""
    out = []
    for line, rec in records:
        tid = rec.get("task_id")
        if isinstance(tid, int) and not 11 <= tid <= 510:
            continue
        setup = rec.get("test_setup_code") or ""
        if not isinstance(setup, str):
            raise DataError("must be a string", path, line, "test_setup_code")
        p = _mbpp_common(rec, path, line, "text", setup.replace("\r\n", "\n").strip() or None, "mbpp")
        if rec.get("challenge_test_list"):
            p.metadata["challenge_test_list"] = rec["challenge_test_list"]
        out.append(p)
    return out


def _build_mbpp_split(source: str) -> Callable[[list, str], list[Problem]]:
    """MBPP train-split problems (``mbpp-train`` or ``mbpp-dev``) with their own asserts as tests."""

    def build(records: list, path: str) -> list[Problem]:
        out = []
        for line, rec in records:
            tid = rec.get("task_id")
            if not isinstance(tid, int) or not _SPLITS[source](tid):
                continue
            setup = rec.get("test_setup_code") or ""
            if not isinstance(setup, str):
                raise DataError("must be a string", path, line, "test_setup_code")
            out.append(_mbpp_common(rec, path, line, "text", setup.replace("\r\n", "\n").strip() or None, source))
        return out

    return build


def build_mbpp_sanitized(records: list, path: str) -> list[Problem]:
    out = []
    for line, rec in records:
        imports = rec.get("test_imports") or []
        if not isinstance(imports, list) or not all(isinstance(i, str) for i in imports):
            raise DataError("must be a list of import lines", path, line, "test_imports")
        text_key = "prompt" if "prompt" in rec else "text"
        out.append(_mbpp_common(rec, path, line, text_key, "\n".join(imports) or None, "mbpp-sanitized"))
    return out


def _mbppplus_problem(rec: dict, path: str, line: int) -> Problem:
    tid = _need_str(rec, "task_id", path, line)
    prompt = _need_str(rec, "prompt", path, line)
    entry = _need_str(rec, "entry_point", path, line)
    code = _need_str(rec, "canonical_solution", path, line)
    body = prompt.strip()
    if body.startswith('"""') and body.endswith('"""'):
        body = body[3:-3]
    lines = [ln for ln in body.strip().splitlines()]
    k = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("assert ")), len(lines))
    text, first = "\n".join(lines[:k]).strip(), "\n".join(lines[k:]).strip()
    if not text:
        raise DataError("no task description in the prompt", path, line, "prompt")
    instruction = mbpp_instruction(text, first) if first else text
    meta = {"evalplus_prompt": prompt}
    if isinstance(rec.get("assertion"), str):
        meta["assertion"] = rec["assertion"]
    return Problem(id=tid, instruction=instruction, prompt=None, entry_point=entry,
                   reference_solution=code.lstrip("\n"), tests=[], setup=None, source="mbpp+", metadata=meta)


def build_mbpp_plus(records: list, path: str, **kw) -> list[Problem]:
    return _build_plus(records, path, "mbpp", **kw)


def _build_lcb(records: list, path: str) -> list[Problem]:
    from plumcode.problems.livecodebench import build_livecodebench

    return build_livecodebench(records, path)


_SPLITS: dict[str, Callable[[int], bool]] = {
    "mbpp": lambda t: 11 <= t <= 510,
    "mbpp-train": lambda t: t in MBPP_TRAIN_IDS and t not in MBPP_DEV_IDS,
    "mbpp-dev": lambda t: t in MBPP_DEV_IDS,
}

_BUILDERS: dict[str, Callable[..., list[Problem]]] = {
    "humaneval": build_humaneval, "humaneval+": build_humaneval_plus, "mbpp": build_mbpp,
    "mbpp-sanitized": build_mbpp_sanitized, "mbpp+": build_mbpp_plus, "livecodebench": _build_lcb,
    "mbpp-train": _build_mbpp_split("mbpp-train"), "mbpp-dev": _build_mbpp_split("mbpp-dev"),
}


# ---------------------------------------------------------------------------------------------
# instruction sets

_INSTR_KEYS = ("instruction", "problem", "prompt", "query", "question")
_OUTPUT_KEYS = ("output", "response", "solution", "answer", "completion")
_OTHER_LANGS = re.compile(
    r"\b(c\+\+|c#|java|javascript|typescript|node\.?js|sql|mysql|postgresql|html|css|php|ruby|swift|kotlin|"
    r"golang|go language|rust|scala|perl|haskell|bash|shell script|powershell|matlab|julia|dart|lua|"
    r"objective-c|assembly|react|angular|vue|jquery|c language|r language|in r\b|fortran|cobol|elixir|"
    r"clojure|groovy|vba|excel formula|c programming|in c|to c)\b", re.I)
# C-family code can parse as Python (#include is a comment, `a.b(c);` an expression).
_NOT_PYTHON = re.compile(r"^\s*#include|std::|System\.out|console\.log|\bpublic\s+static\b|;\s*$", re.M)
_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*\n(.*?)```", re.S)


def looks_python(instruction: str, output: str | None, lang: str | None = None) -> bool:
    """Heuristic Python-only filter for instruction sets that mix languages and non-code tasks.

    Mentions Python and no other language: keep. Otherwise (other languages, e.g. "translate this
    Python to C++", or none) keep only when the dataset's answer parses as a Python program."""
    if lang:
        return lang.lower() in ("python", "py", "python3")
    other = _OTHER_LANGS.search(instruction)
    blocks = _FENCE.findall(output or "")
    code = "\n".join(blocks) if blocks else (output or "")
    if _NOT_PYTHON.search(code):
        return False
    if not other and re.search(r"\bpython\b", instruction, re.I):
        return True
    if not output:
        return False
    try:
        tree = quiet_parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return False
    # English prose rarely parses; a bare name/constant expression (e.g. "42") is not a program.
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, (ast.Constant, ast.Name))) for n in tree.body)


def load_instructions(path: str | os.PathLike, fmt: str | None = None, *, python_only: bool = False,
                      limit: int | None = None) -> list[Problem]:
    """Instruction set (no tests, no reference) or Problem-schema JSONL (``fmt="problems"``).

    ``fmt``: None (detect), ``"problems"``, ``"alpaca"`` (instruction/input/output),
    ``"oss-instruct"`` (problem/solution/lang) or ``"json"``/``"jsonl"`` (detect the keys).
    The dataset's own answer is kept in ``metadata["output"]`` (never used as a reference: it is
    untested).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    records = iter_records(path)
    first = next(records, None)
    if first is None:
        return []
    _, rec0 = first
    if fmt == "problems" or (fmt is None and "instruction" in rec0 and "id" in rec0
                             and any(k in rec0 for k in ("tests", "entry_point", "reference_solution"))):
        probs = read_problems(path)
        return probs[:limit] if limit else probs
    stem = path.name.split(".")[0]
    out: list[Problem] = []
    seen: set[str] = set()

    def records_all():
        yield first
        yield from records

    for line, rec in records_all():
        ikey = next((k for k in _INSTR_KEYS if isinstance(rec.get(k), str) and rec[k].strip()), None)
        if ikey is None:
            raise DataError(f"no instruction field (one of {', '.join(_INSTR_KEYS)})", str(path), line,
                            "instruction")
        inp = rec.get("input")
        if inp is not None and not isinstance(inp, str):
            raise DataError("must be a string", str(path), line, "input")
        okey = next((k for k in _OUTPUT_KEYS if isinstance(rec.get(k), str)), None)
        output = rec.get(okey) if okey else None
        instruction = rec[ikey].strip() + (f"\n\n{inp.strip()}" if inp and inp.strip() else "")
        lang = rec.get("lang") if isinstance(rec.get("lang"), str) else None
        if python_only and not looks_python(instruction, output, lang):
            continue
        rid = rec.get("id", rec.get("task_id"))
        pid = str(rid) if isinstance(rid, (str, int)) and str(rid) else f"{stem}/{line - 1}"
        if pid in seen:
            raise DataError(f"duplicate id {pid!r}", str(path), line, "id")
        seen.add(pid)
        meta: dict = {"line": line}
        if output is not None:
            meta["output"] = output
        if lang:
            meta["lang"] = lang
        out.append(Problem(id=pid, instruction=instruction, source=stem, metadata=meta))
        if limit and len(out) >= limit:
            break
    return out
