from __future__ import annotations

import ast
import base64
import gzip
import json
import pickle
import zlib
from collections import Counter
from pathlib import Path

import pytest

from plumcode.io import DataError
from plumcode.problems import load_benchmark, load_instructions, read_problems, write_problems
from plumcode.problems.livecodebench import decode_test_cases
from plumcode.problems.loaders import entry_point_from_asserts, looks_python, split_stub


def test_humaneval(data_dir: Path) -> None:
    ps = load_benchmark("humaneval")
    assert len(ps) == 164
    p0 = ps[0]
    assert p0.id == "HumanEval/0" and p0.entry_point == "has_close_elements"
    assert p0.tests[0].kind == "assert" and p0.tests[0].code.rstrip().endswith("check(has_close_elements)")
    assert p0.reference_solution.startswith(p0.prompt)
    assert "def has_close_elements(numbers: List[float], threshold: float) -> bool:" in p0.instruction
    assert p0.setup.strip() == "from typing import List"
    # HumanEval/38: the helper encode_cyclic is setup, the entry point is not
    p38 = ps[38]
    assert "def encode_cyclic" in p38.setup and "def decode_cyclic" not in p38.setup
    assert "encode_cyclic" in p38.instruction and '"""' not in p38.instruction.split("```")[0]
    for p in ps:
        ast.parse(p.reference_solution)
        ast.parse(p.tests[0].code)


def test_mbpp_full_and_sanitized(data_dir: Path) -> None:
    full = load_benchmark("mbpp")
    assert len(full) == 500
    ids = sorted(p.metadata["task_id"] for p in full)
    assert ids == list(range(11, 511))
    p = full[0]
    assert p.id == "Mbpp/11" and p.entry_point == "remove_Occ"
    assert p.instruction.endswith('Your code should pass these tests:\n\nassert remove_Occ("hello","l") == "heo"')
    assert len(p.tests) == 3 and all(t.kind == "assert" for t in p.tests)
    assert "\r" not in p.reference_solution
    assert all(q.entry_point for q in full)
    # test_setup_code becomes setup (binary-tree tasks build their trees there)
    assert any(q.setup and "Node(1)" in q.setup for q in full)
    san = load_benchmark("mbpp-sanitized")
    assert len(san) == 427 and all(q.entry_point for q in san)
    assert any(q.setup == "import math" for q in san)


def test_livecodebench_styles(data_dir: Path) -> None:
    ps = load_benchmark("livecodebench")
    assert len(ps) == 20
    styles = Counter(p.metadata["style"] for p in ps)
    assert styles == {"stdin": 10, "functional": 10}
    for p in ps:
        assert p.tests and p.metadata["difficulty"] in ("easy", "medium", "hard")
        if p.metadata["style"] == "stdin":
            assert p.entry_point is None and all(t.kind == "stdio" for t in p.tests)
            assert "stdin" in p.instruction
        else:
            assert p.entry_point.startswith("Solution.") and all(t.kind == "call" for t in p.tests)
            assert p.prompt and "class Solution" in p.prompt
    f = next(p for p in ps if p.id == "3495")
    assert f.tests[0].args == ([[1, 2], [3, 4], [2, 3], [-3, 0]], 2) and f.tests[0].expected == [-1, 7, 5, 3]


def test_plus_without_expected(data_dir: Path) -> None:
    he = load_benchmark("humaneval+", with_expected=False)
    mp = load_benchmark("mbpp+", with_expected=False)
    assert len(he) == 164 and len(mp) == 378
    assert all(not p.tests for p in he + mp)
    m2 = next(p for p in mp if p.id == "Mbpp/2")
    assert m2.instruction.startswith("Write a function to find the shared elements from the given two lists.")
    assert "Your code should pass these tests:\n\nassert set(similar_elements(" in m2.instruction


def test_unknown_benchmark_and_missing_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("nope")
    monkeypatch.setenv("PLUMCODE_DATA_DIR", str(tmp_path))  # empty: no local copy
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="no local copy.*PLUMCODE_DATA_DIR"):
        load_benchmark("humaneval")


# ---------------------------------------------------------------------------------------------
# malformed records name file, line and field


