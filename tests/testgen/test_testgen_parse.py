from __future__ import annotations

import ast

from plumcode.testgen.parse import (
    ParseStats,
    extract_code_blocks,
    find_signature,
    parse_assert_tests,
    parse_input_calls,
    parse_lenient,
    parse_stdio_inputs,
    parse_stdio_tests,
    static_check,
)

SIG = find_signature("def add(a, b=0, *, scale=1):\n    pass\n", "add")


def codes(text: str, ep: str = "add") -> list[str]:
    return [c.test.code for c in parse_assert_tests([text], ep)]


def reasons(text: str, ep: str = "add") -> list[str | None]:
    return [static_check(c, ep, SIG) for c in parse_assert_tests([text], ep)]


def test_fenced_blocks_and_prose():
    text = "Sure!\n```python\nassert add(1, 2) == 3\n```\nAnd more:\n```\nassert add(2, 2) == 4\n```\n" \
           "```text\nnot code\n```"
    assert extract_code_blocks(text) == ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]
    assert codes(text) == ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]
    # no fence at all: the whole text; an unclosed fence runs to the end
    assert extract_code_blocks("assert add(1, 1) == 2") == ["assert add(1, 1) == 2"]
    assert extract_code_blocks("```python\nassert add(0, 0) == 0\nassert add(") == ["assert add(0, 0) == 0\nassert add("]


def test_lenient_parse_survives_truncation_and_prose():
    tree = parse_lenient("assert add(1, 2) == 3\nHere is another:\nassert add(2, 3) == 5\nassert add(4,")
    assert tree is not None
    assert [ast.unparse(s) for s in tree.body] == ["assert add(1, 2) == 3", "assert add(2, 3) == 5"]
    assert parse_lenient("this is ( not code") is None
    stats = ParseStats()
    assert parse_assert_tests(["((((("], "add", stats) == [] and stats.unparsable_blocks == 1


def test_one_assertion_each_with_context_and_helpers():
    text = '''
import math
import pytest
from solution import add
def add(a, b):
    return a + b
def approx(x, y):
    return math.isclose(x, y)
data = [1, 2]
unused = 5
assert add(*data) == 3
assert approx(add(0.1, 0.2), 0.3)
def test_more():
    base = 10
    assert add(base, 1) == 11
    assert add(base, 2) == 12
def check(candidate):
    assert candidate(4, 4) == 8
for a, b, want in [(1, 1, 2), (2, 3, 5)]:
    assert add(a, b) == want
class TestAdd(unittest.TestCase):
    def test_x(self):
        self.assertEqual(add(10, 1), 11)
        self.assertFalse(add(1, 1) == 3)
if __name__ == "__main__":
    assert add(7, 0) == 7
check(add)
'''
    stats = ParseStats()
    got = [c.test.code for c in parse_assert_tests([text], "add", stats)]
    assert stats.dropped_reimplementations == 1  # the model's own add() must never shadow the candidate
    assert got == [
        "import math\ndata = [1, 2]\nassert add(*data) == 3",
        "import math\n\ndef approx(x, y):\n    return math.isclose(x, y)\nassert approx(add(0.1, 0.2), 0.3)",
        "import math\nbase = 10\nassert add(base, 1) == 11",
        "import math\nbase = 10\nassert add(base, 2) == 12",
        "import math\nassert add(4, 4) == 8",  # check(candidate): candidate renamed to the entry point
        "import math\na, b, want = (1, 1, 2)\nassert add(a, b) == want",
        "import math\na, b, want = (2, 3, 5)\nassert add(a, b) == want",
        "import math\nassert add(10, 1) == 11",
        "import math\nassert not add(1, 1) == 3",
        "import math\nassert add(7, 0) == 7",
    ]
    for code in got:
        compile(code, "<t>", "exec")


def test_normalised_dedup():
    text = "assert add(1, 2) == 3\nassert add(1,2)==3  # same\nassert 3 == add(1, 2)\nassert add(1, 2) == 3, 'msg'\n" \
           "assert add(2, 1) == 3"
    stats = ParseStats()
    got = parse_assert_tests([text, "```python\nassert add( 1, 2 ) == 3\n```"], "add", stats)
    assert [c.test.code for c in got] == ["assert add(1, 2) == 3", "assert add(2, 1) == 3"]
    assert stats.extracted == 6 and stats.duplicates == 4