def _jsonl(path: Path, recs: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def test_malformed_humaneval(tmp_path: Path) -> None:
    good = {"task_id": "X/0", "prompt": "def f(x):\n    \"\"\"Double x.\"\"\"\n", "entry_point": "f",
            "canonical_solution": "    return 2 * x\n", "test": "def check(c):\n    assert c(1) == 2\n"}
    bad = dict(good, task_id="X/1")
    del bad["prompt"]
    f = _jsonl(tmp_path / "he.jsonl", [good, bad])
    with pytest.raises(DataError) as e:
        load_benchmark("humaneval", f)
    assert (e.value.path, e.value.line, e.value.field) == (str(f), 2, "prompt")
    assert f"{f}:2 field 'prompt'" in str(e.value)
    wrong_ep = dict(good, entry_point="g")
    f2 = _jsonl(tmp_path / "he2.jsonl", [wrong_ep])
    with pytest.raises(DataError, match="no function 'g'") as e:
        load_benchmark("humaneval", f2)
    assert e.value.line == 1
    ok = load_benchmark("humaneval", _jsonl(tmp_path / "he3.jsonl", [good]))
    assert ok[0].instruction.startswith("Double x.") and ok[0].setup is None


def test_malformed_mbpp_and_lcb(tmp_path: Path) -> None:
    rec = {"task_id": 11, "text": "Add.", "code": "def add(a, b):\n    return a + b\n",
           "test_list": ["assert add(1, 2) == 3"], "test_setup_code": "", "challenge_test_list": []}
    f = _jsonl(tmp_path / "mbpp.jsonl", [rec, dict(rec, task_id=12, test_list=["assert add(1, 2 == 3"])])
    with pytest.raises(DataError) as e:
        load_benchmark("mbpp", f)
    assert (e.value.line, e.value.field) == (2, "test_list[0]")
    # sanitized is a JSON array: the "line" is the record number
    s = tmp_path / "san.json"
    s.write_text(json.dumps([{"task_id": 2, "prompt": "P", "code": "def f(): pass", "test_imports": [],
                              "test_list": []}]))
    with pytest.raises(DataError) as e:
        load_benchmark("mbpp-sanitized", s)
    assert (e.value.line, e.value.field) == (1, "test_list")
    lcb = {"question_id": "q1", "question_content": "Sum.", "starter_code": "", "difficulty": "easy",
           "public_test_cases": json.dumps([{"input": "1 2", "output": "3", "testtype": "stdin"}]),
           "metadata": "{}"}
    bad = dict(lcb, question_id="q2", public_test_cases="[{\"input\": 1}]")
    g = _jsonl(tmp_path / "lcb.jsonl", [lcb, bad])
    with pytest.raises(DataError) as e:
        load_benchmark("livecodebench", g)
    assert (e.value.line, e.value.field) == (2, "public_test_cases[0]")


def test_malformed_plus_inputs(tmp_path: Path, cache: Path) -> None:
    rec = {"task_id": "HumanEval/0", "prompt": "def f(x):\n    \"\"\"Inc.\"\"\"\n", "entry_point": "f",
           "canonical_solution": "    return x + 1\n", "test": "", "base_input": [[1]], "plus_input": 5, "atol": 0}
    f = _jsonl(tmp_path / "hep.jsonl", [rec])
    with pytest.raises(DataError) as e:
        load_benchmark("humaneval+", f)
    assert (e.value.line, e.value.field) == (1, "plus_input")


def test_lcb_private_tests_decoding(tmp_path: Path) -> None:
    cases = [{"input": "5\n", "output": "10\n", "testtype": "stdin"}]
    packed = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()
    assert decode_test_cases(packed) == cases
    assert decode_test_cases(base64.b64encode(zlib.compress(json.dumps(cases).encode())).decode()) == cases
    assert decode_test_cases(json.dumps(cases)) == cases

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    with pytest.raises(ValueError, match="refusing to load .*only plain data"):
        decode_test_cases(evil)
    rec = {"question_id": "q1", "question_content": "Double.", "starter_code": "", "difficulty": "easy",
           "public_test_cases": json.dumps([{"input": "1\n", "output": "2\n", "testtype": "stdin"}]),
           "private_test_cases": packed, "metadata": "{}"}
    ps = load_benchmark("livecodebench", _jsonl(tmp_path / "l.jsonl", [rec]))
    assert [t.input for t in ps[0].tests] == ["1\n", "5\n"] and ps[0].metadata["n_public_tests"] == 1
    with pytest.raises(DataError) as e:
        load_benchmark("livecodebench", _jsonl(tmp_path / "l2.jsonl", [dict(rec, private_test_cases=evil)]))
    assert e.value.field == "private_test_cases"


def test_split_stub_and_entry_point() -> None:
    prompt = "import math\n\n\ndef helper(x):\n    return x\n\n\ndef f(a: int,\n      b: int) -> int:\n    \"\"\"Add.\n    >>> f(1, 2)\n    3\n    \"\"\"\n"
    doc, sig, setup = split_stub(prompt, "f")
    assert doc.startswith("Add.") and ">>> f(1, 2)" in doc
    assert sig == "def f(a: int,\n      b: int) -> int:"
    assert "def helper" in setup and "import math" in setup and "def f" not in setup
    assert entry_point_from_asserts("def helper(): pass\ndef g(x): return x", ["assert set(g(1)) == set([1])"]) == "g"
    assert entry_point_from_asserts("", ["assert abs(h(1) - 2) < 1e-9"]) == "h"


# ---------------------------------------------------------------------------------------------
# instruction sets


def test_instruction_sets(data_dir: Path, tmp_path: Path) -> None:
    ca = load_instructions(data_dir / "code_alpaca_2k.json.gz")
    assert len(ca) == 2017 and all(p.tests == [] and p.reference_solution is None for p in ca)
    assert ca[0].instruction.startswith("What are the distinct values") and "dataList = [3, 9" in ca[0].instruction
    assert ca[0].metadata["output"].startswith("The distinct values")
    py = load_instructions(data_dir / "code_alpaca_2k.json.gz", python_only=True)
    assert 200 < len(py) < len(ca)
    new = load_instructions(data_dir / "new_codealpaca.json.gz", python_only=True)
    assert all("#include" not in p.metadata["output"] and "System.out" not in p.metadata["output"] for p in new)
    assert any("C++" in p.instruction and "def " in p.metadata["output"] for p in new)  # C++ -> Python kept
    evol = load_instructions(data_dir / "evol-codealpaca-2k-1.json.gz", limit=10)
    assert len(evol) == 10 and evol[0].id == "evol-codealpaca-2k-1/0"
    # OSS-Instruct-like JSONL with a language field
    oss = _jsonl(tmp_path / "oss.jsonl", [{"problem": "Write a Python function f.", "solution": "def f(): pass",
                                           "lang": "python"},
                                          {"problem": "Write a Rust function.", "solution": "fn f() {}", "lang": "rust"}])
    got = load_instructions(oss, python_only=True)
    assert [p.instruction for p in got] == ["Write a Python function f."]
    # Problem-schema JSONL is detected and round-trips
    out = tmp_path / "problems.jsonl"
    write_problems(out, load_benchmark("mbpp")[:3])
    again = load_instructions(out)
    assert [p.id for p in again] == ["Mbpp/11", "Mbpp/12", "Mbpp/13"] and again[0].tests
    assert [p.to_json() for p in again] == [p.to_json() for p in read_problems(out)]
    with pytest.raises(DataError) as e:
        load_instructions(_jsonl(tmp_path / "bad.jsonl", [{"instruction": "x"}, {"text": 1}]))
    assert (e.value.line, e.value.field) == (2, "instruction")


def test_looks_python() -> None:
    assert looks_python("Write a function to add two numbers.", "def add(a, b):\n    return a + b")
    assert not looks_python("Write a Java method to add two numbers.", "int add(int a, int b) { return a + b; }")
    assert not looks_python("Explain recursion.", "Recursion is when a function calls itself.")
    assert looks_python("Reverse a list in Python.", None)
    assert not looks_python("Create an HTML page.", "<html></html>")


def test_problems_cli(data_dir: Path, tmp_path: Path) -> None:
    from plumcode.cli import main

    out = tmp_path / "p.jsonl"
    assert main(["problems", "--benchmark", "mbpp", "--limit", "5", "--out", str(out)]) == 0
    ps = read_problems(out)
    assert len(ps) == 5 and ps[0].id == "Mbpp/11"
    out2 = tmp_path / "i.jsonl"
    assert main(["problems", "--instructions", str(data_dir / "code_alpaca_2k.json.gz"), "--python-only",
                 "--decontaminate", "humaneval", "--limit", "7", "--out", str(out2)]) == 0
    assert len(read_problems(out2)) == 7
    assert main(["problems", "--benchmark", "humaneval", "--path", str(tmp_path / "missing.jsonl"),
                 "--out", str(out)]) == 2


def test_gz_and_plain_paths(data_dir: Path, tmp_path: Path) -> None:
    plain = tmp_path / "HumanEval.jsonl"
    plain.write_bytes(gzip.decompress((data_dir / "HumanEval.jsonl.gz").read_bytes()))
    a, b = load_benchmark("humaneval", plain), load_benchmark("humaneval")
    assert [p.to_json() for p in a] == [p.to_json() for p in b]


def test_plus_oversized_and_failing_reference_outputs_are_dropped(tmp_path: Path, cache: Path) -> None:
    rec = {"task_id": "Mbpp/9001", "prompt": '"""\nReturn the first n numbers.\nassert big(3) == [0, 1, 2]\n"""\n',
           "entry_point": "big", "canonical_solution": "def big(n):\n    assert n >= 0\n    return list(range(n))\n",
           "base_input": [[3]], "plus_input": [[2_500_000], [-1], [5]], "atol": 0}
    ps = load_benchmark("mbpp+", _jsonl(tmp_path / "m.jsonl", [rec]))
    p = ps[0]
    assert p.metadata["n_dropped_inputs"] == 2 and p.metadata["n_base_tests"] == 1
    assert [t.args for t in p.tests] == [(3,), (5,)] and p.tests[1].expected == [0, 1, 2, 3, 4]
    assert p.instruction == "Return the first n numbers.\nYour code should pass these tests:\n\nassert big(3) == [0, 1, 2]"
    assert len(list((cache / "expected").glob("mbpp-*.json.gz"))) == 1


def test_limit_ids_and_incremental_cache(data_dir: Path, tmp_path: Path, cache: Path) -> None:
    assert [p.id for p in load_benchmark("mbpp", limit=3)] == ["Mbpp/11", "Mbpp/12", "Mbpp/13"]
    assert [p.id for p in load_benchmark("humaneval", ids=["HumanEval/7", "HumanEval/3"])] == [
        "HumanEval/3", "HumanEval/7"]
    assert [p.id for p in load_benchmark("livecodebench", ids=["3626"])] == ["3626"]
    recs = [{"task_id": f"Mbpp/{900 + i}", "prompt": f'"""\nAdd {i}.\nassert add{i}(1) == {1 + i}\n"""\n',
             "entry_point": f"add{i}", "canonical_solution": f"def add{i}(x):\n    return x + {i}\n",
             "base_input": [[1]], "plus_input": [[2], [3]], "atol": 0} for i in range(3)]
    f = _jsonl(tmp_path / "m.jsonl", recs)
    import gzip as gz

    def cached_ids() -> set[str]:
        (c,) = (cache / "expected").glob("mbpp-*.json.gz")
        return set(json.loads(gz.decompress(c.read_bytes()))["tasks"])

    assert [p.id for p in load_benchmark("mbpp+", f, limit=2)] == ["Mbpp/900", "Mbpp/901"]
    assert cached_ids() == {"Mbpp/900", "Mbpp/901"}  # only the slice was computed
    full = load_benchmark("mbpp+", f)
    assert cached_ids() == {"Mbpp/900", "Mbpp/901", "Mbpp/902"}  # the rest added, not recomputed
    assert [t.expected for t in full[2].tests] == [3, 4, 5]
    slow = load_benchmark("mbpp+", f, min_time_limit=3.0, time_limit_factor=10.0)
    assert all(t.timeout_s >= 3.0 for p in slow for t in p.tests)
    assert all(t.timeout_s == 1.0 for p in full for t in p.tests)  # EvalPlus default: max(1.0, 4 * tiny)


def test_cache_bigint_packing() -> None:
    from plumcode.problems.evalplus import _pack_bigints, _unpack_bigint

    v = {"tasks": {"a": [[True, 10**5000, "", 0.1], [True, {"$tuple": [-(10**6000), 7]}, "", 0.2]]}}
    text = json.dumps(_pack_bigints(v))
    assert "$plumcode_hexint" in text and len(text) < 10_000  # hex, not 11k decimal digits
    assert json.loads(text, object_hook=_unpack_bigint) == v