def test_signature_checks():
    r = reasons("assert add(1) == 1\nassert add(1, 2, 3) == 6\nassert add(1, c=2) == 3\n"
                "assert add(1, 2, scale=2) == 6\nassert add(b=1, a=2) == 3\nassert add(1, a=1) == 2\n"
                "assert add(*[1, 2]) == 3")
    assert r[0] is None  # b has a default
    assert r[1].startswith("signature:") and "positional" in r[1]
    assert r[2].startswith("signature:") and "'c'" in r[2]
    assert r[3] is None and r[4] is None
    assert r[5].startswith("signature:") and "twice" in r[5]
    assert r[6] is None  # starred: cannot be told statically
    sig = find_signature("def f(x, /, y):\n    pass", "f")
    c = parse_assert_tests(["assert f(x=1, y=2) == 3"], "f")[0]
    assert static_check(c, "f", sig).startswith("signature: 'x' is positional-only")
    c = parse_assert_tests(["assert f(1) == 3"], "f")[0]
    assert "missing argument(s) y" in static_check(c, "f", sig)


def test_self_reference_trivial_and_no_call():
    r = reasons("assert add(1, 2) == add(2, 1)\nresult = add(1, 2)\nassert add(1, 2) == result\n"
                "assert True\nassert (add(1, 2), 'three')\nassert add(1, 2) == 3 or 1\n"
                "assert sorted([2, 1]) == [1, 2]\nx = 3\nassert x == x\nassert add(1, 2) == 3")
    assert r[0].startswith("self_reference")
    assert r[1].startswith("self_reference")  # via a variable computed with add
    assert r[2].startswith("no_call")
    assert r[3].startswith("trivially_true")  # a tuple is always true
    assert r[4].startswith("trivially_true")
    assert r[5].startswith("no_call")
    assert r[6].startswith("no_call")
    assert r[7] is None


def test_helper_that_calls_function_counts_as_self_reference():
    text = "def expected(a, b):\n    return add(a, b)\nassert add(1, 2) == expected(1, 2)"
    c = parse_assert_tests([text], "add")[0]
    assert static_check(c, "add", SIG).startswith("self_reference")


def test_stdio_pairs():
    text = '```python\ntests = [\n    ("1 2", "3\\n"),\n    ("4 5\\n", "9"),\n    ("1 2\\n", "3"),\n    (1, 2),\n    ("x", '
    stats = ParseStats()
    got = parse_stdio_tests([text], stats)
    assert [(c.test.input, c.test.output) for c in got] == [("1 2\n", "3\n"), ("4 5\n", "9")]
    assert stats.duplicates == 1
    assert parse_stdio_inputs(['inputs = ["1 2", "3 4\\n", "1 2\\n"]']) == ["1 2\n", "3 4\n"]


def test_input_calls():
    rejected: list[tuple[str, str]] = []
    got = parse_input_calls(["```python\nadd(1, 2)\nadd(b=3, a=1)\nadd(1, 2)\nadd(x, 1)\nadd(1, 2, 3, 4)\n"
                             "print(add((1, 2), {3}))\nadd(1, scale=2)\n```"], "add", SIG, rejected)
    assert [g.args for g in got] == [(1, 2), (1, 3), ((1, 2), {3})]
    assert [r[1].split(":")[0] for r in rejected] == ["non_literal", "signature", "keywords"]
    # prefix of a completion-style prompt joins the unfinished line
    assert [g.args for g in parse_input_calls(["1, 2)\nadd(3, 4)"], "add", SIG, prefix="add(")] == [(1, 2), (3, 4)]


def test_doctest_transcripts_become_assertions_and_inputs():
    text = "```python\n>>> add(1, 2)\n3\n>>> add(0, 0)\n0\n>>> add([1],\n... [2])\n[1, 2]\n>>> add(5, 5)\n>>> add(x, 1)\nfoo\n```"
    assert codes(text) == ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add([1], [2]) == [1, 2]"]
    assert [g.args for g in parse_input_calls([text], "add", SIG)] == [(1, 2), (0, 0), ([1], [2]), (5, 5)]
